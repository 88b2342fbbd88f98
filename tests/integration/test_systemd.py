"""systemd: the unit verifies and is hardened; the daemon speaks the notify protocol."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import Exchange, make_exchange

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "exchanged.service"

needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze is not installed")


@needs_systemd_analyze
def test_the_unit_verifies(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's command
    unit = tmp_path / "exchanged.service"
    exe = Path(sys.executable).parent / "exchanged"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/exchanged", str(exe)))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@needs_systemd_analyze
def test_the_unit_is_hardened() -> None:
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for exchanged\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout[-500:] + r.stderr
    assert float(m.group(1)) <= 2.0


def test_the_unit_has_what_the_issue_asks() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID",
                 "User=exchanged", "StateDirectory=exchanged"):
        assert line in text
    assert "u exchanged" in (ROOT / "systemd" / "exchanged.sysusers").read_text()
    assert "/var/lib/exchanged 0700" in (ROOT / "systemd" / "exchanged.tmpfiles").read_text()


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def collect(self, until: str, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                pass
            if any(until in m for m in self.messages):
                return self.messages
        raise AssertionError(f"no {until!r} in {self.messages}")


def test_ready_watchdog_reload_stopping(tmp_path: Path, desks: dict[str, AgencyDesk]) -> None:
    ex: Exchange = make_exchange(tmp_path / "ex", desks)
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"}
    logf = open(ex.log, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "exchanged", "run", "--home", str(ex.home)],
                            stdout=logf, stderr=subprocess.STDOUT, env=env)
    try:
        messages = notify.collect("READY=1")
        ready = next(m for m in messages if "READY=1" in m)
        assert f"MAINPID={proc.pid}" in ready and "SFTP on" in ready
        # READY comes only once the port listens
        with socket.create_connection(("127.0.0.1", ex.port), timeout=2):
            pass
        notify.messages.clear()
        notify.collect("WATCHDOG=1", timeout=5)
        proc.send_signal(signal.SIGHUP)
        notify.collect("RELOADING=1")
        notify.messages.clear()
        notify.collect("READY=1")
        proc.send_signal(signal.SIGTERM)
        notify.collect("STOPPING=1")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_gpg_agent(ex.home / "keys" / "gnupg")
