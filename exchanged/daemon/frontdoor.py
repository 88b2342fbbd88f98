"""How agencies reach the exchange: the front door's wiring to the pipeline.

:class:`FrontDoor` is what the embedded SFTP server may ask of the exchange (the
:class:`~exchanged.sftp.door.Door` protocol); :class:`EmbeddedFront` and
:class:`OpenSSHFront` are the two ways agencies come in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import paramiko

from exchanged.admin.reminders import NOTICES_FOLDER
from exchanged.batch.pipeline import Pipeline, PolicyHolder
from exchanged.batch.spool import Upload
from exchanged.errors import ConfigError, as_unavailable
from exchanged.home import Config, Home
from exchanged.home.agencies import Agencies
from exchanged.home.drop import database_files
from exchanged.home.keyed import keyed_hash, text_key
from exchanged.ledger import Ledger, format_ts, utc_now, witness
from exchanged.ledger.checkpoints import LEDGER_FOLDER
from exchanged.ledger.failures import FailedLogins
from exchanged.ledger.sessions import SessionBook
from exchanged.sftp import SFTPServer, openssh
from exchanged.sftp.defender import address_key

log = logging.getLogger("exchanged")


class FrontDoor:
    """What the SFTP server may ask of the exchange (implements
    :class:`exchanged.sftp.door.GuardedDoor`: a Door that also counts an agency's queue
    for its quota and records bans; and :class:`exchanged.sftp.door.AgencyDoor`: what an
    agency sent within its period, refused logins on record)."""

    def __init__(self, home: Home, config: Config, ledger: Ledger, pipeline: Pipeline,
                 policy: PolicyHolder) -> None:
        self.home = home
        self.config = config
        self.ledger = ledger
        self.pipeline = pipeline
        self.policy = policy
        self.agencies = Agencies(home)
        self.sessions = SessionBook(ledger)
        self.failures = FailedLogins(ledger)
        self._key: bytes | None = None

    def _guarded(self, call: Callable[..., object], *args: Any, **kwargs: Any) -> object:
        """Write to ledger.db for the front door. If the exchange cannot write, intake stops
        in the pipeline exactly as when a batch finds it out (and exchange.available is
        recorded once it can write again), then the error goes on to the caller, which
        refuses what it could not record."""
        try:
            return call(*args, **kwargs)
        except Exception as e:
            # this thread's connection may have been left unable to write: a new one next time
            self.ledger.close()
            problem = as_unavailable(e)
            if problem is not None:
                self.pipeline.cannot_write(str(problem))
            raise

    def _append(self, kind: str, **fields: Any) -> None:
        self._guarded(self.ledger.append, kind, **fields)

    def authenticate(self, username: str, key: paramiko.PKey) -> bool:
        agency = self.agencies.get(username)
        return agency is not None and agency.accepts(key)

    def _hmac(self, text: str) -> str:
        """A keyed hash of untrusted text (see :mod:`exchanged.home.keyed`)."""
        if self._key is None:
            self._key = text_key(self.home.ledger_hmac_key)
        return keyed_hash(self._key, text)

    def login_failed(self, username: str, remote: str, attempts: int) -> None:
        known = self.agencies.get(username) is not None
        # an unknown user name is not written as such: it could be anything, a NIK too
        self._guarded(self.failures.failed, address_key(_address(remote)), remote, attempts,
                      username if known else None, None if known else self._hmac(username))
        log.warning("login failed from %s (%s user, %d attempts)", remote,
                    "known" if known else "unknown", attempts, extra={"remote": remote})

    def session_opened(self, agency: str, remote: str) -> str:
        session = self._guarded(self.sessions.open, agency, remote, utc_now())
        assert isinstance(session, str)
        return session

    def session_closed(self, session: str, why: str) -> None:
        self._guarded(self.sessions.close, session, why, utc_now())

    def known_addresses(self) -> tuple[str, ...]:
        """Addresses agencies logged in from lately (the door keeps slots for them)."""
        rows = self.ledger.connection().execute(
            "SELECT json_extract(data, '$.remote') FROM ledger "
            "WHERE kind IN ('session.ended', 'login.succeeded') ORDER BY seq DESC LIMIT 1000"
        ).fetchall()
        return tuple(dict.fromkeys(_address(str(r[0])) for r in rows if r[0]))

    def tick(self, *, everything: bool = False) -> None:
        """Write the aggregated failed logins that are due (all of them when stopping)."""
        self._guarded(self.failures.flush, everything=everything)

    def address_banned(self, address: str, score: int, seconds: int, count: int) -> None:
        # the failures that led to it first, then the ban
        self._guarded(self.failures.flush, address)
        # an address (or an IPv6 /64) is the network's, not a citizen's: it may be recorded
        self._append("login.banned", actor="exchange", address=address, score=score,
                     seconds=seconds, count=count)

    def unanswered(self, agency: str) -> tuple[int, int]:
        return self.pipeline.state.unanswered(agency)

    def received_since(self, agency: str, seconds: float) -> tuple[int, int]:
        """What the agency handed over in the last ``seconds``, from the ledger (kept for
        ever, unlike the batches' rows): its ``batch.received`` entries."""
        since = format_ts(utc_now() - timedelta(seconds=seconds))
        row = self.ledger.connection().execute(
            "SELECT COALESCE(SUM(json_extract(data, '$.bytes')), 0), COUNT(*) FROM ledger "
            "WHERE agency = ? AND ts >= ? AND kind = 'batch.received'",
            (agency, since)).fetchone()
        return int(row[0]), int(row[1])

    def login_refused(self, agency: str | None, remote: str, why: str) -> None:
        self._append("login.refused", agency=agency, actor=agency or "unknown", remote=remote,
                     why=why)

    def inbox_flows(self, agency: str) -> tuple[str, ...]:
        return self.policy.get().inbox_flows(agency)

    def outbox_flows(self, agency: str) -> tuple[str, ...]:
        # every agency also collects the ledger's signed checkpoints, and notices
        return (*self.policy.get().outbox_flows(agency), LEDGER_FOLDER, NOTICES_FOLDER)

    def held_files(self) -> tuple[Path, ...]:
        return database_files(self.home.ledger)

    def inbox_dir(self, agency: str, flow: str) -> Path:
        return self.home.inbox(agency, flow)

    def outbox_dir(self, agency: str, flow: str) -> Path:
        return self.home.outbox(agency, flow)

    def max_upload_bytes(self, agency: str, flow: str) -> int:
        found = self.policy.get().find_flow(flow)
        limit = found[1].max_bytes if found and found[1].max_bytes else self.config.max_upload_bytes
        return min(limit, self.config.max_upload_bytes)

    def new_upload(self, agency: str, flow: str, name: str) -> Upload:
        return self.pipeline.new_upload(agency, flow, name)

    def adopt(self, agency: str, flow: str, path: Path, name: str) -> Upload:
        return self.pipeline.adopt(agency, flow, path, name)

    def receive(self, upload: Upload) -> str:
        return self.pipeline.receive(upload)

    def discard(self, upload: Upload, why: str) -> None:
        self.pipeline.discard(upload, why)

    def cosignature(self, agency: str, name: str, data: bytes) -> None:
        witness.receive_cosignature(self.home.configured(self.config), self.ledger, agency,
                                    name, data)

    def outcome_event(self, session: str, agency: str, flow: str, name: str, event: str,
                      size: int) -> None:
        batch = self.pipeline.state.outcome_owner(agency, flow, name)
        name_hmac = self._hmac(name)
        # a removal changes the outbox (once per outcome): an entry of its own; downloads,
        # which an agency can repeat without end, are counted in the session's entry
        if event == "removed":
            self._append("outcome.removed", agency=agency, flow=flow, batch=batch,
                         actor=agency, bytes=size, name_hmac=name_hmac)
        self._guarded(self.sessions.event, session, flow, batch, name_hmac, event, size)


def _address(remote: str) -> str:
    """The address of ``HOST:PORT`` as the server writes it (an IPv6 address too: the port
    is after the last colon)."""
    return remote.rsplit(":", 1)[0].strip("[]")


class FrontEnd(Protocol):
    """How agencies reach the exchange: the embedded SFTP server, or sshd's chroots."""

    def bind(self) -> str: ...

    def serve(self) -> None: ...

    def alive(self) -> bool: ...

    def connections(self) -> int: ...

    def stop(self) -> None: ...


class EmbeddedFront:
    def __init__(self, server: SFTPServer) -> None:
        self.server = server

    def bind(self) -> str:
        host, port = self.server.bind()
        return f"SFTP on {host}:{port}"

    def serve(self) -> None:
        self.server.serve()

    def alive(self) -> bool:
        return self.server.alive()

    def connections(self) -> int:
        return self.server.connections()

    def stop(self) -> None:
        self.server.stop()


class OpenSSHFront:
    """OpenSSH mode: take complete uploads from the agencies' chroot inboxes."""

    def __init__(self, home: Home, pipeline: Pipeline, policy: PolicyHolder) -> None:
        self.home = home
        self.pipeline = pipeline
        self.policy = policy
        self.agencies = Agencies(home)
        self.watcher = openssh.Watcher(home.drop, self.take)

    def take(self, agency: str, flow: str, path: Path, name: str) -> None:
        if self.agencies.get(agency) is None or flow not in self.policy.get().inbox_flows(agency):
            log.warning("a file in a folder that is no agency's inbox was left alone")
            return
        upload = self.pipeline.adopt(agency, flow, path, name)
        self.pipeline.receive(upload)

    def bind(self) -> str:
        if not self.home.drop.is_dir():
            raise ConfigError(f"the OpenSSH chroots' folder {self.home.drop} does not exist; "
                              "register the agencies first ('exchanged agency add')")
        return f"OpenSSH mode, watching {self.home.drop}"

    def serve(self) -> None:
        self.watcher.start()

    def alive(self) -> bool:
        return self.watcher.alive()

    def connections(self) -> int:
        return 0

    def stop(self) -> None:
        self.watcher.stop()
