"""Building the fuzzy index of a register snapshot while its rows are loaded."""

from __future__ import annotations

import os
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from exchanged.matching.fuzzy.encoding import Encoder, FuzzyKeys, valid_dob
from exchanged.matching.fuzzy.layout import (
    BLOOM_BITS,
    BLOOM_BYTES,
    BLOOM_K,
    HEADER,
    HEADER_SIZE,
    KEY_BITS,
    MAGIC,
    MAX_RECORDS,
    MAX_TOKENS,
    RECORD_BITS,
    RECORD_MASK,
    VERSION,
    FuzzyIndexError,
    lexicon_minimum,
)

#: keys are spread over this many partition files by their top byte
_PARTITIONS: Final = 256
#: entries held per partition (and records held) before they are written out
_FLUSH: Final = 8192


@dataclass(frozen=True)
class FuzzyBuildReport:
    """What went into an index: people, people with a usable name, filed keys."""

    records: int
    entries: int
    skipped: int


class FuzzyIndexBuilder:
    """Builds the index of one register snapshot while its rows are loaded.

    ``add`` every valid row in file order; ``finish`` with the lines the
    snapshot left out (repeated NIKs or NIPs), so that the index knows exactly
    the people of the snapshot. Temporary files go to ``work`` (the batch's
    private folder); the index appears at ``target`` only when complete.
    Memory stays small and constant: keys are spread over partition files by
    their top byte and each partition is sorted on its own.
    """

    def __init__(self, target: Path, secret: bytes, work: Path) -> None:
        self.target = target
        self._tmp = target.with_name(f".{target.name}.tmp")
        self._work = work
        self._encoder = Encoder(FuzzyKeys.from_secret(secret))
        self._normalise = self._encoder.normalise
        self._parts: list[array[int]] = [array("Q") for _ in range(_PARTITIONS)]
        self._part_paths = [work / f"fuzzy-part-{p:03d}.bin" for p in range(_PARTITIONS)]
        self._lines_path = work / "fuzzy-lines.bin"
        self._starts_path = work / "fuzzy-starts.bin"
        self._lines = array("I")
        self._starts = array("I")
        self._records = 0
        self._tokens = 0
        self._entries = 0
        self._skipped = 0
        self._min_year = 9999
        self._max_year = 0
        # how many people carry each part: bounded by the names' vocabulary, not the rows
        self._counts: dict[str, int] = {}
        self._files: list[IO[bytes]] = []
        fd = os.open(self._tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        self._out = os.fdopen(fd, "wb", buffering=1 << 20)
        self._out.write(bytes(HEADER_SIZE))
        self._part_files = [self._private(p) for p in self._part_paths]
        self._lines_file = self._private(self._lines_path)
        self._starts_file = self._private(self._starts_path)

    def _private(self, path: Path) -> IO[bytes]:
        f = os.fdopen(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb")
        self._files.append(f)
        return f

    def add(self, line: int, nama: str, tanggal_lahir: str) -> None:
        """One valid register row; a row without a usable name or date is not indexed."""
        dob = valid_dob(tanggal_lahir)
        tokens = self._normalise(nama)[:MAX_TOKENS] if dob is not None else ()
        if dob is None or not tokens:
            self._skipped += 1
            return
        record = self._records
        if record >= MAX_RECORDS:
            raise FuzzyIndexError(f"a fuzzy index holds at most {MAX_RECORDS} people")
        self._records += 1
        year = int(dob[:4])
        self._min_year = min(self._min_year, year)
        self._max_year = max(self._max_year, year)
        encoder = self._encoder
        packed = 0
        counts = self._counts
        for i, token in enumerate(tokens):
            packed |= encoder.bloom(token) << (i * BLOOM_BITS)
            if len(token) >= 2:
                counts[token] = counts.get(token, 0) + 1
        packed ^= encoder.mask(record, len(tokens))
        self._out.write(packed.to_bytes(len(tokens) * BLOOM_BYTES, "little"))
        self._starts.append(self._tokens)
        self._lines.append(line)
        self._tokens += len(tokens)
        for key in encoder.keys(dob, tokens):
            part = self._parts[key >> (KEY_BITS - 8)]
            part.append(key << RECORD_BITS | record)
            self._entries += 1
            if len(part) >= _FLUSH:
                part.tofile(self._part_files[key >> (KEY_BITS - 8)])
                del part[:]
        if len(self._starts) >= _FLUSH:
            self._starts.tofile(self._starts_file)
            self._lines.tofile(self._lines_file)
            del self._starts[:]
            del self._lines[:]

    def add_many(self, lines: Iterable[int], names: Iterable[str | None],
                 dobs: Iterable[str | None]) -> None:
        """:meth:`add` for the valid rows of a block (as columns)."""
        for line, nama, dob in zip(lines, names, dobs, strict=True):
            self.add(line, nama or "", dob or "")

    def finish(self, dropped_lines: Iterable[int] = ()) -> FuzzyBuildReport:
        """Leave out the records of ``dropped_lines``, sort the keys, publish the file."""
        for part, f in zip(self._parts, self._part_files, strict=True):
            part.tofile(f)
        self._starts.append(self._tokens)
        self._starts.tofile(self._starts_file)
        self._lines.tofile(self._lines_file)
        for f in self._files:
            f.close()
        dropped = self._dropped_records(dropped_lines)
        out = self._out
        starts_at = HEADER_SIZE + self._tokens * BLOOM_BYTES
        with open(self._starts_path, "rb") as f:
            while chunk := f.read(1 << 20):
                out.write(chunk)
        position = starts_at + (self._records + 1) * 4
        padding = -position % 8
        out.write(bytes(padding))
        keys_at = position + padding
        entries = 0
        for path in self._part_paths:
            part = array("Q")
            with open(path, "rb") as f:
                part.frombytes(f.read())
            path.unlink()
            values = sorted(part) if not dropped else sorted(
                v for v in part if v & RECORD_MASK not in dropped)
            array("Q", values).tofile(out)
            entries += len(values)
        lexicon_at = keys_at + entries * 8
        least = lexicon_minimum(self._records)
        lexicon = array("Q", sorted(self._encoder.lexicon_hash(t)
                                    for t, n in self._counts.items() if n >= least))
        self._counts.clear()
        lexicon.tofile(out)
        out.flush()
        out.seek(0)
        out.write(HEADER.pack(
            MAGIC, VERSION, BLOOM_BITS, BLOOM_K, KEY_BITS, RECORD_BITS, self._records,
            self._tokens, starts_at, keys_at, entries, lexicon_at, len(lexicon),
            self._min_year if self._records else 0, self._max_year,
        ).ljust(HEADER_SIZE, b"\0"))
        out.flush()
        os.fsync(out.fileno())
        out.close()
        for path in (self._starts_path, self._lines_path):
            path.unlink()
        os.replace(self._tmp, self.target)
        fd = os.open(self.target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return FuzzyBuildReport(self._records - len(dropped), entries, self._skipped)

    def _dropped_records(self, dropped_lines: Iterable[int]) -> set[int]:
        wanted = sorted(set(dropped_lines))
        if not wanted:
            return set()
        lines = array("I")
        with open(self._lines_path, "rb") as f:
            lines.frombytes(f.read())
        found: set[int] = set()
        for line in wanted:
            i = bisect_left(lines, line)
            if i < len(lines) and lines[i] == line:
                found.add(i)
        return found

    def abort(self) -> None:
        """Remove everything the build wrote."""
        for f in [*self._files, self._out]:
            try:
                f.close()
            except OSError:
                pass
        for path in [*self._part_paths, self._lines_path, self._starts_path, self._tmp]:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
