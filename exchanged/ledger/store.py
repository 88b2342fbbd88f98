"""The append-only, hash-chained ledger in ``HOME/ledger.db``.

Each entry is hashed over an exact, canonical encoding of its columns (the
stored text of ``data`` included) and chained to the entry before it::

    leaf = SHA-256(0x00 || canonical(entry))          (RFC 6962 leaf hash)
    hash = SHA-256(prev_hash || leaf)                 (prev of entry 1: 32 zero bytes)

Triggers refuse UPDATE and DELETE on the ledger table; ``verify`` recomputes
the chain and checks the triggers are still there. The ledger never holds
personal data: :meth:`Transaction.append` refuses any value that looks like a
NIK or NIP (a 16- or 18-digit number), so a future bug cannot leak one in.

Other tables in the same file (the batches' stages) are not part of the
ledger; they live here so a stage change and its ledger entry commit in one
SQLite transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exchanged.errors import LedgerError, Unavailable, as_unavailable
from exchanged.ids.redact import PERSONAL_NUMBER_RE
from exchanged.ledger.archive import altered_policy_sets
from exchanged.ledger.kinds import KINDS
from exchanged.ledger.merkle import TreeBuilder, leaf_hash

GENESIS = "0" * 64
ENTRY_COLUMNS = "seq, ts, kind, agency, flow, batch, actor, data, prev, hash"
SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    agency TEXT,
    flow TEXT,
    batch TEXT,
    actor TEXT NOT NULL,
    data TEXT NOT NULL,
    prev TEXT NOT NULL,
    leaf TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_by_batch ON ledger(batch);
CREATE INDEX IF NOT EXISTS ledger_by_agency ON ledger(agency, ts);
CREATE INDEX IF NOT EXISTS ledger_by_kind ON ledger(kind, ts);
CREATE INDEX IF NOT EXISTS ledger_by_ts ON ledger(ts);
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS ledger_meta_no_update BEFORE UPDATE ON ledger_meta
BEGIN SELECT RAISE(ABORT, 'ledger metadata is write-once: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS ledger_meta_no_delete BEFORE DELETE ON ledger_meta
BEGIN SELECT RAISE(ABORT, 'ledger metadata is write-once: DELETE refused'); END;
-- the policy archive (exchanged.ledger.archive): append-only like the ledger
CREATE TABLE IF NOT EXISTS policy_sets (
    sha256 TEXT PRIMARY KEY,
    archived_at TEXT NOT NULL,
    files TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS policy_sets_no_update BEFORE UPDATE ON policy_sets
BEGIN SELECT RAISE(ABORT, 'archived policy sets are never changed'); END;
CREATE TRIGGER IF NOT EXISTS policy_sets_no_delete BEFORE DELETE ON policy_sets
BEGIN SELECT RAISE(ABORT, 'archived policy sets are never removed'); END;
"""

TRIGGERS = ("ledger_no_update", "ledger_no_delete", "ledger_meta_no_update",
            "ledger_meta_no_delete", "policy_sets_no_update", "policy_sets_no_delete")


def _expected_triggers() -> dict[str, str]:
    """Each trigger's exact SQL, as SCHEMA creates it (a look-alike that does nothing fails)."""
    out = {}
    for statement in SCHEMA.split(";"):
        statement = statement.strip()
        if statement.startswith("CREATE TRIGGER"):
            name = statement.split()[5]
            out[name] = statement.replace("IF NOT EXISTS ", "") + "; END"
    return out

HEX_RE = re.compile(r"[0-9a-fA-F]*")
LIST_INDEX_RE = re.compile(r"(\[\d+\])+$")
# keys whose values are digests or fingerprints: checked to be hex instead
DIGEST_KEY_SUFFIXES = ("sha256", "hash", "hmac", "fingerprint")

Clock = Callable[[], datetime]

def utc_now() -> datetime:
    return datetime.now(UTC)


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Entry:
    """One ledger entry, as stored."""

    seq: int
    ts: str
    kind: str
    agency: str | None
    flow: str | None
    batch: str | None
    actor: str
    data_text: str
    prev: str
    hash: str

    @property
    def data(self) -> dict[str, Any]:
        value = json.loads(self.data_text)
        assert isinstance(value, dict)
        return value

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "agency": self.agency,
            "flow": self.flow,
            "batch": self.batch,
            "actor": self.actor,
            "data": self.data,
            "prev": self.prev,
            "hash": self.hash,
        }


