"""Reference data snapshots: what a flow matches against, kept without identifiers in the clear.

A snapshot is one immutable file ``<directory>/<snapshot-id>.db``. It holds,
per row, a keyed value of each identifier (NIK, NIP, NKK) instead of the
number, and only the other fields the policy says to keep. So the store answers
"is this NIK in the register, and what may be disclosed" without keeping a list
of NIKs on disk.

The keyed value is AES-256 of one 16-byte block (a tag naming the column and
the identifier's length, then the number as a 64-bit integer) under a key
derived from the exchange's secret ``keys/register.key``. AES is a keyed
permutation: without the key the values say nothing about the numbers (as the
keyed BLAKE2b of the first format did), distinct numbers never collide, and it
runs over millions of identifiers in one call (docs/performance.md).

The file is a header (JSON: columns, row count, where each array is) followed by
plain arrays: per identifier column the keyed values sorted, with the row each
belongs to; per kept column a dictionary of its distinct values and a code per
row. A reader maps the file into memory (``numpy.memmap``), so opening a
snapshot costs nothing and a lookup touches only the pages it needs.

A snapshot is built under a hidden temporary name and renamed into place when
complete and fsynced; which snapshot is *current* is recorded by the caller (in
the same database transaction as the ledger entry that announces it), so a load
that fails halfway leaves the previous snapshot in force. Snapshots of the
first format (SQLite, same name) are still read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 16
CHUNK = 5000
IN_CHUNK = 900  # below SQLite's bound-parameter limit
# the first format's name is kept: a snapshot is told apart by its first bytes
SUFFIX = ".db"
#: a snapshot's fuzzy index beside it (exchanged.matching.fuzzy), removed with it
FUZZY_SUFFIX = ".fuzzy"
MAGIC = b"EXSNAP02"
SQLITE_MAGIC = b"SQLite format 3\0"
ALIGN = 64
#: blocks handed to the builder's thread and not yet spilled, at most
QUEUED_BLOCKS = 2
#: identifiers have at most this many digits (fits a 64-bit integer)
MAX_DIGITS = 18

U64Pairs = npt.NDArray[np.uint64]  # shape (n, 2): one keyed value per row
Rows = npt.NDArray[np.int64]


def identifier_key(secret: bytes, value: str) -> bytes:
    """The keyed hash of the first snapshot format (read-only now)."""
    return hashlib.blake2b(value.encode("ascii"), key=secret, digest_size=KEY_BYTES).digest()


class IdentifierCipher:
    """Turns identifiers (ASCII digits) into keyed 16-byte values, many at a time."""

    def __init__(self, secret: bytes) -> None:
        # a key of its own for this use, derived from the register secret
        self._key = hashlib.blake2b(b"exchanged identifier blocks v2", key=secret[:64],
                                    digest_size=32).digest()

    def digits(self, column: str, digits: npt.NDArray[np.uint8]) -> U64Pairs:
        """Keyed values of ``digits`` (shape (n, width), ASCII 0-9 each row)."""
        n, width = digits.shape
        if width > MAX_DIGITS:
            raise ValueError("identifiers have at most 18 digits")
        number = np.zeros(n, dtype=np.uint64)
        for i in range(width):
            number = number * np.uint64(10) + (digits[:, i] - 48).astype(np.uint64)
        plain = np.empty((n, 2), dtype=">u8")
        tag = hashlib.blake2b(f"{column}:{width}".encode(), digest_size=8).digest()
        plain[:, 0] = int.from_bytes(tag, "big")
        plain[:, 1] = number
        encryptor = Cipher(algorithms.AES(self._key), modes.ECB()).encryptor()
        sealed = encryptor.update(plain.tobytes()) + encryptor.finalize()
        return np.frombuffer(sealed, dtype=np.uint64).reshape(n, 2)

    def values(self, column: str, identifiers: Sequence[str]) -> U64Pairs:
        """Keyed values of identifiers given as text (each all ASCII digits)."""
        out = np.zeros((len(identifiers), 2), dtype=np.uint64)
        by_width: dict[int, list[int]] = {}
        for i, value in enumerate(identifiers):
            if not (value.isascii() and value.isdigit()) or len(value) > MAX_DIGITS:
                raise ValueError("an identifier is not all digits")
            by_width.setdefault(len(value), []).append(i)
        for width, where in by_width.items():
            joined = "".join(identifiers[i] for i in where).encode("ascii")
            matrix = np.frombuffer(joined, dtype=np.uint8).reshape(len(where), width)
            out[where] = self.digits(column, matrix)
        return out


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


def _raw(array: npt.NDArray[Any]) -> memoryview:
    """An array's bytes, without a copy when it is contiguous (also when it is empty)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    return flat.view(np.uint8).data


