"""The system's sshd on a loopback port with a throw-away configuration: OpenSSH mode's
tests and the front door's benchmark (``scripts/bench sftp``) start it alike."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from exchanged.testing.daemon import HOST, free_port

SSHD = "/usr/sbin/sshd"


class Sshd:
    """``sshd -D`` serving ``internal-sftp`` on a free loopback port; ``config_lines`` are
    added to the base configuration (sshd takes the first value of a keyword, so what the
    base sets is given as arguments). Needs root (privilege separation)."""

    def __init__(self, root: Path, config_lines: str = "", *, authorized_keys: str = "none",
                 strict_modes: bool = True, log_level: str = "VERBOSE") -> None:
        self.port = free_port()
        self.root = root
        key = root / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
        self.host_key_pub = key.with_suffix(".pub")
        self.config = root / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\nListenAddress {HOST}\nHostKey {key}\nPidFile {root / 'sshd.pid'}\n"
            "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"PubkeyAuthentication yes\nAuthorizedKeysFile {authorized_keys}\n"
            f"StrictModes {'yes' if strict_modes else 'no'}\n"
            f"Subsystem sftp internal-sftp\nLogLevel {log_level}\n" + config_lines)
        os.chmod(self.config, 0o600)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation
        self.log = root / "sshd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sshd did not start: {self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
