"""What the SFTP front door may ask of the exchange, and nothing more.

The front door lets an agency in and hands finished uploads over; it never
decrypts, decides or matches. This protocol is the whole of what it knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import paramiko


class Upload(Protocol):
    """An upload being written, as the spool hands it to the front door."""

    agency: str
    flow: str
    name: str
    size: int

    def write(self, offset: int, data: bytes | memoryview) -> None: ...

    def forget_hash(self) -> None:
        """Stop hashing the bytes as they arrive: the upload will be held, and is hashed
        whole when it is handed over."""

    def keep_as(self, path: Path) -> None:
        """Move the finished bytes to ``path`` (a held upload) and drop the spool's folder."""


#: the spool's own upload type: the door hands back what it was given
U = TypeVar("U", bound=Upload)


class Door(Protocol[U]):
    def authenticate(self, username: str, key: paramiko.PKey) -> bool:
        """Is ``key`` a login key of agency ``username``?"""

    def login_failed(self, username: str, remote: str, attempts: int) -> None:
        """Record a connection that ended without a successful login (within the ledger's
        budget for them: aggregated beyond it)."""

    def session_opened(self, agency: str, remote: str) -> str:
        """An agency logged in: put its session on record (raises if it cannot: the
        session must not open); returns the session's id."""

    def session_closed(self, session: str, why: str) -> None:
        """The session ended (``why``: client, idle, key_changed, stopping): one ledger
        entry for all it did."""

    def held_files(self) -> tuple[Path, ...]:
        """The files of the databases the exchange holds open (its ledger's): never opened
        through a name in a drop folder (see :func:`exchanged.home.drop.is_held`)."""

    def inbox_flows(self, agency: str) -> tuple[str, ...]: ...

    def outbox_flows(self, agency: str) -> tuple[str, ...]: ...

    def inbox_dir(self, agency: str, flow: str) -> Path:
        """Where completed uploads with a temporary name wait to be renamed."""

    def outbox_dir(self, agency: str, flow: str) -> Path: ...

    def max_upload_bytes(self, agency: str, flow: str) -> int: ...

    def new_upload(self, agency: str, flow: str, name: str) -> U:
        """Start writing an upload (raises Unavailable when intake is stopped)."""

    def adopt(self, agency: str, flow: str, path: Path, name: str) -> U:
        """Take a held file (uploaded under a temporary name) as an upload named ``name``."""

    def receive(self, upload: U) -> str:
        """The upload was closed normally: hand it to processing; returns its uid."""

    def discard(self, upload: U, why: str) -> None:
        """The upload did not complete: drop and record it, never process it."""

    def outcome_event(self, session: str, agency: str, flow: str, name: str, event: str,
                      size: int) -> None:
        """An outcome file was downloaded completely or removed in ``session`` (counted in
        the session's entry; a removal also on its own)."""


@runtime_checkable
class GuardedDoor(Door[U], Protocol[U]):
    """A Door that also tells the front door's guards what they need: how much an agency has
    waiting, and where a ban goes on record. The server uses these when its Door has them
    (``isinstance`` at start); without them an agency's queue does not count towards its
    quota and a ban is only logged, not written to the ledger."""

    def unanswered(self, agency: str) -> tuple[int, int]:
        """Bytes and number of the agency's received batches not answered yet (its queue,
        which counts towards its inbox quota)."""

    def address_banned(self, address: str, score: int, seconds: int, count: int) -> None:
        """Record that ``address`` (an IPv4 address or an IPv6 /64) is banned for ``seconds``
        after repeated failed or silent connections; ``count`` says the how-manieth ban of
        it this is."""

    def known_addresses(self) -> tuple[str, ...]:
        """Addresses agencies logged in from before (the door keeps slots for them)."""



#: the inbox folder beside the flows' where an agency puts its cosignatures of checkpoints
WITNESS_FOLDER = "ledger"


@runtime_checkable
class WitnessDoor(Protocol):
    """A Door that takes agencies' cosignatures of the ledger's checkpoints
    (``/inbox/ledger/checkpoint-<size>.cosig``)."""

    def cosignature(self, agency: str, name: str, data: bytes) -> None:
        """Check and record a cosignature; a refusal is put, with its reason, in the
        agency's ``/outbox/ledger/`` (the SFTP close cannot carry it)."""


@runtime_checkable
class AgencyDoor(Protocol):
    """What the front door needs of the exchange for the agencies' own settings: what an
    agency sent within a period (its period quotas), and where a refused login goes on
    record. Without it, a period quota refuses every upload (fail closed) and a refused
    login is only logged."""

    def received_since(self, agency: str, seconds: float) -> tuple[int, int]:
        """Bytes and number of the batches ``agency`` handed over in the last ``seconds``."""

    def login_refused(self, agency: str | None, remote: str, why: str) -> None:
        """Record a login refused before its key was accepted (``why``: ``network``, the
        agency's allow_from does not hold the address; ``proxy-header``, a PROXY header from
        an address that is no trusted proxy)."""
