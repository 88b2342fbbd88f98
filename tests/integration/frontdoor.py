"""The front door alone, in-process: the real SFTPServer behind a recording Door.

For the limits that need small numbers (quotas, sessions, idle time, bans of
a few seconds) without a whole daemon. Clients are the real OpenSSH ``sftp``
(through :class:`AgencyDesk`) or paramiko where OpenSSH cannot do what the
test needs (many handles on one connection, a connection held idle).
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paramiko

from exchanged.batch.spool import Spool, Upload
from exchanged.home import Home, Listen
from exchanged.home.drop import database_files
from exchanged.sftp import SFTPServer
from exchanged.sftp.limits import Limits
from exchanged.testing.agencydesk import AgencyDesk

HOST = "127.0.0.1"
FLOW = "flow-a"


@dataclass
class RecordingDoor:
    """A Door (with the guarded extras) that records what the front door tells it."""

    root: Path
    keys: dict[str, str]  # agency -> base64 of its SSH public key
    upload_limit: int = 1 << 30
    queued: tuple[int, int] = (0, 0)
    queue_broken: bool = False
    events: list[tuple[str, ...]] = field(default_factory=list)
    received: list[tuple[str, int]] = field(default_factory=list)
    discarded: list[tuple[str, int, str]] = field(default_factory=list)
    bans: list[tuple[str, int, int, int]] = field(default_factory=list)
    #: what each agency sent within its period (for period quotas); None: cannot be counted
    sent: tuple[int, int] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.home = Home(self.root)
        for d in (self.home.uploads, self.home.batches):
            d.mkdir(parents=True, exist_ok=True)
        self.spool = Spool(self.home)
        for agency in self.keys:
            for folder in (self.inbox_dir(agency, FLOW), self.outbox_dir(agency, FLOW)):
                folder.mkdir(parents=True, exist_ok=True)

    def authenticate(self, username: str, key: paramiko.PKey) -> bool:
        return self.keys.get(username) == key.get_base64()

    def login_failed(self, username: str, remote: str, attempts: int) -> None:
        with self.lock:
            self.events.append(("login.failed", username, str(attempts)))

    def session_opened(self, agency: str, remote: str) -> str:
        with self.lock:
            self.events.append(("login.succeeded", agency))
            return f"s{len(self.events)}"

    def session_closed(self, session: str, why: str) -> None:
        with self.lock:
            self.events.append(("session.ended", session, why))

    def known_addresses(self) -> tuple[str, ...]:
        return ()

    def inbox_flows(self, agency: str) -> tuple[str, ...]:
        return (FLOW,)

    def outbox_flows(self, agency: str) -> tuple[str, ...]:
        return (FLOW,)

    def held_files(self) -> tuple[Path, ...]:
        return database_files(self.home.ledger)

    def inbox_dir(self, agency: str, flow: str) -> Path:
        return self.home.inbox(agency, flow)

    def outbox_dir(self, agency: str, flow: str) -> Path:
        return self.home.outbox(agency, flow)

    def max_upload_bytes(self, agency: str, flow: str) -> int:
        return self.upload_limit

    def new_upload(self, agency: str, flow: str, name: str) -> Upload:
        return self.spool.new_upload(agency, flow, name)

    def adopt(self, agency: str, flow: str, path: Path, name: str) -> Upload:
        return self.spool.adopt(path, agency, flow, name)

    def receive(self, upload: Upload) -> str:
        meta = upload.finish(datetime.now(UTC).isoformat())
        with self.lock:
            self.received.append((upload.name, meta.size))
        return meta.uid

    def discard(self, upload: Upload, why: str) -> None:
        with self.lock:
            self.discarded.append((upload.name, upload.size, why))
        upload.discard()

    def outcome_event(self, session: str, agency: str, flow: str, name: str, event: str,
                      size: int) -> None:
        with self.lock:
            self.events.append((f"outcome.{event}", agency, name))

    def unanswered(self, agency: str) -> tuple[int, int]:
        if self.queue_broken:
            raise RuntimeError("the queue cannot be read")
        return self.queued

    def address_banned(self, address: str, score: int, seconds: int, count: int) -> None:
        with self.lock:
            self.bans.append((address, score, seconds, count))

    def received_since(self, agency: str, seconds: float) -> tuple[int, int]:
        if self.sent is None:
            raise RuntimeError("what the agency sent cannot be counted")
        return self.sent

    def login_refused(self, agency: str | None, remote: str, why: str) -> None:
        with self.lock:
            self.events.append(("login.refused", agency or "", why))


@dataclass
class Door:
    """A running in-process front door and the desks that use it."""

    server: SFTPServer
    door: RecordingDoor
    port: int
    desks: dict[str, AgencyDesk]

    def sftp(self, agency: str, *commands: str, check: bool = False, key: Path | None = None
             ) -> subprocess.CompletedProcess[bytes]:
        return self.desks[agency].sftp(HOST, self.port, list(commands), check=check, key=key)

    @contextmanager
    def client(self, agency: str) -> Iterator[paramiko.SFTPClient]:
        """A paramiko SFTP client logged in as ``agency`` (for what OpenSSH's sftp cannot do)."""
        with self.transport(agency) as transport:
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            try:
                yield sftp
            finally:
                sftp.close()

    @contextmanager
    def transport(self, agency: str) -> Iterator[paramiko.Transport]:
        desk = self.desks[agency]
        sock = socket.create_connection((HOST, self.port), timeout=10)
        transport = paramiko.Transport(sock)
        try:
            transport.connect(username=agency,
                              pkey=paramiko.Ed25519Key(filename=str(desk.ssh_key)))
            yield transport
        finally:
            transport.close()


def ssh_desk(agency: str, root: Path) -> AgencyDesk:
    """An agency desk with only an SSH key (the front door never sees OpenPGP)."""
    desk = AgencyDesk(agency, root / agency)
    desk.dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", agency,
                    "-f", str(desk.ssh_key)], check=True, capture_output=True)
    return desk


@contextmanager
def front_door(root: Path, limits: Limits, agencies: tuple[str, ...] = ("alpha", "beta"),
               **door_options: object) -> Iterator[Door]:
    host_key = root / "host_ed25519"
    if not host_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                       check=True, capture_output=True)
    desks = {a: ssh_desk(a, root / "desks") if not (root / "desks" / a / "id_ed25519").exists()
             else AgencyDesk(a, root / "desks" / a) for a in agencies}
    keys = {a: d.ssh_public.read_text().split()[1] for a, d in desks.items()}
    door = RecordingDoor(root / "home", keys, **door_options)  # type: ignore[arg-type]
    server = SFTPServer(door, host_key, Listen(HOST, 0), limits)
    _, port = server.start()
    for desk in desks.values():
        desk.trust_host(HOST, port, host_key.with_suffix(".pub"))
    try:
        yield Door(server, door, port, desks)
    finally:
        server.stop()
