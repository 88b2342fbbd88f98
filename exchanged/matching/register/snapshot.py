"""Reading a snapshot: keyed identifiers looked up in a memory-mapped file (or the first format)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from exchanged.matching.register.keys import MAX_DIGITS, Rows, U64Pairs, identifier_key
from exchanged.matching.register.layout import ALIGN, MAGIC, SUFFIX, SnapshotPlace, may_hold

IN_CHUNK = 900  # below SQLite's bound-parameter limit


def _q(name: str) -> str:
    # column names come from the validated policy (letters, digits, _), quoted anyway
    return '"' + name.replace('"', '""') + '"'


def _k(name: str) -> str:
    return _q(name + "_key")


class Snapshot:
    """A published snapshot, open for lookups (mapped into memory, read-only)."""

    def __init__(self, store: SnapshotPlace, snapshot_id: str) -> None:
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
            end = begin + count * dtype.itemsize
            self._arrays[name] = raw[begin:end].view(dtype).reshape(shape)
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
        # the presence filter rules out nearly every absent value with one byte read (a
        # snapshot written before it existed has none: every value is searched)
        bitmap = self._arrays.get(f"filter.{key}")
        asked = (np.flatnonzero(may_hold(bitmap, keyed[:, 0])) if bitmap is not None
                 else np.arange(len(keyed)))
        needles = keyed[asked]
        # sorted needles walk the table in order: far fewer cache misses than random ones
        order = np.argsort(needles[:, 0])
        at = np.empty(len(needles), dtype=np.int64)
        at[order] = np.searchsorted(first, needles[order, 0], side="left")
        at_c = np.minimum(at, len(first) - 1)
        same_first = (at < len(first)) & (first[at_c] == needles[:, 0])
        hit = same_first & (second[at_c] == needles[:, 1])
        out[asked[hit]] = rows[at_c[hit]]
        # the first words of two values can be equal (about once in 10^12 pairs): walk on
        for i in np.flatnonzero(same_first & ~hit).tolist():
            j = int(at_c[i]) + 1
            while j < len(first) and first[j] == needles[i, 0]:
                if second[j] == needles[i, 1]:
                    out[asked[i]] = int(rows[j])
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

    def __init__(self, store: SnapshotPlace, snapshot_id: str) -> None:
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
