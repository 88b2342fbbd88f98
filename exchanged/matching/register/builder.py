"""Writing a snapshot: rows spilled a block at a time, merged, checked for repeats, published."""

from __future__ import annotations

import json
import os
import shutil
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from exchanged.matching.register.keys import Rows, U64Pairs
from exchanged.matching.register.layout import (
    ALIGN,
    MAGIC,
    SUFFIX,
    SnapshotPlace,
    presence_filter,
)

CHUNK = 5000
#: keyed values gathered at a time at the end of a load (16 bytes each)
GATHER_CHUNK = 1 << 20
#: blocks handed to the builder's thread and not yet spilled, at most
QUEUED_BLOCKS = 2
#: an array of the snapshot at least this large is sent on its way to the disk as soon as
#: it is written, so that the disk works while the next ones are written
WRITEBACK_BYTES = 8 << 20


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
    """Builds one snapshot; :meth:`finish` renames it into place, :meth:`abort` removes it.

    ``keys`` are the identifier columns (stored as keyed values, indexed);
    those in ``unique`` may appear once (the first row wins, later ones are
    reported); ``values`` are the other columns kept. Rows come in blocks
    (:meth:`add_block`) or one at a time (:meth:`add`), in line order; they are
    spilled to a hidden build folder beside the snapshots, so memory does not grow
    with the register.
    """

    def __init__(self, store: SnapshotPlace, snapshot_id: str, keys: Sequence[str],
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
            # spilled as they come, unsorted: finish sorts each column once, which costs
            # less than sorting every block and merging the runs (docs/performance.md)
            values, present = keyed[k]
            if present.all():
                self._spill(f"key.{k}", values)
            else:
                self._spill(f"key.{k}", values[present])
            self._spill(f"present.{k}", present)
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
            # each column's presence filter beside the other's sort; made before repeated
            # identifiers' rows are dropped, it may hold a few more values than the column,
            # which only makes a lookup search for them (0.13 s of 6 M values, off the end)
            filters = {k: pool.submit(presence_filter, index[k][0]) for k in self.keys}
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
            arrays[f"filter.{k}"] = filters[k].result()
        for v in self.values:
            codes = self._load(f"val.{v}", np.uint32)
            if v in self._absent and not len(codes):
                codes = np.zeros(n, dtype=np.uint8)  # "" in every row
            if m != n:
                codes = codes[keep]
            words = list(self._dictionaries[v])
            width = np.uint8 if len(words) <= 1 << 8 else (
                np.uint16 if len(words) <= 1 << 16 else np.uint32)
            arrays[f"val.{v}"] = codes.astype(width, copy=False)
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
        """A key column's values sorted (first word, then second, then row), with their rows."""
        pairs = self._load(f"key.{key}", np.uint64).reshape(-1, 2)
        n = len(pairs)
        first, second = pairs[:, 0], pairs[:, 1]
        # one sort of plain 64-bit words, not an argsort: the first word's top bits with
        # the value's position below them (the values are AES output, uniformly spread,
        # so the top bits alone order nearly all of them); the position keeps equal
        # prefixes in row order and says where each value came from
        bits = max(int(n - 1).bit_length(), 1)
        packed = first >> np.uint64(bits)
        packed <<= np.uint64(bits)
        packed |= np.arange(n, dtype=np.uint64)
        packed.sort()
        prefix = packed >> np.uint64(bits)
        tie = np.flatnonzero(prefix[1:] == prefix[:-1])
        del prefix
        at: Rows = np.bitwise_and(packed, np.uint64((1 << bits) - 1), out=packed).view(np.int64)
        if len(tie):
            # equal prefixes (rare, and every repeated identifier): by the whole value, in
            # row order where the values are equal too (lexsort is stable)
            members = np.unique(np.concatenate((tie, tie + 1)))
            among = at[members]
            at[members] = among[np.lexsort((second[among], first[among]))]
        # both words of a value in one gather (one cache line, not two far apart), then
        # split, a chunk at a time so that memory holds no third copy of the column:
        # 6 M values 0.19-0.20 -> 0.11-0.14 s
        hi, lo = np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.uint64)
        for start in range(0, n, GATHER_CHUNK):
            both = np.take(pairs, at[start:start + GATHER_CHUNK], axis=0)
            hi[start:start + len(both)] = both[:, 0]
            lo[start:start + len(both)] = both[:, 1]
        present = self._load(f"present.{key}", np.bool_)
        row: Rows = at if len(present) == n else np.flatnonzero(present)[at]
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
            written = 0
            for name, array in arrays.items():
                f.write(_raw(array))
                pad = layout[name]["offset"] + start + -(-array.nbytes // ALIGN) * ALIGN - f.tell()
                f.write(b"\0" * pad)
                if array.nbytes >= WRITEBACK_BYTES:
                    written = _start_writeback(f, written)
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


def _raw(array: npt.NDArray[Any]) -> memoryview:
    """An array's bytes, without a copy when it is contiguous (also when it is empty)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    return flat.view(np.uint8).data


def _start_writeback(f: IO[bytes], since: int) -> int:
    """Ask the kernel to start writing what ``f`` holds from ``since`` (without waiting);
    the fsync at the end then waits for less. Returns where the next call starts.

    ``POSIX_FADV_DONTNEED`` starts the writeback of the dirty pages of the range; pages
    still dirty or being written stay cached (only clean ones would be dropped)."""
    f.flush()
    end = f.tell()
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        advise(f.fileno(), since, end - since, os.POSIX_FADV_DONTNEED)
    return end


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
