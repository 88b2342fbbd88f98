"""The exchange's working state, kept in ``ledger.db`` beside the ledger.

Four tables, none of them part of the hash-chained ledger, all written in the
same SQLite transaction as the ledger entry that records the change:

- ``batches``: every received upload and the stage it has reached;
- ``batch_ids``: which batch ids each agency has used per flow (replays);
- ``datasets``: which reference snapshot is current for each dataset;
- ``comparisons``: how often each agency had each NIP compared, per flow and day,
  for the flows that bound it (``max_comparisons_per_nip``): the NIP only as a
  keyed value (AES under a key derived from ``keys/register.key``, with a tag of
  its own, so that it matches no value of a snapshot either), counted with the
  batch's ``batch.processed`` entry and kept only as long as the bound counts it.

(The policy archive lives beside them too, but belongs to the ledger:
:mod:`exchanged.ledger.archive`.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

import numpy as np

from exchanged.errors import RetryLater
from exchanged.flows import Comparisons
from exchanged.flows.model import ComparisonBound
from exchanged.home import Home
from exchanged.ledger import Ledger, Transaction
from exchanged.matching.register import RegisterStore, Snapshot
from exchanged.matching.register.keys import IdentifierCipher

RECEIVED = "received"
OPENED = "opened"
ADMITTED = "admitted"
REJECTED = "rejected"
PROCESSED = "processed"
ANSWERED = "answered"
STAGES = (RECEIVED, OPENED, ADMITTED, REJECTED, PROCESSED, ANSWERED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    uid TEXT PRIMARY KEY,
    agency TEXT NOT NULL,
    flow TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    name_ok INTEGER NOT NULL,
    replay_of TEXT,
    stage TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    running INTEGER NOT NULL DEFAULT 0,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    upload_sha256 TEXT NOT NULL,
    upload_bytes INTEGER NOT NULL,
    decision TEXT,
    reasons TEXT,
    reject_seq INTEGER,
    outcome_kind TEXT,
    outcome_name TEXT,
    outcome_sha256 TEXT,
    counts TEXT,
    retries INTEGER NOT NULL DEFAULT 0,
    shunted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS batches_by_stage ON batches(stage);
CREATE UNIQUE INDEX IF NOT EXISTS batches_outcome_name
    ON batches(agency, flow, outcome_name) WHERE outcome_name IS NOT NULL;
CREATE TABLE IF NOT EXISTS batch_ids (
    agency TEXT NOT NULL,
    flow TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    uid TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (agency, flow, batch_id)
);
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY,
    snapshot TEXT NOT NULL,
    rows INTEGER NOT NULL,
    loaded_at TEXT NOT NULL,
    uid TEXT NOT NULL,
    signed_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS comparisons (
    agency TEXT NOT NULL,
    flow TEXT NOT NULL,
    nip_key TEXT NOT NULL,
    day TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (agency, flow, nip_key, day)
);
CREATE INDEX IF NOT EXISTS comparisons_by_day ON comparisons(agency, flow, day);
"""

#: the tag the comparisons' keyed NIPs are made with (a snapshot's are tagged "nip")
COMPARISON_TAG: Final = "comparisons:nip"

COLUMNS = (
    "uid, agency, flow, batch_id, name_ok, replay_of, stage, attempts, running, received_at, "
    "updated_at, "
    "upload_sha256, upload_bytes, decision, reasons, reject_seq, outcome_kind, outcome_name, "
    "outcome_sha256, counts, retries, shunted"
)


#: columns added since the table was first made: name -> its declaration
ADDED_COLUMNS = {"retries": "INTEGER NOT NULL DEFAULT 0", "shunted": "INTEGER NOT NULL DEFAULT 0"}


def upgrade(ledger: Ledger) -> None:
    """Add the columns an older home's ``batches`` table lacks."""
    have = {str(r[1]) for r in ledger.connection().execute("PRAGMA table_info(batches)")}
    for name, declaration in ADDED_COLUMNS.items():
        if name not in have:
            ledger.write(f"ALTER TABLE batches ADD COLUMN {name} {declaration}")


