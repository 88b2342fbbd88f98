"""Reference data snapshots: what a flow matches against, kept without identifiers in the clear.

A snapshot is an immutable SQLite file ``<directory>/<snapshot-id>.db``. It
holds, per row, a keyed hash (BLAKE2b with the exchange's secret
``keys/register.key``) of each identifier (NIK, NIP, NKK) instead of the
number, and only the other fields the policy says to keep. So the store answers
"is this NIK in the register, and what may be disclosed" without keeping a list
of NIKs on disk.

A snapshot is built under a hidden temporary name and renamed into place when
complete; which snapshot is *current* is recorded by the caller (in the same
database transaction as the ledger entry that announces it), so a load that
fails halfway leaves the previous snapshot in force.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

KEY_BYTES = 16
CHUNK = 5000
IN_CHUNK = 900  # below SQLite's bound-parameter limit


def identifier_key(secret: bytes, value: str) -> bytes:
    """The keyed hash stored in place of an identifier."""
    return hashlib.blake2b(value.encode("ascii"), key=secret, digest_size=KEY_BYTES).digest()


@dataclass(frozen=True)
class Duplicate:
    line: int
    column: str
    first_line: int


@dataclass(frozen=True)
class BuildReport:
    snapshot_id: str
    rows_loaded: int
    duplicates: tuple[Duplicate, ...]


def _q(name: str) -> str:
    # column names come from the validated policy (letters, digits, _), quoted anyway
    return '"' + name.replace('"', '""') + '"'


def _k(name: str) -> str:
    return _q(name + "_key")


class SnapshotBuilder:
    """Builds one snapshot; :meth:`finish` renames it into place, :meth:`abort` removes it.

    ``keys`` are the identifier columns (stored as keyed hashes, indexed);
    those in ``unique`` may appear once (the first row wins, later ones are
    reported); ``values`` are the other columns kept.
    """

    def __init__(self, store: RegisterStore, snapshot_id: str, keys: Sequence[str],
                 unique: Sequence[str], values: Sequence[str]) -> None:
        self._store = store
        self.snapshot_id = snapshot_id
        self.keys = tuple(keys)
        self.unique = tuple(unique)
        self.values = tuple(values)
        self.final = store.directory / f"{snapshot_id}.db"
        self.tmp = store.directory / f".{snapshot_id}.db.tmp"
        fd = os.open(self.tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        self._conn = sqlite3.connect(self.tmp, isolation_level=None)
        # the file is renamed into place only when complete and fsynced, so
        # the build itself needs no journal
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.execute("PRAGMA temp_store=FILE")
        columns = ", ".join(["line INTEGER NOT NULL"] + [f"{_k(k)} BLOB" for k in self.keys]
                            + [f"{_q(v)} TEXT" for v in self.values])
        self._conn.execute(f"CREATE TABLE staging ({columns})")
        self._conn.execute("BEGIN")
        self._pending: list[tuple[object, ...]] = []
        width = 1 + len(self.keys) + len(self.values)
        self._insert = f"INSERT INTO staging VALUES ({', '.join('?' * width)})"

    def add(self, line: int, keys: Sequence[str], values: Sequence[str]) -> None:
        """One row: its line, its identifiers (in ``keys`` order, "" if absent), its values."""
        secret = self._store.secret
        hashed = [identifier_key(secret, k) if k else None for k in keys]
        self._pending.append((line, *hashed, *values))
        if len(self._pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._conn.executemany(self._insert, self._pending)
            self._pending = []

    def finish(self) -> BuildReport:
        """Keep the first row of each unique identifier, report the others, publish the file."""
        self._flush()
        c = self._conn
        columns = ["line"] + [k + "_key" for k in self.keys] + list(self.values)
        names = ", ".join(_q(x) for x in columns)
        c.execute(
            "CREATE TABLE register (line INTEGER PRIMARY KEY"
            + "".join(f", {_k(k)} BLOB" for k in self.keys)
            + "".join(f", {_q(v)} TEXT" for v in self.values) + ")"
        )
        for k in self.keys:
            unique = "UNIQUE " if k in self.unique else ""
            c.execute(f"CREATE {unique}INDEX {_q('by_' + k)} ON register({_k(k)})")
        c.execute(f"INSERT OR IGNORE INTO register ({names}) "
                  f"SELECT {names} FROM staging ORDER BY line")
        duplicates: list[Duplicate] = []
        if self.unique:
            joins = " ".join(f"LEFT JOIN register {_q('r_' + k)} ON {_q('r_' + k)}.{_k(k)} = "
                             f"s.{_k(k)}" for k in self.unique)
            firsts = ", ".join(f"{_q('r_' + k)}.line" for k in self.unique)
            for row in c.execute(
                f"SELECT s.line, {firsts} FROM staging s {joins} "
                "WHERE s.line NOT IN (SELECT line FROM register) ORDER BY s.line"
            ):
                line, found = int(row[0]), row[1:]
                for column, first in zip(self.unique, found, strict=True):
                    if first is not None:
                        duplicates.append(Duplicate(line, column, int(first)))
                        break
                else:
                    # its identifiers were all taken by rows that were dropped
                    # themselves; report it against the first identifier's first line
                    k = self.unique[0]
                    first_line = c.execute(
                        f"SELECT MIN(line) FROM staging WHERE {_k(k)} = "
                        f"(SELECT {_k(k)} FROM staging WHERE line = ?)", (line,)).fetchone()[0]
                    duplicates.append(Duplicate(line, k, int(first_line)))
        c.execute("DROP TABLE staging")
        c.execute("CREATE TABLE snapshot_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        rows = int(c.execute("SELECT COUNT(*) FROM register").fetchone()[0])
        c.executemany("INSERT INTO snapshot_meta VALUES (?, ?)", [
            ("id", self.snapshot_id), ("rows", str(rows)), ("keys", ",".join(self.keys)),
            ("values", ",".join(self.values)),
        ])
        c.execute("COMMIT")
        c.execute("VACUUM")
        c.close()
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.final)
        _fsync_dir(self._store.directory)
        return BuildReport(self.snapshot_id, rows, tuple(duplicates))

    def abort(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
        for p in (self.tmp, self.final):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


class Snapshot:
    """A published snapshot, open for lookups."""

    def __init__(self, store: RegisterStore, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        self._secret = store.secret
        path = store.directory / f"{snapshot_id}.db"
        if not path.exists():
            raise FileNotFoundError(snapshot_id)
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        meta = dict(self._conn.execute("SELECT key, value FROM snapshot_meta").fetchall())
        self.rows = int(meta["rows"])
        self.keys = tuple(c for c in meta["keys"].split(",") if c)
        self.columns = tuple(c for c in meta["values"].split(",") if c)

    def lookup(self, key: str, identifiers: Iterable[str], fields: Sequence[str]
               ) -> dict[str, tuple[str, ...]]:
        """For each identifier found in column ``key``, the requested fields (in order)."""
        if key not in self.keys:
            raise KeyError(key)
        for f in fields:
            if f not in self.columns:
                raise KeyError(f)
        by_key = {identifier_key(self._secret, i): i for i in identifiers}
        out: dict[str, tuple[str, ...]] = {}
        select = ", ".join(_q(f) for f in fields) if fields else "1"
        keys = list(by_key)
        for start in range(0, len(keys), IN_CHUNK):
            part = keys[start : start + IN_CHUNK]
            marks = ",".join("?" * len(part))
            for row in self._conn.execute(
                f"SELECT {_k(key)}, {select} FROM register WHERE {_k(key)} IN ({marks})", part
            ):
                values = tuple("" if v is None else str(v) for v in row[1:]) if fields else ()
                out[by_key[row[0]]] = values
        return out

    def close(self) -> None:
        self._conn.close()


class RegisterStore:
    """The snapshots of one dataset."""

    def __init__(self, directory: Path, secret: bytes) -> None:
        self.directory = directory
        self.secret = secret
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def new_snapshot(self, snapshot_id: str, *, keys: Sequence[str], unique: Sequence[str],
                     values: Sequence[str]) -> SnapshotBuilder:
        return SnapshotBuilder(self, snapshot_id, keys, unique, values)

    def open(self, snapshot_id: str) -> Snapshot:
        return Snapshot(self, snapshot_id)

    def snapshot_ids(self) -> Iterator[str]:
        for p in sorted(self.directory.glob("*.db")):
            yield p.stem

    def remove_unreferenced(self, keep: Iterable[str]) -> int:
        """Remove temporaries and snapshots not in ``keep``; returns how many files went."""
        keep_set = set(keep)
        removed = 0
        for p in self.directory.iterdir():
            stale_tmp = p.name.startswith(".") and p.name.endswith(".tmp")
            if stale_tmp or (p.suffix == ".db" and p.stem not in keep_set):
                p.unlink()
                removed += 1
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
