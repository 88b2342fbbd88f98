"""Reference data snapshots: what a flow matches against, kept without identifiers in the clear.

A snapshot is an immutable SQLite file ``<directory>/<snapshot-id>.db``. It
holds, per person, a keyed hash (BLAKE2b with the exchange's secret
``keys/register.key``) of the NIK and of the NIP instead of the numbers, and
the non-identifying fields a flow may disclose (``jenis_asn``, ``instansi``,
...). So the store answers "is this NIK an ASN, and what may be disclosed"
without keeping a list of NIKs on disk.

A snapshot is built under a hidden temporary name and renamed into place
when complete; which snapshot is *current* is recorded by the caller (in the
same database transaction as the ledger entry that announces it), so a load
that fails halfway leaves the previous snapshot in force.
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


class SnapshotBuilder:
    """Builds one snapshot; :meth:`finish` renames it into place, :meth:`abort` removes it."""

    def __init__(self, store: RegisterStore, snapshot_id: str, columns: Sequence[str]) -> None:
        self._store = store
        self.snapshot_id = snapshot_id
        self.columns = tuple(columns)
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
        self._conn.execute(
            f"CREATE TABLE staging (line INTEGER NOT NULL, nik_key BLOB NOT NULL, "
            f"nip_key BLOB NOT NULL{''.join(f', {_q(c)} TEXT' for c in self.columns)})"
        )
        self._conn.execute("BEGIN")
        self._pending: list[tuple[object, ...]] = []
        self._insert = (
            f"INSERT INTO staging VALUES (?, ?, ?{', ?' * len(self.columns)})"
        )

    def add(self, line: int, nik: str, nip: str, values: Sequence[str]) -> None:
        secret = self._store.secret
        self._pending.append(
            (line, identifier_key(secret, nik), identifier_key(secret, nip), *values)
        )
        if len(self._pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._conn.executemany(self._insert, self._pending)
            self._pending = []

    def finish(self) -> BuildReport:
        """Keep the first row of each NIK and NIP, report the others, and publish the file."""
        self._flush()
        c = self._conn
        cols = "".join(f", {_q(x)}" for x in self.columns)
        c.execute(
            f"CREATE TABLE register (nik_key BLOB PRIMARY KEY, nip_key BLOB NOT NULL UNIQUE, "
            f"line INTEGER NOT NULL{''.join(f', {_q(x)} TEXT' for x in self.columns)})"
        )
        c.execute(
            f"INSERT OR IGNORE INTO register (nik_key, nip_key, line{cols}) "
            f"SELECT nik_key, nip_key, line{cols} FROM staging ORDER BY line"
        )
        duplicates: list[Duplicate] = []
        for line, first_nik, first_nip in c.execute(
            "SELECT s.line, rn.line, rp.line FROM staging s "
            "LEFT JOIN register rn ON rn.nik_key = s.nik_key "
            "LEFT JOIN register rp ON rp.nip_key = s.nip_key "
            "WHERE s.line NOT IN (SELECT line FROM register) ORDER BY s.line"
        ):
            if first_nik is not None:
                duplicates.append(Duplicate(line, "nik", first_nik))
            elif first_nip is not None:
                duplicates.append(Duplicate(line, "nip", first_nip))
            else:
                # both keys were taken by rows that were themselves dropped: the NIK's
                # first row lost its NIP to an earlier row; report against the NIK
                first = c.execute(
                    "SELECT MIN(line) FROM staging WHERE nik_key = "
                    "(SELECT nik_key FROM staging WHERE line = ?)",
                    (line,),
                ).fetchone()[0]
                duplicates.append(Duplicate(line, "nik", int(first)))
        c.execute("DROP TABLE staging")
        c.execute("CREATE TABLE snapshot_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        rows = int(c.execute("SELECT COUNT(*) FROM register").fetchone()[0])
        c.executemany(
            "INSERT INTO snapshot_meta VALUES (?, ?)",
            [("id", self.snapshot_id), ("rows", str(rows)), ("columns", ",".join(self.columns))],
        )
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
        self.columns = tuple(c for c in meta["columns"].split(",") if c)

    def key(self, identifier: str) -> bytes:
        return identifier_key(self._secret, identifier)

    def lookup_niks(
        self, niks: Iterable[str], fields: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        """For each NIK found, the requested fields (in order); NIKs not found are absent."""
        return self._lookup("nik_key", niks, fields)

    def lookup_nips(
        self, nips: Iterable[str], fields: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        return self._lookup("nip_key", nips, fields)

    def _lookup(
        self, column: str, identifiers: Iterable[str], fields: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        for f in fields:
            if f not in self.columns:
                raise KeyError(f)
        by_key = {self.key(i): i for i in identifiers}
        out: dict[str, tuple[str, ...]] = {}
        select = ", ".join(_q(f) for f in fields) if fields else "1"
        keys = list(by_key)
        for start in range(0, len(keys), 900):
            part = keys[start : start + 900]
            marks = ",".join("?" * len(part))
            for row in self._conn.execute(
                f"SELECT {column}, {select} FROM register WHERE {column} IN ({marks})", part
            ):
                out[by_key[row[0]]] = tuple("" if v is None else str(v) for v in row[1:]) if fields else ()
        return out

    def close(self) -> None:
        self._conn.close()


class RegisterStore:
    """The snapshots of one dataset."""

    def __init__(self, directory: Path, secret: bytes) -> None:
        self.directory = directory
        self.secret = secret
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def new_snapshot(self, snapshot_id: str, columns: Sequence[str]) -> SnapshotBuilder:
        return SnapshotBuilder(self, snapshot_id, columns)

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


def _q(name: str) -> str:
    # column names come from the validated policy (letters, digits, _), quoted anyway
    return '"' + name.replace('"', '""') + '"'


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