@dataclass(frozen=True)
class Batch:
    uid: str
    agency: str
    flow: str
    batch_id: str
    name_ok: bool
    replay_of: str | None
    stage: str
    attempts: int
    running: int
    received_at: str
    updated_at: str
    upload_sha256: str
    upload_bytes: int
    decision: str | None
    reasons: str | None
    reject_seq: int | None
    outcome_kind: str | None
    outcome_name: str | None
    outcome_sha256: str | None
    counts: str | None
    #: tries that ended in RetryLater since it last moved on (bounded: then it is shunted)
    retries: int = 0
    #: 0: in the pipeline; 1: shunted, waiting for an administrator; 2: requeued by one
    shunted: int = 0

    @property
    def decision_fields(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.decision or "{}")
        return value

    def ids(self) -> dict[str, str]:
        """The ledger's columns for this batch."""
        return {"agency": self.agency, "flow": self.flow, "batch": self.batch_id}


class State:
    """Reads and writes the working state; writes always inside a ledger transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def get(self, uid: str) -> Batch | None:
        row = self.ledger.connection().execute(
            f"SELECT {COLUMNS} FROM batches WHERE uid = ?", (uid,)
        ).fetchone()
        return None if row is None else Batch(*row)

    def get_in(self, txn: Transaction, uid: str) -> Batch:
        row = txn.execute(f"SELECT {COLUMNS} FROM batches WHERE uid = ?", (uid,)).fetchone()
        assert row is not None, "batch vanished"
        return Batch(*row)

    def unfinished(self) -> list[Batch]:
        """The batches still in the pipeline (not answered, not shunted), oldest first."""
        rows = self.ledger.connection().execute(
            f"SELECT {COLUMNS} FROM batches WHERE stage != ? AND shunted = 0 "
            "ORDER BY received_at, uid", (ANSWERED,)
        ).fetchall()
        return [Batch(*r) for r in rows]

    def shunted(self) -> list[Batch]:
        """The batches set aside after their last retry, waiting for an administrator."""
        rows = self.ledger.connection().execute(
            f"SELECT {COLUMNS} FROM batches WHERE shunted = 1 ORDER BY received_at, uid"
        ).fetchall()
        return [Batch(*r) for r in rows]

    def count_retry(self, txn: Transaction, uid: str) -> Batch:
        txn.execute("UPDATE batches SET retries = retries + 1 WHERE uid = ?", (uid,))
        return self.get_in(txn, uid)

    def shunt(self, txn: Transaction, uid: str) -> None:
        txn.execute("UPDATE batches SET shunted = 1 WHERE uid = ?", (uid,))

    def requeue(self, txn: Transaction, uid: str) -> bool:
        """An administrator puts a shunted batch back (the daemon takes it up); False if the
        batch is not shunted."""
        cursor = txn.execute("UPDATE batches SET shunted = 2, retries = 0 "
                             "WHERE uid = ? AND shunted = 1", (uid,))
        return cursor.rowcount == 1

    def take_requeued(self) -> list[str]:
        """The batches an administrator requeued, now back in the pipeline."""
        uids = [str(r[0]) for r in self.ledger.connection().execute(
            "SELECT uid FROM batches WHERE shunted = 2 ORDER BY received_at, uid")]
        for uid in uids:
            self.ledger.write("UPDATE batches SET shunted = 0 WHERE uid = ? AND shunted = 2",
                              (uid,))
        return uids

    def answered_with_leftovers(self, uids: list[str]) -> list[str]:
        """Those of ``uids`` that are answered."""
        conn = self.ledger.connection()
        return [uid for uid in dict.fromkeys(uids)
                if (row := conn.execute("SELECT stage FROM batches WHERE uid = ?", (uid,)
                                        ).fetchone()) is not None and row[0] == ANSWERED]

    def known_uids(self) -> set[str]:
        return {r[0] for r in self.ledger.connection().execute("SELECT uid FROM batches")}

    def recent(self, limit: int = 20) -> list[Batch]:
        rows = self.ledger.connection().execute(
            f"SELECT {COLUMNS} FROM batches ORDER BY received_at DESC, uid DESC LIMIT ?", (limit,)
        ).fetchall()
        return [Batch(*r) for r in rows]

    # -- writes, inside a transaction --------------------------------------------------------

    def insert(
        self,
        txn: Transaction,
        *,
        uid: str,
        agency: str,
        flow: str,
        batch_id: str,
        name_ok: bool,
        received_at: str,
        upload_sha256: str,
        upload_bytes: int,
    ) -> str | None:
        """Record a received batch; claims its batch id. Returns the uid it replays, if any."""
        replay_of: str | None = None
        if name_ok:
            row = txn.execute(
                "SELECT uid FROM batch_ids WHERE agency = ? AND flow = ? AND batch_id = ?",
                (agency, flow, batch_id),
            ).fetchone()
            if row is None:
                txn.execute(
                    "INSERT INTO batch_ids (agency, flow, batch_id, uid, received_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (agency, flow, batch_id, uid, received_at),
                )
            else:
                replay_of = str(row[0])
        txn.execute(
            "INSERT INTO batches (uid, agency, flow, batch_id, name_ok, replay_of, stage, "
            "attempts, received_at, updated_at, upload_sha256, upload_bytes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
            (uid, agency, flow, batch_id, int(name_ok), replay_of, RECEIVED, received_at,
             received_at, upload_sha256, upload_bytes),
        )
        return replay_of

    def first_use(self, agency: str, flow: str, batch_id: str) -> tuple[str, str] | None:
        row = self.ledger.connection().execute(
            "SELECT uid, received_at FROM batch_ids WHERE agency = ? AND flow = ? AND batch_id = ?",
            (agency, flow, batch_id),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def count_recovery(self, txn: Transaction, uid: str) -> Batch:
        """At start-up: a batch that was being processed when the daemon died counts one
        more recovery (Mailman's ``.bak`` counter); one merely waiting does not."""
        txn.execute("UPDATE batches SET attempts = attempts + running, running = 0 WHERE uid = ?",
                    (uid,))
        return self.get_in(txn, uid)

    def set_running(self, uid: str, running: bool) -> None:
        # not a stage change (no ledger entry): crash accounting only, autocommitted
        self.ledger.write("UPDATE batches SET running = ? WHERE uid = ?", (int(running), uid))

    def clear_running(self) -> None:
        """A clean stop: the batches it interrupted are not charged a recovery."""
        self.ledger.write("UPDATE batches SET running = 0 WHERE running != 0")

    def unanswered(self, agency: str) -> tuple[int, int]:
        """Bytes and number of the agency's received batches not answered yet (its queue)."""
        waiting = tuple(s for s in STAGES if s != ANSWERED)
        # by stage, listed, so that the stage index leaves out the answered (nearly all)
        row = self.ledger.connection().execute(
            f"SELECT COALESCE(SUM(upload_bytes), 0), COUNT(*) FROM batches "
            f"WHERE stage IN ({', '.join('?' * len(waiting))}) AND agency = ?",
            (*waiting, agency)).fetchone()
        return int(row[0]), int(row[1])

    def outcome_owner(self, agency: str, flow: str, name: str) -> str | None:
        """The batch id whose outcome has this file name."""
        row = self.ledger.connection().execute(
            "SELECT batch_id FROM batches WHERE agency = ? AND flow = ? AND outcome_name = ?",
            (agency, flow, name)).fetchone()
        return None if row is None else str(row[0])

    def move(self, txn: Transaction, uid: str, stage: str, now: str, **fields: Any) -> None:
        assert stage in STAGES
        allowed = {
            "decision", "reasons", "reject_seq", "outcome_kind", "outcome_name",
            "outcome_sha256", "counts",
        }
        # attempts is not reset: it counts the start-ups that found this batch
        # unfinished, so a batch that keeps crashing the daemon is caught whatever
        # stage it reaches
        # a batch that moves on starts its count of tries afresh
        sets = ["stage = ?", "updated_at = ?", "retries = 0"]
        params: list[Any] = [stage, now]
        for key, value in fields.items():
            assert key in allowed, key
            sets.append(f"{key} = ?")
            params.append(value)
        params.append(uid)
        txn.execute(f"UPDATE batches SET {', '.join(sets)} WHERE uid = ?", params)

    def outcome_name_taken(self, txn: Transaction, agency: str, flow: str, name: str) -> bool:
        row = txn.execute(
            "SELECT 1 FROM batches WHERE agency = ? AND flow = ? AND outcome_name = ?",
            (agency, flow, name),
        ).fetchone()
        return row is not None

    # -- datasets -----------------------------------------------------------------------------

    def current_snapshot(self, dataset: str) -> str | None:
        row = self.ledger.connection().execute(
            "SELECT snapshot FROM datasets WHERE name = ?", (dataset,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_snapshot(
        self, txn: Transaction, dataset: str, snapshot: str, rows: int, now: str, uid: str,
        signed_at: int,
    ) -> str | None:
        """Make ``snapshot`` current; returns the one it replaces."""
        row = txn.execute("SELECT snapshot FROM datasets WHERE name = ?", (dataset,)).fetchone()
        txn.execute(
            "INSERT INTO datasets (name, snapshot, rows, loaded_at, uid, signed_at) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET snapshot = excluded.snapshot, rows = excluded.rows, "
            "loaded_at = excluded.loaded_at, uid = excluded.uid, signed_at = excluded.signed_at",
            (dataset, snapshot, rows, now, uid, signed_at),
        )
        return None if row is None else str(row[0])

    def forget_comparisons(self, txn: Transaction, flows: Sequence[str]) -> int:
        """An agreement has ended: the keyed NIPs its flows counted go; returns how many rows."""
        marks = ",".join("?" * len(flows))
        cursor = txn.execute(f"DELETE FROM comparisons WHERE flow IN ({marks})", tuple(flows))
        return int(cursor.rowcount)

    def remove_dataset(self, txn: Transaction, dataset: str) -> None:
        """No snapshot of ``dataset`` is current any more (its agreement has ended)."""
        txn.execute("DELETE FROM datasets WHERE name = ?", (dataset,))

    def current_load(self, dataset: str) -> tuple[str, int] | None:
        """When the exchange received the upload behind the current snapshot (by its own
        clock), and when that upload was signed (Unix time)."""
        row = self.ledger.connection().execute(
            "SELECT b.received_at, d.signed_at FROM datasets d JOIN batches b ON b.uid = d.uid "
            "WHERE d.name = ?", (dataset,)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def datasets(self) -> list[tuple[str, str, int, str]]:
        return [
            (str(r[0]), str(r[1]), int(r[2]), str(r[3]))
            for r in self.ledger.connection().execute(
                "SELECT name, snapshot, rows, loaded_at FROM datasets ORDER BY name"
            )
        ]

    # -- comparisons counted against a bound ---------------------------------------------------

    def comparisons_made(self, agency: str, flow: str, keys: Sequence[str], since: date,
                         txn: Transaction | None = None) -> dict[str, int]:
        """How often the agency had each keyed NIP compared in the flow since ``since``."""
        sql = ("SELECT nip_key, SUM(count) FROM comparisons WHERE agency = ? AND flow = ? "
               "AND nip_key IN (SELECT value FROM json_each(?)) AND day >= ? GROUP BY nip_key")
        params = (agency, flow, json.dumps(list(keys)), since.isoformat())
        rows = (txn.execute(sql, params) if txn is not None
                else self.ledger.connection().execute(sql, params)).fetchall()
        return {str(k): int(n) for k, n in rows}

    def count_comparisons(self, txn: Transaction, agency: str, flow: str,
                          taken: Comparisons) -> dict[str, int]:
        """Count what a batch compared, in the transaction of its ``batch.processed`` entry;
        returns the counts that entry records. Forgets what the bound no longer counts.

        Another batch of the agency may have compared one of its NIPs since this one
        asked (two workers): then this batch's answer would cross the bound, and it is
        answered again later, against the count as it is then (:class:`RetryLater`)."""
        since = taken.day - timedelta(days=taken.days - 1)
        wanted = Counter(taken.keys)
        made = self.comparisons_made(agency, flow, list(wanted), since, txn)
        if any(made.get(key, 0) + n > taken.count for key, n in wanted.items()):
            raise RetryLater("another batch compared a NIP of this batch meanwhile")
        txn.conn.executemany(
            "INSERT INTO comparisons (agency, flow, nip_key, day, count) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(agency, flow, nip_key, day) DO UPDATE SET count = count + excluded.count",
            [(agency, flow, key, taken.day.isoformat(), n) for key, n in wanted.items()])
        txn.execute("DELETE FROM comparisons WHERE agency = ? AND flow = ? AND day < ?",
                    (agency, flow, since.isoformat()))
        return {"compared": len(taken.keys), "not_compared": taken.refused,
                "bound": taken.count, "days": taken.days}


class ComparisonBudget:
    """One batch's side of its flow's ``max_comparisons_per_nip`` bound, as the flow sees it
    (:class:`exchanged.flows.ComparisonBudget`): what the agency had compared within the
    period, read beside the ledger, and what this batch takes, counted only when its answer
    is recorded (:meth:`State.count_comparisons`). NIPs are keyed as soon as they arrive."""

    def __init__(self, state: State, cipher: IdentifierCipher, agency: str, flow: str,
                 bound: ComparisonBound, day: date) -> None:
        self._state = state
        self._cipher = cipher
        self._agency = agency
        self._flow = flow
        self._bound = bound
        self._day = day
        self._since = day - timedelta(days=bound.days - 1)
        self._taken: Counter[str] = Counter()
        self._refused = 0

    def _keys(self, identifiers: Sequence[str]) -> list[str]:
        raw = np.ascontiguousarray(self._cipher.values(COMPARISON_TAG, identifiers)).tobytes()
        return [raw[i * 16:(i + 1) * 16].hex() for i in range(len(identifiers))]

    def take(self, identifiers: Sequence[str]) -> list[bool]:
        if not identifiers:
            return []
        keys = self._keys(identifiers)
        made = self._state.comparisons_made(self._agency, self._flow, keys, self._since)
        granted = []
        for key in keys:
            ok = made.get(key, 0) + self._taken[key] < self._bound.count
            if ok:
                self._taken[key] += 1
            else:
                self._refused += 1
            granted.append(ok)
        return granted

    def taken(self) -> Comparisons:
        """What the batch took, for its answer's record."""
        return Comparisons(day=self._day, count=self._bound.count, days=self._bound.days,
                           keys=tuple(self._taken.elements()), refused=self._refused)


class ReferenceData:
    """The reference datasets, as flows see them: stores, and the current snapshot of each."""

    def __init__(self, home: Home, state: State) -> None:
        self.home = home
        self.state = state
        self._secret = home.register_key.read_bytes()

    def store(self, dataset: str) -> RegisterStore:
        return RegisterStore(self.home.reference / dataset, self._secret)

    def comparisons(self, agency: str, flow: str, bound: ComparisonBound, day: date
                    ) -> ComparisonBudget:
        """A batch's budget under a flow's comparison bound, its NIPs keyed with the
        register key (the day: the batch's receipt, in the agreement's zone)."""
        return ComparisonBudget(self.state, IdentifierCipher(self._secret), agency, flow,
                                bound, day)

    def current(self, dataset: str) -> Snapshot | None:
        snapshot = self.state.current_snapshot(dataset)
        if snapshot is None:
            return None
        return self.store(dataset).open(snapshot)

    def clean(self) -> int:
        """Remove snapshots no dataset points at (a load cut off by a crash); returns the count."""
        current = {name: snap for name, snap, _, _ in self.state.datasets()}
        removed = 0
        if not self.home.reference.exists():
            return 0
        for folder in self.home.reference.iterdir():
            if folder.is_dir():
                keep = [current[folder.name]] if folder.name in current else []
                removed += self.store(folder.name).remove_unreferenced(keep)
        return removed
