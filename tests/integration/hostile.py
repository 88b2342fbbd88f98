"""Helpers for the hostile-input catalogue: compression bombs, raw uploads, answer checks."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko

from tests.integration.support import HOST, Agency, Exchange

MiB = 1 << 20
GiB = 1 << 30

#: OpenPGP packet headers in the old format with an indeterminate length (the packet runs to
#: the end of what contains it), as PGP 2 wrote them: a literal data packet (tag 11) and a
#: compressed data packet (tag 8) whose algorithm octet 1 is ZIP (raw deflate)
LITERAL_INDETERMINATE = b"\xaf"
COMPRESSED_ZIP = b"\xa3\x01"


def zeros_deflate(total: int, header: bytes) -> bytes:
    """Raw deflate of ``header`` and ``total`` zero bytes, made in constant time.

    After a full flush a deflate compressor starts afresh, so every further MiB of zeros
    compresses to the very same bytes: they are repeated instead of computed.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(MiB)
    first = c.compress(header + chunk) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    assert again == c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    return first + again * (total // MiB - 1) + c.flush()


def bomb_packets(total: int) -> bytes:
    """OpenPGP packets that decompress to a literal of ``total`` zero bytes (a multiple of a
    MiB): a compressed packet inside a compressed packet, a few kilobytes for gigabytes."""
    literal = LITERAL_INDETERMINATE + b"b\x00" + bytes(4)  # binary, no file name, no date
    inner = COMPRESSED_ZIP + zeros_deflate(total, literal)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return COMPRESSED_ZIP + c.compress(inner) + c.flush()


def seal_bomb(agency: Agency, total: int, out: Path) -> Path:
    """The bomb, encrypted to the exchange by the agency's gpg as it is (``--no-literal``:
    gpg wraps nothing around the packets it is given)."""
    packets = out.with_suffix(".packets")
    packets.write_bytes(bomb_packets(total))
    agency.desk.gpg("--no-literal", "--compress-algo", "none", "--encrypt",
                    "--recipient", agency.exchange.fingerprint, "--output", str(out),
                    str(packets))
    return out


class FolderWatch:
    """Samples the total size of the files under a folder until stopped: the most it held."""

    def __init__(self, folder: Path, interval: float = 0.005) -> None:
        self.folder = folder
        self.interval = interval
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for root, _, files in os.walk(self.folder):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(root, name)).st_size
                    except OSError:
                        pass
            self.most = max(self.most, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> FolderWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@contextmanager
def paramiko_sftp(agency: Agency) -> Iterator[paramiko.SFTPClient]:
    """A paramiko SFTP client logged in as the agency, checking the exchange's host key: for
    file names OpenSSH's sftp batch mode cannot express (control characters)."""
    ex = agency.exchange
    expected = (ex.home / "keys" / "ssh_host_ed25519_key.pub").read_text().split()[1]
    sock = socket.create_connection((HOST, ex.port), timeout=20)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=20)
        assert transport.get_remote_server_key().get_base64() == expected, "wrong host key"
        transport.auth_publickey(agency.id, paramiko.Ed25519Key(filename=str(agency.desk.ssh_key)))
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        try:
            yield sftp
        finally:
            sftp.close()
    finally:
        transport.close()


def received_since(exchange: Exchange, agency: str, after_seq: int, count: int,
                   timeout: float = 30) -> list[dict[str, object]]:
    """The ``batch.received`` entries of ``agency`` after ledger entry ``after_seq``."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for e in exchange.ledger("--kind", "batch.received", "--agency", agency)
                   if int(str(e["seq"])) > after_seq]
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.2)


def head_seq(exchange: Exchange) -> int:
    entries = exchange.ledger()
    return int(str(entries[-1]["seq"])) if entries else 0


def csv_cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


#: a CSV file in which every field is quoted (quotes inside doubled), each row CRLF- or LF-ended
ALL_QUOTED_RE = re.compile(r'(?:"(?:[^"]|"")*"(?:,|\r?\n))*', re.DOTALL)


def unsafe_cells(data: bytes) -> list[str]:
    """Cells a spreadsheet would run as a formula, however it splits the file: by CSV's
    rules, or on every ';' (Excel in an Indonesian locale, once a line's first field has
    ended), tab or line break whatever the quotes say; spaces and quotes before the formula
    do not stop it. Also every field that is not quoted (reported as ``unquoted``)."""
    text = data.decode("utf-8")
    cells = [cell for row in csv_cells(data) for cell in row]
    pieces = re.split("[;\t\r\n]", text)
    unsafe = [c for c in cells + pieces if c.lstrip(' "').startswith(FORMULA_STARTS)]
    if text and not ALL_QUOTED_RE.fullmatch(text):
        unsafe.append("unquoted")
    return unsafe


class OpenSession:
    """A real OpenSSH sftp session kept open, fed one command at a time."""

    def __init__(self, agency: Agency, key: Path) -> None:
        desk = agency.desk
        self.proc = subprocess.Popen(
            ["sftp", "-q", "-b", "-", "-P", str(agency.exchange.port), "-i", str(key),
             "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={desk.known_hosts}",
             f"{agency.id}@{HOST}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(self, remote: str, local: Path, timeout: float = 15) -> bool:
        """Ask for ``remote``; True once it arrived as ``local``."""
        return self.run(f'get {remote} "{local}"',
                        lambda: local.exists() and local.stat().st_size > 0, timeout)

    def run(self, command: str, done: Callable[[], bool], timeout: float = 15) -> bool:
        """Send one command; True once ``done()`` says it had its effect."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"{command}\n".encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            if self.proc.poll() is not None:
                return done()
            time.sleep(0.05)
        return False

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(10)
