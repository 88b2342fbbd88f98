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
from tests.integration.support import AGREEMENT, Exchange, exchanged, make_exchange

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "exchanged.service"
DROPIN = ROOT / "systemd" / "exchanged.service.d" / "openssh.conf"

needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze is not installed")


def unit_copy(folder: Path, openssh: bool) -> Path:
    """The shipped unit (and in OpenSSH mode its drop-in, where systemd looks for it beside
    the unit), its ExecStart pointed at this checkout's command: verify checks it exists."""
    unit = folder / "exchanged.service"
    exe = Path(sys.executable).parent / "exchanged"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/exchanged", str(exe)))
    if openssh:
        (folder / "exchanged.service.d").mkdir()
        shutil.copy(DROPIN, folder / "exchanged.service.d" / "openssh.conf")
    return unit


@needs_systemd_analyze
@pytest.mark.parametrize("openssh", [False, True], ids=["embedded", "openssh"])
def test_the_unit_verifies_and_is_hardened(tmp_path: Path, openssh: bool) -> None:
    unit = unit_copy(tmp_path, openssh)
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Unknown" not in r.stderr and "ignoring" not in r.stderr, r.stderr
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for exchanged\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout[-500:] + r.stderr
    assert float(m.group(1)) <= 1.2


def service_settings(*texts: str) -> dict[str, list[str]]:
    """The [Service] settings of a unit and its drop-ins, as systemd merges them: a key
    given again adds to a list setting (an empty value would reset it)."""
    settings: dict[str, list[str]] = {}
    for text in texts:
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            key, _, value = line.partition("=")
            if section != "[Service]":
                continue
            if not value:
                settings[key] = []
            else:
                settings.setdefault(key, []).extend(value.split())
    return settings


def writable_paths(settings: dict[str, list[str]]) -> list[Path]:
    """What ProtectSystem=strict leaves writable: the state directories and ReadWritePaths."""
    assert settings["ProtectSystem"] == ["strict"]
    return ([Path("/var/lib") / d for d in settings.get("StateDirectory", [])]
            + [Path(p.lstrip("-")) for p in settings.get("ReadWritePaths", [])])


def covered(path: Path, writable: list[Path]) -> bool:
    return any(path == w or w in path.parents for w in writable)


def test_the_writable_paths_cover_the_configured_folders_in_both_modes() -> None:
    from exchanged.home import DEFAULT_HOME
    from exchanged.home.config import Config
    from exchanged.sftp.openssh import systemd_dropin

    unit = service_settings(UNIT.read_text())
    home = Path(next(v.split("=", 1)[1] for v in unit["Environment"]
                     if v.startswith("EXCHANGED_HOME=")))
    assert home == Path(DEFAULT_HOME)
    # embedded mode: everything the daemon writes is in its home
    assert covered(home, writable_paths(unit))
    # OpenSSH mode: the chroots are not, and the unit alone would make them read-only
    config = Config()
    assert not covered(Path(config.openssh_root), writable_paths(unit))
    with_dropin = service_settings(UNIT.read_text(), DROPIN.read_text())
    assert covered(home, writable_paths(with_dropin))
    assert covered(Path(config.openssh_root), writable_paths(with_dropin))
    # the shipped drop-in is the one 'agency add' prints for the default root, and the one
    # it prints for another root covers that root
    assert DROPIN.read_text() == systemd_dropin(config)
    elsewhere = Config(openssh_root="/data/sftp-chroots")
    assert covered(Path("/data/sftp-chroots/kemensos/inbox"), writable_paths(
        service_settings(UNIT.read_text(), systemd_dropin(elsewhere))))


def test_the_unit_has_what_the_issue_asks() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID",
                 "User=exchanged", "StateDirectory=exchanged"):
        assert line in text
    assert "u exchanged" in (ROOT / "systemd" / "exchanged.sysusers").read_text()
    assert "/var/lib/exchanged 0700" in (ROOT / "systemd" / "exchanged.tmpfiles").read_text()


def status_until(ex: Exchange, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = exchanged("status", "--home", str(ex.home)).stdout
        if text in out or time.monotonic() > deadline:
            assert text in out, out
            return out
        time.sleep(0.3)


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
    """Also what an administrator sees when things are amiss: an agreement not in force is
    warned of at start and at each reload, a metrics port taken by someone else shows in
    status (the exchange serves on), and status keeps working on an invalid policy."""
    ex: Exchange = make_exchange(tmp_path / "ex", desks)
    exchanged("policy", "terminate", "--home", str(ex.home), AGREEMENT, "--on", "2026-01-01",
              "--reference", "EXAMPLE ONLY - test termination")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    config = ex.home / "config.yaml"
    config.write_text("\n".join(line for line in config.read_text().splitlines()
                                if not line.startswith("metrics_listen:"))
                      + f"\nmetrics_listen: 127.0.0.1:{taken.getsockname()[1]}\n")
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
        warning = f"agreement not in force, its batches are refused: {AGREEMENT}: terminated"
        assert ex.log.read_text().count(warning) == 1
        st = status_until(ex, "metrics: NOT served")
        assert f"cannot listen on 127.0.0.1:{taken.getsockname()[1]}" in st
        assert "running" in st and proc.poll() is None
        proc.send_signal(signal.SIGHUP)
        notify.collect("RELOADING=1")
        notify.messages.clear()
        notify.collect("READY=1")
        assert ex.log.read_text().count(warning) == 2
        # a broken policy file: the reload is refused, status says so and keeps working
        (ex.home / "policies" / "zz-broken.yaml").write_text("agreement: [unclosed\n")
        proc.send_signal(signal.SIGHUP)
        notify.collect("RELOADING=1")
        notify.messages.clear()
        notify.collect("READY=1")
        st = status_until(ex, "policies: INVALID")
        assert "zz-broken.yaml" in st and "the daemon runs on the previous policy" in st, st
        assert f"{AGREEMENT}: terminated on 2026-01-01" in st, st
        proc.send_signal(signal.SIGTERM)
        notify.collect("STOPPING=1")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_gpg_agent(ex.home / "keys" / "gnupg")