class SnapshotBuilder:
    """Builds one snapshot; :meth:`finish` renames it into place, :meth:`abort` removes it.

    ``keys`` are the identifier columns (stored as keyed values, indexed);
    those in ``unique`` may appear once (the first row wins, later ones are
    reported); ``values`` are the other columns kept. Rows come in blocks
    (:meth:`add_block`) or one at a time (:meth:`add`), in line order; they are
    spilled to a hidden build folder beside the snapshots, so memory does not grow
    with the register.
    """

    def __init__(self, store: RegisterStore, snapshot_id: str, keys: Sequence[str],
                 unique: Sequence[str], values: Sequence[str]) -> None:
        self._store = store
        self.snapshot_id = snapshot_id
        self.keys = tuple(keys)
        self.unique = tuple(unique)
        self.values = tuple(values)
        self.final = store.directory / f"{snapshot_id}{SUFFIX}"
        self.tmp = store.directory / f".{snapshot_id}{SUFFIX}.tmp"
        self.build = store.directory / f".{snapshot_id}.build"
        self.build.mkdir(mode=0o700)
        self._files: dict[str, IO[bytes]] = {}
        self._dictionaries: dict[str, dict[str, int]] = {v: {"": 0} for v in self.values}
        self._rows = 0
        self._absent: set[str] = set()
        self._pending: list[tuple[int, Sequence[str], Sequence[str]]] = []
        # blocks are keyed, sorted and spilled on a thread of their own: numpy and the
        # disk release the GIL, so this overlaps the checking of the next block
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")
        self._queued: deque[Future[None]] = deque()

    def _spill(self, name: str, array: npt.NDArray[Any]) -> None:
        f = self._files.get(name)
        if f is None:
            fd = os.open(self.build / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            f = self._files[name] = os.fdopen(fd, "wb")
        f.write(_raw(array))

    def add(self, line: int, keys: Sequence[str], values: Sequence[str]) -> None:
        """One row: its line, its identifiers (in ``keys`` order, "" if absent), its values."""
        self._pending.append((line, keys, values))
        if len(self._pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        lines = np.array([p[0] for p in pending], dtype=np.int64)
        cipher = self._store.cipher
        keyed: dict[str, tuple[U64Pairs, npt.NDArray[np.bool_]]] = {}
        for i, k in enumerate(self.keys):
            present = np.array([bool(p[1][i]) for p in pending], dtype=np.bool_)
            values = np.zeros((len(pending), 2), dtype=np.uint64)
            where = np.flatnonzero(present)
            if len(where):
                values[where] = cipher.values(k, [pending[j][1][i] for j in where])
            keyed[k] = (values, present)
        kept = {v: pa.array([p[2][i] for p in pending], type=pa.string())
                for i, v in enumerate(self.values)}
        self._submit(lines, keyed, kept, None)

    def add_block(self, lines: Rows, keyed: Mapping[str, tuple[U64Pairs, npt.NDArray[np.bool_]]],
                  kept: Mapping[str, pa.Array | None], select: Rows | None = None) -> None:
        """Rows in line order: per key column the keyed values and whether each row has
        one; per kept column the (checked) values, None if the file lacks the column.
        With ``select``, the rows are ``kept[...][select]`` (the keyed values and lines are
        already selected): a column is encoded whole and only its codes are picked."""
        self._flush()
        self._submit(lines, keyed, kept, select)

    def _submit(self, lines: Rows, keyed: Mapping[str, tuple[U64Pairs, npt.NDArray[np.bool_]]],
                kept: Mapping[str, pa.Array | None], select: Rows | None) -> None:
        # at most two blocks wait: memory stays a few blocks' worth
        while len(self._queued) >= QUEUED_BLOCKS:
            self._queued.popleft().result()
        self._queued.append(self._worker.submit(self._add, lines, keyed, kept, select))

    def _drain(self) -> None:
        while self._queued:
            self._queued.popleft().result()

    def _add(self, lines: Rows, keyed: Mapping[str, tuple[U64Pairs, npt.NDArray[np.bool_]]],
             kept: Mapping[str, pa.Array | None], select: Rows | None = None) -> None:
        n = len(lines)
        if not n:
            return
        self._spill("lines", lines.astype(np.int64))
        for k in self.keys:
            # sorted here, a block at a time (while gpg is still decrypting): finish then
            # only merges the sorted runs
            values, present = keyed[k]
            rows = np.flatnonzero(present)
            rows = rows[np.argsort(values[rows, 0], kind="stable")]
            # (first word, second word, row) side by side: one gather moves all three
            run = np.empty((len(rows), 3), dtype=np.uint64)
            run[:, :2] = values[rows]
            run[:, 2] = rows + self._rows
            self._spill(f"key.{k}", run)
        for v in self.values:
            column = kept[v]
            if column is None:
                self._absent.add(v)  # the file lacks the column: every row has ""
            else:
                codes = self._codes(v, column)
                self._spill(f"val.{v}", codes if select is None else codes[select])
        self._rows += n

    def _codes(self, column: str, values: pa.Array) -> npt.NDArray[np.uint32]:
        """Codes into the column's dictionary (its distinct values, "" first)."""
        encoded = values.dictionary_encode()
        dictionary = self._dictionaries[column]
        local = np.array([dictionary.setdefault(str(v), len(dictionary))
                          for v in encoded.dictionary.to_pylist()], dtype=np.uint32)
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        codes: npt.NDArray[np.uint32] = (local[indices] if len(local)
                                          else np.zeros(len(values), dtype=np.uint32))
        return codes

    def finish(self) -> BuildReport:
        """Keep the first row of each unique identifier, report the others, publish the file."""
        self._flush()
        self._drain()
        self._worker.shutdown()
        for f in self._files.values():
            f.close()
        self._files = {}
        n = self._rows
        lines = self._load("lines", np.int64)
        # the columns' merges are independent, and numpy sorts without the GIL
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="snapshot-merge") as pool:
            merged = {k: pool.submit(self._merged, k) for k in self.keys}
            index = {k: f.result() for k, f in merged.items()}
        keep, duplicates = self._first_occurrences(lines, index)
        m = int(keep.sum())
        # rows are renumbered in line order among the kept ones
        rank: Rows = np.cumsum(keep, dtype=np.int64) - 1 if m != n else np.zeros(0, np.int64)
        arrays: dict[str, npt.NDArray[Any]] = {}
        for k in self.keys:
            hi, lo, row = index[k]
            if m != n:
                mine = keep[row]
                hi, lo, row = hi[mine], lo[mine], rank[row[mine]]
            arrays[f"hi.{k}"] = hi
            arrays[f"lo.{k}"] = lo
            arrays[f"row.{k}"] = row.astype(np.uint32)
        for v in self.values:
            codes = self._load(f"val.{v}", np.uint32)
            if v in self._absent and not len(codes):
                codes = np.zeros(n, dtype=np.uint32)
            if m != n:
                codes = codes[keep]
            words = list(self._dictionaries[v])
            width = np.uint8 if len(words) <= 1 << 8 else (
                np.uint16 if len(words) <= 1 << 16 else np.uint32)
            arrays[f"val.{v}"] = codes.astype(width)
            data = "".join(words).encode("utf-8")
            ends = np.cumsum([0] + [len(w.encode("utf-8")) for w in words], dtype=np.int64)
            arrays[f"dict.{v}"] = np.frombuffer(data, dtype=np.uint8)
            arrays[f"dict_offsets.{v}"] = ends
        self._write(m, arrays)
        shutil.rmtree(self.build, ignore_errors=True)
        os.replace(self.tmp, self.final)
        _fsync_dir(self._store.directory)
        return BuildReport(self.snapshot_id, m, tuple(duplicates))

    def _load(self, name: str, dtype: type) -> npt.NDArray[Any]:
        path = self.build / name
        if not path.exists() or not path.stat().st_size:
            return np.zeros(0, dtype=dtype)
        # mapped, not read: the pages are still in the cache from the spill
        return np.memmap(path, dtype=dtype, mode="r")

    def _merged(self, key: str) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], Rows]:
        """A key column's values sorted (first word, then second), with their rows."""
        runs = self._load(f"key.{key}", np.uint64).reshape(-1, 3)
        # a stable sort of sorted runs merges them
        runs = runs[np.argsort(runs[:, 0], kind="stable")]
        hi, lo, row = runs[:, 0].copy(), runs[:, 1].copy(), runs[:, 2].astype(np.int64)
        del runs
        # equal first words (repeated identifiers, in practice): by the second word too
        tie = np.flatnonzero(hi[1:] == hi[:-1])
        if len(tie):
            members = np.unique(np.concatenate((tie, tie + 1)))
            sub = np.lexsort((lo[members], hi[members]))
            hi[members], lo[members], row[members] = (hi[members][sub], lo[members][sub],
                                                      row[members][sub])
        return hi, lo, row

    def _first_occurrences(
        self, lines: Rows,
        index: Mapping[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], Rows]],
    ) -> tuple[npt.NDArray[np.bool_], list[Duplicate]]:
        """Which rows are kept, and the duplicates, as the first format's ``INSERT OR
        IGNORE`` in line order into unique indexes decided them."""
        n = len(lines)
        involved = np.zeros(n, dtype=np.bool_)
        for u in self.unique:
            hi, lo, row = index[u]
            same = np.zeros(len(hi), dtype=np.bool_)
            if len(hi) > 1:
                same[1:] = (hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1])
            # both rows of every equal pair take part in a repeat
            both = same.copy()
            both[:-1] |= same[1:]
            involved[row[both]] = True
        keep = np.ones(n, dtype=np.bool_)
        if not involved.any():
            return keep, []
        # only rows whose identifiers repeat can be refused: decide those in line order
        ids: dict[str, dict[int, tuple[int, int]]] = {}
        for u in self.unique:
            hi, lo, row = index[u]
            mine = involved[row]
            ids[u] = dict(zip(row[mine].tolist(), zip(hi[mine].tolist(), lo[mine].tolist())))
        taken: dict[str, dict[tuple[int, int], int]] = {u: {} for u in self.unique}
        refused: list[int] = []
        for r in np.flatnonzero(involved).tolist():
            mine_ids = {u: ids[u][r] for u in self.unique if r in ids[u]}
            if any(ident in taken[u] for u, ident in mine_ids.items()):
                refused.append(r)
                continue
            for u, ident in mine_ids.items():
                taken[u][ident] = int(lines[r])
        duplicates = []
        for r in refused:
            for u in self.unique:
                first = taken[u].get(ids[u][r]) if r in ids[u] else None
                if first is not None:
                    duplicates.append(Duplicate(int(lines[r]), u, first))
                    break
            else:  # pragma: no cover - a refused row always repeats a kept one
                u = self.unique[0]
                same_rows = [x for x, ident in ids[u].items() if ident == ids[u].get(r)]
                duplicates.append(Duplicate(int(lines[r]), u, int(lines[same_rows].min())))
        keep[refused] = False
        return keep, duplicates

    def _write(self, rows: int, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        layout: dict[str, dict[str, Any]] = {}
        offset = 0
        for name, array in arrays.items():
            layout[name] = {"offset": offset, "dtype": array.dtype.str, "shape": list(array.shape)}
            offset += -(-array.nbytes // ALIGN) * ALIGN
        header = json.dumps({
            "id": self.snapshot_id, "rows": rows, "keys": list(self.keys),
            "values": list(self.values), "arrays": layout,
        }).encode()
        start = -(-(len(MAGIC) + 8 + len(header)) // ALIGN) * ALIGN
        fd = os.open(self.tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + len(header).to_bytes(8, "little") + header)
            f.write(b"\0" * (start - f.tell()))
            for name, array in arrays.items():
                f.write(_raw(array))
                pad = layout[name]["offset"] + start + -(-array.nbytes // ALIGN) * ALIGN - f.tell()
                f.write(b"\0" * pad)
            f.flush()
            os.fsync(f.fileno())

    def abort(self) -> None:
        for future in self._queued:
            future.cancel()
        self._queued.clear()
        self._worker.shutdown(wait=True)
        for f in self._files.values():
            try:
                f.close()
            except OSError:
                pass
        self._files = {}
        shutil.rmtree(self.build, ignore_errors=True)
        for p in (self.tmp, self.final):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


class Snapshot:
    """A published snapshot, open for lookups (mapped into memory, read-only)."""

    def __init__(self, store: RegisterStore, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        self.cipher = store.cipher
        path = store.directory / f"{snapshot_id}{SUFFIX}"
        if not path.exists():
            raise FileNotFoundError(snapshot_id)
        self._map: npt.NDArray[np.uint8] | None = np.memmap(path, dtype=np.uint8, mode="r")
        raw = self._map
        if bytes(raw[:len(MAGIC)]) != MAGIC:
            raise ValueError(f"snapshot {snapshot_id} is not in a known format")
        size = int.from_bytes(bytes(raw[len(MAGIC):len(MAGIC) + 8]), "little")
        head = len(MAGIC) + 8
        meta = json.loads(bytes(raw[head:head + size]))
        start = -(-(head + size) // ALIGN) * ALIGN
        self.rows = int(meta["rows"])
        self.keys = tuple(str(k) for k in meta["keys"])
        self.columns = tuple(str(v) for v in meta["values"])
        self._arrays: dict[str, npt.NDArray[Any]] = {}
        for name, where in meta["arrays"].items():
            dtype = np.dtype(where["dtype"])
            shape = tuple(where["shape"])
            count = int(np.prod(shape)) if shape else 1
            begin = start + int(where["offset"])
            self._arrays[name] = raw[begin:begin + count * dtype.itemsize].view(dtype).reshape(shape)
        self._dictionaries: dict[str, pa.Array] = {}

    def find(self, key: str, keyed: U64Pairs) -> Rows:
        """For each keyed value, the row holding it in column ``key``, or -1."""
        if key not in self.keys:
            raise KeyError(key)
        first = self._arrays[f"hi.{key}"]
        second = self._arrays[f"lo.{key}"]
        rows = self._arrays[f"row.{key}"]
        out = np.full(len(keyed), -1, dtype=np.int64)
        if not len(first) or not len(keyed):
            return out
        # sorted needles walk the table in order: far fewer cache misses than random ones
        order = np.argsort(keyed[:, 0])
        at = np.empty(len(keyed), dtype=np.int64)
        at[order] = np.searchsorted(first, keyed[order, 0], side="left")
        inside = at < len(first)
        at_c = np.minimum(at, len(first) - 1)
        same_first = inside & (first[at_c] == keyed[:, 0])
        hit = same_first & (second[at_c] == keyed[:, 1])
        out[hit] = rows[at_c[hit]]
        # the first words of two values can be equal (about once in 10^12 pairs): walk on
        for i in np.flatnonzero(same_first & ~hit).tolist():
            j = int(at_c[i]) + 1
            while j < len(first) and first[j] == keyed[i, 0]:
                if second[j] == keyed[i, 1]:
                    out[i] = int(rows[j])
                    break
                j += 1
        return out

    def dictionary(self, field: str) -> pa.Array:
        """The distinct values of a kept column ("" first)."""
        if field not in self.columns:
            raise KeyError(field)
        found = self._dictionaries.get(field)
        if found is None:
            data = self._arrays[f"dict.{field}"]
            ends = self._arrays[f"dict_offsets.{field}"]
            found = pa.LargeStringArray.from_buffers(
                len(ends) - 1, pa.py_buffer(np.ascontiguousarray(ends)),
                pa.py_buffer(np.ascontiguousarray(data))).cast(pa.string())
            self._dictionaries[field] = found
        return found

    def codes(self, field: str, rows: Rows) -> npt.NDArray[np.int64]:
        """Dictionary codes of a kept column for ``rows`` (-1 rows get "", code 0)."""
        if field not in self.columns:
            raise KeyError(field)
        codes = self._arrays[f"val.{field}"]
        out = np.zeros(len(rows), dtype=np.int64)
        found = rows >= 0
        out[found] = codes[rows[found]]
        return out

    def values(self, field: str, rows: Rows) -> pa.Array:
        """A kept column's values for ``rows`` ("" for -1)."""
        return self.dictionary(field).take(pa.array(self.codes(field, rows)))

    def lookup(self, key: str, identifiers: Iterable[str], fields: Sequence[str]
               ) -> dict[str, tuple[str, ...]]:
        """For each identifier found in column ``key``, the requested fields (in order)."""
        for f in fields:
            if f not in self.columns:
                raise KeyError(f)
        wanted = [i for i in dict.fromkeys(identifiers)
                  if i.isascii() and i.isdigit() and len(i) <= MAX_DIGITS]
        rows = self.find(key, self.cipher.values(key, wanted))
        columns = [self.values(f, rows).to_pylist() for f in fields]
        return {ident: tuple(str(c[i]) for c in columns)
                for i, ident in enumerate(wanted) if rows[i] >= 0}

    def close(self) -> None:
        self._arrays = {}
        self._dictionaries = {}
        self._map = None


class LegacySnapshot(Snapshot):
    """A snapshot in the first format (SQLite, keyed BLAKE2b), still read so that a
    register loaded before the upgrade stays usable until the next load."""

    def __init__(self, store: RegisterStore, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        self._secret = store.secret
        path = store.directory / f"{snapshot_id}{SUFFIX}"
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
        self.cipher = IdentifierCipher(secret)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def new_snapshot(self, snapshot_id: str, *, keys: Sequence[str], unique: Sequence[str],
                     values: Sequence[str]) -> SnapshotBuilder:
        return SnapshotBuilder(self, snapshot_id, keys, unique, values)

    def open(self, snapshot_id: str) -> Snapshot:
        path = self.directory / f"{snapshot_id}{SUFFIX}"
        with open(path, "rb") as f:
            if f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
                return LegacySnapshot(self, snapshot_id)
        return Snapshot(self, snapshot_id)

    def snapshot_ids(self) -> Iterator[str]:
        for p in sorted(self.directory.glob(f"*{SUFFIX}")):
            if not p.name.startswith("."):
                yield p.stem

    def discard(self, snapshot_id: str) -> None:
        """Remove one snapshot that never became current (its load was refused)."""
        for suffix in (SUFFIX, FUZZY_SUFFIX):
            try:
                (self.directory / f"{snapshot_id}{suffix}").unlink()
            except FileNotFoundError:
                pass

    def remove_unreferenced(self, keep: Iterable[str]) -> int:
        """Remove temporaries and snapshots not in ``keep``; returns how many files went."""
        keep_set = set(keep)
        removed = 0
        for p in self.directory.iterdir():
            if p.name.startswith(".") and p.name.endswith(".build") and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
                continue
            stale_tmp = p.name.startswith(".") and p.name.endswith(".tmp")
            old = p.suffix in (SUFFIX, FUZZY_SUFFIX) and p.stem not in keep_set
            if stale_tmp or old:
                p.unlink()
                removed += 1
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
