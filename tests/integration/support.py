"""Integration helpers: a real exchange home, the real daemon, agencies with real keys.

Agencies work exactly as in the README: keys made with gpg and ssh-keygen,
batches sealed with gpg, uploads and downloads with OpenSSH sftp.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exchanged.testing.agencydesk import AgencyDesk, DeskError, stop_gpg_agent

HOST = "127.0.0.1"
AGREEMENT = "pks-kemensos-bkn-2023"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def exchanged(*args: str, check: bool = True, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    """Run the exchanged CLI as a user would."""
    result = subprocess.run(
        [sys.executable, "-m", "exchanged", *args], capture_output=True, text=True,
        timeout=120, env=env,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exchanged {' '.join(args)} failed: {result.stderr}")
    return result


class Exchange:
    """One home and its daemon."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "daemon.log"
        self.fingerprint = ""

    def init(self) -> None:
        out = exchanged("init", "--home", str(self.home), "--listen", f"{HOST}:{self.port}").stdout
        for line in out.splitlines():
            if line.startswith("exchange OpenPGP key: "):
                self.fingerprint = line.split(": ", 1)[1].strip()

    @property
    def public_key(self) -> Path:
        return self.home / "exchange-public.asc"

    def add_agency(self, desk: AgencyDesk, name: str) -> None:
        public = desk.export_public(desk.dir / f"{desk.agency}.asc")
        exchanged("agency", "add", "--home", str(self.home), desk.agency, "--name", name,
                  "--ssh-key", str(desk.ssh_public), "--gpg-key", str(public))

    def extend(self, until: str = "2099-12-31") -> None:
        exchanged("policy", "extend", "--home", str(self.home), AGREEMENT, "--until", until,
                  "--reference", "EXAMPLE ONLY - test addendum, not a real agreement", "--example")

    def start(self) -> None:
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exchanged", "run", "--home", str(self.home)],
            stdout=logf, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.log.read_text()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("daemon did not listen")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self.proc = None
        return code

    def restart(self) -> None:
        self.stop()
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ledger(self, *filters: str) -> list[dict[str, object]]:
        out = exchanged("ledger", "query", "--home", str(self.home), "--format", "json",
                        *filters).stdout
        return [json.loads(line) for line in out.splitlines()]

    def verify(self) -> None:
        exchanged("ledger", "verify", "--home", str(self.home))


class Agency:
    """An agency desk bound to one exchange."""

    def __init__(self, desk: AgencyDesk, exchange: Exchange) -> None:
        self.desk = desk
        self.exchange = exchange
        self.id = desk.agency

    def sftp(self, *commands: str, check: bool = True, **kw: object
             ) -> subprocess.CompletedProcess[bytes]:
        return self.desk.sftp(HOST, self.exchange.port, list(commands), check=check, **kw)  # type: ignore[arg-type]

    def seal(self, plaintext: Path, name: str, **kw: object) -> Path:
        kw.setdefault("recipient", self.exchange.fingerprint)
        return self.desk.seal(plaintext, plaintext.parent / name, **kw)  # type: ignore[arg-type]

    def submit(self, flow: str, sealed: Path, remote_name: str | None = None) -> None:
        self.desk.upload(HOST, self.exchange.port, sealed,
                         f"/inbox/{flow}/{remote_name or sealed.name}")

    def outcome(self, flow: str, name: str, *, timeout: float = 60) -> bytes:
        """Wait for an outcome in the outbox, download it, check the exchange signed it."""
        self.desk.wait_for(HOST, self.exchange.port, f"/outbox/{flow}", name, timeout=timeout)
        local = self.desk.dir / "downloads" / name
        local.parent.mkdir(exist_ok=True)
        self.desk.download(HOST, self.exchange.port, f"/outbox/{flow}/{name}", local)
        opened = self.desk.open(local)
        assert opened.signer == self.exchange.fingerprint, "outcome not signed by exchange"
        return opened.data

    def rejection(self, flow: str, batch: str, **kw: object) -> dict[str, object]:
        data = self.outcome(flow, f"{batch}.rejected.json.gpg", **kw)  # type: ignore[arg-type]
        value: dict[str, object] = json.loads(data)
        return value

    def codes(self, flow: str, batch: str) -> list[str]:
        reasons = self.rejection(flow, batch)["reasons"]
        assert isinstance(reasons, list)
        return [str(r["code"]) for r in reasons]



def make_exchange(root: Path, desks: dict[str, AgencyDesk], *, extend: bool = True) -> Exchange:
    ex = Exchange(root)
    ex.init()
    for agency, name in (("kemensos", "Kementerian Sosial"), ("bkn", "Badan Kepegawaian Negara")):
        ex.add_agency(desks[agency], name)
    for desk in desks.values():
        try:
            desk.import_key(ex.public_key, certify=True)
        except DeskError:
            pass
        desk.trust_host(HOST, ex.port, ex.home / "keys" / "ssh_host_ed25519_key.pub")
    if extend:
        ex.extend()
    return ex

def write_csv(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    os.chmod(path, 0o600)
    return path


@contextmanager
def running(ex: Exchange) -> Iterator[Exchange]:
    """A module's exchange: started, and stopped with its gpg agent at the end."""
    ex.start()
    try:
        yield ex
    finally:
        if ex.alive():
            ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10


def lock(files: list[Path], on: bool) -> None:
    """Make files immutable (what ``chattr +i`` does: not even root may write them), or
    writable again; at once, with the ioctl (a test races the daemon to it)."""
    for path in files:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            flags = struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 4))[0]
            flags = flags | FS_IMMUTABLE_FL if on else flags & ~FS_IMMUTABLE_FL
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags))
        except OSError as e:
            if on:
                pytest.skip(f"files cannot be made immutable here ({e.strerror})")
            raise
        finally:
            os.close(fd)