def canonical_data(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_bytes(
    seq: int,
    ts: str,
    kind: str,
    agency: str | None,
    flow: str | None,
    batch: str | None,
    actor: str,
    data_text: str,
) -> bytes:
    head = json.dumps(
        [seq, ts, kind, agency, flow, batch, actor], separators=(",", ":"), ensure_ascii=False
    )
    return (head + "\n" + data_text).encode("utf-8")


def chain_hash(prev: str, encoded: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + leaf_hash(encoded)).hexdigest()


def check_no_personal_data(value: Any, path: str = "") -> None:
    """Refuse values that could be personal data, and types that do not hash canonically.

    >>> check_no_personal_data({"rows": 12, "upload_sha256": "ab" * 32})
    >>> check_no_personal_data({"note": "row 3171010101900001"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    exchanged.errors.LedgerError: refused to write note to the ledger: it looks like personal ...
    """
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if len(str(abs(value))) in (16, 18):
            raise LedgerError(
                f"refused to write {path or 'a value'} to the ledger: it looks like personal "
                "data (a 16- or 18-digit number)"
            )
        return
    if isinstance(value, str):
        # a list of digests (``user_hmacs[3]``) is checked as each of its digests
        key = LIST_INDEX_RE.sub("", path.rsplit(".", 1)[-1]).removesuffix("s")
        if key.endswith(DIGEST_KEY_SUFFIXES):
            if not HEX_RE.fullmatch(value) or len(value) > 128:
                raise LedgerError(f"refused to write {path} to the ledger: not a hex digest")
            return
        if PERSONAL_NUMBER_RE.search(value):
            raise LedgerError(
                f"refused to write {path or 'a value'} to the ledger: it looks like personal "
                "data (a 16- or 18-digit number)"
            )
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise LedgerError(f"refused to write {path}: keys must be strings")
            check_no_personal_data(k, f"{path}.<key>")
            check_no_personal_data(v, f"{path}.{k}" if path else k)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_no_personal_data(v, f"{path}[{i}]")
        return
    raise LedgerError(
        f"refused to write {path or 'a value'} to the ledger: {type(value).__name__} values "
        "are not allowed (use str, int, bool, lists and mappings)"
    )


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # a failed statement may have rolled back already


class Transaction:
    """An open write transaction on ``ledger.db``; entries and other writes commit together."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock,
                 kinds: Collection[str] = KINDS) -> None:
        self.conn = conn
        self._clock = clock
        self._kinds = kinds
        self._head: tuple[int, str] | None = None
        self.appended: list[int] = []

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def _current_head(self) -> tuple[int, str]:
        if self._head is None:
            row = self.conn.execute(
                "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
            self._head = (0, GENESIS) if row is None else (int(row[0]), str(row[1]))
        return self._head

    def append(
        self,
        kind: str,
        *,
        agency: str | None = None,
        flow: str | None = None,
        batch: str | None = None,
        actor: str = "exchange",
        **data: Any,
    ) -> int:
        """Append one entry; returns its sequence number."""
        if kind not in self._kinds:
            raise LedgerError(f"ledger entry kind {kind!r} is not a documented kind")
        for name, value in (("agency", agency), ("flow", flow), ("batch", batch), ("actor", actor)):
            check_no_personal_data(value, name)
        check_no_personal_data(data)
        data_text = canonical_data(data)
        prev_seq, prev_hash = self._current_head()
        seq = prev_seq + 1
        ts = format_ts(self._clock())
        leaf = leaf_hash(entry_bytes(seq, ts, kind, agency, flow, batch, actor, data_text))
        digest = hashlib.sha256(bytes.fromhex(prev_hash) + leaf).hexdigest()
        self.conn.execute(
            "INSERT INTO ledger (seq, ts, kind, agency, flow, batch, actor, data, prev, leaf, "
            "hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, ts, kind, agency, flow, batch, actor, data_text, prev_hash, leaf.hex(), digest),
        )
        self._head = (seq, digest)
        self.appended.append(seq)
        return seq


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    ledger_id: str | None = None
    #: the Merkle tree head over every entry (hex), when intact
    root_hash: str | None = None


@dataclass(frozen=True)
class Query:
    agency: str | None = None
    flow: str | None = None
    batch: str | None = None
    #: one upload's entries only (its uid; entries that carry none, such as downloads, stay)
    uid: str | None = None
    kind: str | None = None
    since: str | None = None
    until: str | None = None
    after_seq: int = 0
    limit: int | None = None


class Ledger:
    """The ledger database; one connection per thread."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock = utc_now,
        extra_schema: str = "",
        readonly: bool = False,
    ) -> None:
        self.path = path
        self._clock = clock
        self._extra_schema = extra_schema
        self._readonly = readonly
        self._local = threading.local()

    # -- connections ---------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self._readonly:
            if not self.path.exists():
                raise LedgerError(f"no ledger at {self.path}")
            uri = f"file:{self.path}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None,
                                   check_same_thread=False)
        else:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            # WAL: readers (compliance staff, `ledger query`) never block the daemon;
            # synchronous=FULL: a committed entry survives a power cut.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._open()
            except sqlite3.Error as e:
                raise as_unavailable(e) or e from None  # a damaged file stays what it is
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- creation and checks ---------------------------------------------------------------

    def create(self, *, exchange_name: str) -> str:
        """Create a new, empty ledger; returns its id. Refuses an existing one."""
        if self.path.exists():
            raise LedgerError(f"a ledger already exists at {self.path}")
        conn = self.connection()
        conn.executescript(SCHEMA + self._extra_schema)
        ledger_id = str(uuid.uuid4())
        with self.transaction() as txn:
            txn.execute(
                "INSERT INTO ledger_meta (key, value) "
                "VALUES ('id', ?), ('schema', ?), ('created', ?)",
                (ledger_id, SCHEMA_VERSION, format_ts(self._clock())),
            )
            txn.append("ledger.created", ledger_id=ledger_id, exchange=exchange_name)
        self.path.chmod(0o600)
        return ledger_id

    def open_checked(self) -> None:
        """Open an existing ledger for writing; refuse it if its triggers are gone."""
        if not self.path.exists():
            raise LedgerError(f"no ledger at {self.path}; is this an initialised home?")
        conn = self.connection()
        missing = self.missing_triggers()
        if missing:
            raise LedgerError(
                f"the ledger's append-only triggers are missing ({', '.join(missing)}): "
                "it may have been tampered with; run 'exchanged ledger verify'"
            )
        if self._extra_schema:
            conn.executescript(self._extra_schema)

    def missing_triggers(self) -> list[str]:
        """Triggers that are gone, or that are not what the ledger created."""
        rows = self.connection().execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall()
        present = {r[0]: " ".join(str(r[1]).split()) for r in rows}
        expected = {k: " ".join(v.split()) for k, v in _expected_triggers().items()}
        return [t for t in TRIGGERS if present.get(t) != expected.get(t)]

    def ledger_id(self) -> str:
        row = self.connection().execute("SELECT value FROM ledger_meta WHERE key = 'id'").fetchone()
        if row is None:
            raise LedgerError("the ledger has no id: it is damaged")
        return str(row[0])

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT: the write lock serialises the chain.

        SQLite's own failures of the storage (full, read-only, I/O, busy) leave as
        :class:`~exchanged.errors.Unavailable`, recognised by their result code.
        """
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise as_unavailable(e) or LedgerError(
                f"the ledger cannot be written ({e.sqlite_errorname})") from None
        txn = Transaction(conn, self._clock)
        try:
            yield txn
        except BaseException as e:
            _rollback(conn)
            if isinstance(e, sqlite3.Error) and (problem := as_unavailable(e)) is not None:
                raise problem from None
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            _rollback(conn)
            raise as_unavailable(e) or LedgerError(
                f"the ledger cannot be written ({e.sqlite_errorname})") from None

    def write(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One autocommitted write to a table beside the ledger (never the ledger itself);
        the storage failing it is :class:`~exchanged.errors.Unavailable`."""
        try:
            self.connection().execute(sql, params)
        except sqlite3.Error as e:
            raise as_unavailable(e) or e from None

    def append(self, kind: str, **fields: Any) -> int:
        """Append one entry in a transaction of its own."""
        with self.transaction() as txn:
            return txn.append(kind, **fields)

    # -- reading ---------------------------------------------------------------------------

    def leaves(self, upto: int) -> list[bytes]:
        """The leaf hashes of entries 1..upto, as stored (verify checks them)."""
        return [bytes.fromhex(r[0]) for r in self.connection().execute(
            "SELECT leaf FROM ledger WHERE seq <= ? ORDER BY seq", (upto,))]

    def head(self) -> tuple[int, str]:
        row = self.connection().execute(
            "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))

    def last_of(self, kind: str) -> Entry | None:
        """The newest entry of ``kind``, if any."""
        row = self.connection().execute(
            f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE kind = ? ORDER BY seq DESC LIMIT 1",
            (kind,),
        ).fetchone()
        return None if row is None else Entry(*row)

    def entry(self, seq: int) -> Entry | None:
        row = self.connection().execute(
            f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE seq = ?",
            (seq,),
        ).fetchone()
        return None if row is None else Entry(*row)

    def query(self, q: Query) -> Iterator[Entry]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("agency", q.agency), ("flow", q.flow), ("batch", q.batch)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if q.uid is not None:
            clauses.append("coalesce(json_extract(data, '$.uid'), ?) = ?")
            params.extend([q.uid, q.uid])
        if q.kind is not None:
            if q.kind.endswith(("*", ".")):
                prefix = q.kind.rstrip("*")
                clauses.append("substr(kind, 1, ?) = ?")
                params.extend([len(prefix), prefix])
            else:
                clauses.append("kind = ?")
                params.append(q.kind)
        if q.since is not None:
            clauses.append("ts >= ?")
            params.append(q.since)
        if q.until is not None:
            clauses.append("ts < ?")
            params.append(q.until)
        if q.after_seq:
            clauses.append("seq > ?")
            params.append(q.after_seq)
        sql = f"SELECT {ENTRY_COLUMNS} FROM ledger"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq"
        if q.limit is not None:
            sql += " LIMIT ?"
            params.append(q.limit)
        for row in self.connection().execute(sql, params):
            yield Entry(*row)

    def verify(self) -> VerifyReport:
        """Recompute the whole chain; report the first problem found."""
        try:
            return self._verify()
        except sqlite3.DatabaseError as e:
            return VerifyReport(False, 0, 0, GENESIS,
                                f"the ledger file cannot be read ({e.sqlite_errorname})")
        except Unavailable as e:
            return VerifyReport(False, 0, 0, GENESIS, f"the ledger file cannot be read: {e}")

    def _verify(self) -> VerifyReport:
        conn = self.connection()
        missing = self.missing_triggers()
        ledger_id: str | None
        try:
            ledger_id = self.ledger_id()
        except LedgerError:
            ledger_id = None
        prev_hash = GENESIS
        expected_seq = 1
        count = 0
        tree = TreeBuilder()
        sha256 = hashlib.sha256
        dumps = json.dumps
        cursor = conn.execute(
            "SELECT seq, ts, kind, agency, flow, batch, actor, data, prev, leaf, hash FROM ledger "
            "ORDER BY seq"
        )
        # the loop is the whole cost of verifying a million entries: kept lean on purpose
        for seq, ts, kind, agency, flow, batch, actor, data_text, prev, leaf_hex, stored in cursor:
            if seq != expected_seq:
                return VerifyReport(
                    False, count, expected_seq - 1, prev_hash,
                    f"entry {expected_seq} is missing (next present is {seq})", ledger_id,
                )
            if prev != prev_hash:
                return VerifyReport(
                    False, count, seq - 1, prev_hash,
                    f"entry {seq} does not link to entry {seq - 1} (prev hash differs)", ledger_id,
                )
            head = dumps([seq, ts, kind, agency, flow, batch, actor], separators=(",", ":"),
                         ensure_ascii=False)
            leaf = sha256(b"\x00" + (head + "\n" + data_text).encode("utf-8")).digest()
            digest = sha256(bytes.fromhex(prev_hash) + leaf).hexdigest()
            if digest != stored or leaf.hex() != leaf_hex:
                return VerifyReport(
                    False, count, seq - 1, prev_hash,
                    f"entry {seq} was altered (its hash does not match its content)", ledger_id,
                )
            tree.add(leaf)
            prev_hash = digest
            expected_seq += 1
            count += 1
        if count == 0:
            return VerifyReport(False, 0, 0, GENESIS, "the ledger has no entries", ledger_id)
        if missing:
            return VerifyReport(
                False, count, count, prev_hash,
                f"the append-only triggers are missing ({', '.join(missing)})", ledger_id,
            )
        if ledger_id is None:
            return VerifyReport(False, count, count, prev_hash, "the ledger has no id", None)
        altered = altered_policy_sets(conn)
        if altered:
            return VerifyReport(
                False, count, count, prev_hash,
                f"archived policy sets were altered ({', '.join(a[:12] for a in altered)})",
                ledger_id,
            )
        return VerifyReport(True, count, count, prev_hash, None, ledger_id, tree.root().hex())
