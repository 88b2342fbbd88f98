"""The daemon as a child process: ``exchanged run`` started, awaited and stopped, for the
demo and the benchmarks (which drive it exactly as an administrator's service manager would)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the daemon binds it a moment later)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class DaemonProcess:
    """``exchanged run --home HOME``, its output appended to ``log``."""

    def __init__(self, home: Path, port: int, log: Path, host: str = HOST) -> None:
        self.home, self.port, self.log, self.host = home, port, log, host
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start the daemon and return once its SFTP port accepts connections."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "exchanged", "run", "--home", str(self.home)],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited; see {self.log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the daemon did not listen")

    def stop(self) -> None:
        """A clean stop (SIGTERM, as systemd sends), killed if it does not end in a minute."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
