"""An agency's SFTP session on record as one entry, however much it did.

A download or a login written as an entry of its own lets an agency flood
the append-only ledger (2,000 downloads of one file, 2,001 entries that never
go away). So a session is recorded once, when it ends: ``session.ended`` with
who, from where, from when to when, why it ended, and what it did — downloads
and bytes, and per outcome (flow, batch, a keyed hash of the file name) how
often it was downloaded and whether it was removed. A session that touches
more than :data:`MAX_LISTED` outcomes writes ``session.activity`` for each
full list, so that no entry grows without bound.

While a session is open its record lives in ``open_sessions`` in
``ledger.db`` (beside the ledger, not part of its chain), updated at every
event. Crash semantics: the row is written before the session may open (a
session that cannot be recorded does not open), and every event updates it
before the client is answered; a daemon that stops cleanly closes every
session and writes its entry; a daemon killed or cut off from power leaves
rows that :meth:`SessionBook.recover` writes at the next start as
``session.ended`` with ``ended_by: cut_off`` — so an event is never lost,
only recorded late; the entry's ``ended`` is then when the daemon found it.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exchanged.ledger.store import Ledger, Transaction, format_ts

SCHEMA = """
CREATE TABLE IF NOT EXISTS open_sessions (
    id TEXT PRIMARY KEY,
    agency TEXT NOT NULL,
    remote TEXT NOT NULL,
    started TEXT NOT NULL,
    activity TEXT NOT NULL
);
"""

#: outcomes one entry lists at most; a session touching more writes session.activity for each
MAX_LISTED = 100

#: why a session ended, as session.ended records it
ENDINGS = ("client", "idle", "key_changed", "stopping", "cut_off", "refused")


@dataclass
class _Outcome:
    flow: str
    batch: str | None
    name_hmac: str
    downloads: int = 0
    removed: bool = False


@dataclass
class _Activity:
    downloads: int = 0
    downloaded_bytes: int = 0
    removals: int = 0
    #: per (flow, name_hmac), in the order first touched
    outcomes: dict[tuple[str, str], _Outcome] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        return {
            "downloads": self.downloads, "downloaded_bytes": self.downloaded_bytes,
            "removals": self.removals,
            "outcomes": [{"flow": o.flow, "batch": o.batch, "name_hmac": o.name_hmac,
                          "downloads": o.downloads, "removed": o.removed}
                         for o in self.outcomes.values()],
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> _Activity:
        activity = cls(int(data.get("downloads", 0)), int(data.get("downloaded_bytes", 0)),
                       int(data.get("removals", 0)))
        for o in data.get("outcomes", []):
            outcome = _Outcome(str(o["flow"]), o.get("batch"), str(o["name_hmac"]),
                               int(o.get("downloads", 0)), bool(o.get("removed", False)))
            activity.outcomes[(outcome.flow, outcome.name_hmac)] = outcome
        return activity


@dataclass
class _Open:
    agency: str
    remote: str
    started: str
    activity: _Activity = field(default_factory=_Activity)
    #: session.activity entries already written for it
    parts: int = 0


def new_session_id() -> str:
    """20 random lower-case letters (94 bits): never a run of digits the ledger would refuse
    as possibly personal data."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(20))


class SessionBook:
    """The open sessions of the front door, and their entries; safe from any thread."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}

    def open(self, agency: str, remote: str, now: datetime) -> str:
        """A session begins; its id. Raises if it cannot be recorded (it must not open)."""
        sid = new_session_id()
        session = _Open(agency, remote, format_ts(now))
        self.ledger.write(
            "INSERT INTO open_sessions (id, agency, remote, started, activity) "
            "VALUES (?, ?, ?, ?, ?)",
            (sid, agency, remote, session.started, json.dumps(session.activity.as_data())))
        with self._lock:
            self._open[sid] = session
        return sid

    def event(self, sid: str, flow: str, batch: str | None, name_hmac: str, event: str,
              size: int) -> None:
        """An outcome downloaded completely, or removed, in session ``sid``."""
        with self._lock:
            session = self._open.get(sid)
            if session is None:
                return
            activity = session.activity
            outcome = activity.outcomes.get((flow, name_hmac))
            if outcome is None:
                if len(activity.outcomes) >= MAX_LISTED:
                    self._write_part(sid, session)
                    activity = session.activity
                outcome = activity.outcomes[(flow, name_hmac)] = _Outcome(flow, batch, name_hmac)
            if event == "downloaded":
                outcome.downloads += 1
                activity.downloads += 1
                activity.downloaded_bytes += size
            else:
                outcome.removed = True
                activity.removals += 1
            self.ledger.write("UPDATE open_sessions SET activity = ? WHERE id = ?",
                              (json.dumps(activity.as_data()), sid))

    def _write_part(self, sid: str, session: _Open) -> None:
        """A full list: on record as session.activity, and a fresh list (one transaction)."""
        with self.ledger.transaction() as txn:
            txn.append("session.activity", agency=session.agency, actor=session.agency,
                       session=sid, remote=session.remote, started=session.started,
                       part=session.parts + 1, **session.activity.as_data())
            txn.execute("UPDATE open_sessions SET activity = ? WHERE id = ?",
                        (json.dumps(_Activity().as_data()), sid))
        session.parts += 1
        session.activity = _Activity()

    def close(self, sid: str, ended_by: str, now: datetime) -> int | None:
        """The session ended: its entry, and its row gone, in one transaction. If the
        ledger cannot take it now, the row stays for :meth:`recover` (raises)."""
        with self._lock:
            session = self._open.get(sid)
            if session is None:
                return None
            with self.ledger.transaction() as txn:
                seq = _ended(txn, sid, session, ended_by, now)
            del self._open[sid]
            return seq

    def agencies(self) -> dict[str, str]:
        """Open sessions: id -> agency."""
        with self._lock:
            return {sid: s.agency for sid, s in self._open.items()}

    def recover(self, now: datetime) -> int:
        """Sessions a daemon that stopped without closing them left open: on record now."""
        rows = self.ledger.connection().execute(
            "SELECT id, agency, remote, started, activity FROM open_sessions "
            "ORDER BY started").fetchall()
        for sid, agency, remote, started, activity in rows:
            session = _Open(str(agency), str(remote), str(started),
                            _Activity.from_data(json.loads(activity)))
            with self.ledger.transaction() as txn:
                _ended(txn, str(sid), session, "cut_off", now)
        return len(rows)


def _ended(txn: Transaction, sid: str, session: _Open, ended_by: str, now: datetime) -> int:
    started = datetime.fromisoformat(session.started.replace("Z", "+00:00"))
    seq = txn.append("session.ended", agency=session.agency, actor=session.agency,
                     session=sid, remote=session.remote, started=session.started,
                     seconds=int(max(0.0, (now - started).total_seconds())),
                     ended_by=ended_by, parts=session.parts, **session.activity.as_data())
    txn.execute("DELETE FROM open_sessions WHERE id = ?", (sid,))
    return seq
