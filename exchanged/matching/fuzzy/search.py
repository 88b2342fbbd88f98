"""Searching the fuzzy index: the best score of a name born on a day, and the flow's fallback."""

from __future__ import annotations

import math
import mmap
import os
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from exchanged.matching.fuzzy.encoding import Encoder, FuzzyKeys, valid_dob
from exchanged.matching.fuzzy.layout import (
    BLOOM_BITS,
    BLOOM_BYTES,
    BLOOM_FULL,
    BLOOM_K,
    HEADER,
    HEADER_SIZE,
    KEY_BITS,
    MAGIC,
    MAX_TOKENS,
    RECORD_BITS,
    RECORD_MASK,
    VERSION,
    FuzzyIndexError,
    FuzzyIndexMissing,
    index_path,
)
from exchanged.matching.fuzzy.scoring import Scorer


class FuzzyIndex:
    """An index opened for searching (memory-mapped, read-only)."""

    def __init__(self, path: Path, secret: bytes) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise FuzzyIndexMissing("the register snapshot has no fuzzy index") from None
        try:
            size = os.fstat(fd).st_size
            if size < HEADER_SIZE:
                raise FuzzyIndexError("the fuzzy index is truncated")
            self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        (magic, version, bloom_bits, bloom_k, key_bits, record_bits, records, tokens, starts_at,
         keys_at, entries, lexicon_at, lexicon_count, min_year, max_year) = HEADER.unpack_from(
            self._map, 0)
        if magic != MAGIC or version != VERSION or (bloom_bits, bloom_k, key_bits, record_bits) != (
                BLOOM_BITS, BLOOM_K, KEY_BITS, RECORD_BITS):
            self._map.close()
            raise FuzzyIndexError("the fuzzy index has another format")
        if lexicon_at + lexicon_count * 8 != size:
            self._map.close()
            raise FuzzyIndexError("the fuzzy index is truncated")
        if hasattr(mmap, "MADV_RANDOM"):
            # searches jump around: read-ahead would only fill memory
            self._map.madvise(mmap.MADV_RANDOM)
        self.records = int(records)
        self.entries = int(entries)
        self._min_year = int(min_year)
        self._max_year = int(max_year)
        self._view = memoryview(self._map)
        self._starts = self._view[starts_at : starts_at + (records + 1) * 4].cast("I")
        self._keys = self._view[keys_at : keys_at + entries * 8].cast("Q")
        self._lexicon = self._view[lexicon_at : lexicon_at + lexicon_count * 8].cast("Q")
        self._tokens_at = HEADER_SIZE
        self._encoder = Encoder(FuzzyKeys.from_secret(secret))
        self._scorer = Scorer(self._encoder, self._is_known)
        self._normalise = self._encoder.normalise

    def _is_known(self, token_hash: int) -> bool:
        i = bisect_left(self._lexicon, token_hash)
        return i < len(self._lexicon) and self._lexicon[i] == token_hash

    def _candidates(self, dob: str, tokens: Sequence[str]) -> set[int]:
        keys = self._keys
        n = len(keys)
        found: set[int] = set()
        for key in self._encoder.keys(dob, tokens):
            low = key << RECORD_BITS
            high = low + (1 << RECORD_BITS)
            i = bisect_left(keys, low)
            while i < n:
                entry = keys[i]
                if entry >= high:
                    break
                found.add(entry & RECORD_MASK)
                i += 1
        return found

    def _record(self, record: int) -> list[int]:
        start, end = self._starts[record], self._starts[record + 1]
        count = end - start
        at = self._tokens_at + start * BLOOM_BYTES
        packed = int.from_bytes(self._map[at : at + count * BLOOM_BYTES], "little")
        packed ^= self._encoder.mask(record, count)
        return [(packed >> (i * BLOOM_BITS)) & BLOOM_FULL for i in range(count)]

    def best_score(self, nama: str, tanggal_lahir: str) -> float:
        """The highest score of a register person born that day for this name (0 if none)."""
        dob = valid_dob(tanggal_lahir)
        if dob is None or not self._min_year <= int(dob[:4]) <= self._max_year:
            return 0.0
        tokens = self._normalise(nama)[:MAX_TOKENS]
        if not tokens:
            return 0.0
        candidates = self._candidates(dob, tokens)
        if not candidates:
            return 0.0
        scorer = self._scorer
        query = scorer.parts(tokens)
        joined = scorer.joined(query)
        best = 0.0
        for record in candidates:
            score = scorer.score(query, joined, self._record(record))
            if score > best:
                best = score
                if best >= 1.0:
                    break
        return best

    def best_scores(self, rows: Iterable[tuple[str, str]]) -> list[float]:
        """:meth:`best_score` for each (nama, tanggal_lahir)."""
        return [self.best_score(nama, dob) for nama, dob in rows]

    def close(self) -> None:
        self._starts.release()
        self._keys.release()
        self._lexicon.release()
        self._view.release()
        self._map.close()

    def __enter__(self) -> FuzzyIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shown_score(score: float) -> str:
    """The score as the answer shows it: two decimals, rounded down (never above what was found).

    >>> shown_score(0.9999), shown_score(1.0), shown_score(0.925)
    ('0.99', '1.00', '0.92')
    """
    return f"{math.floor(score * 100 + 1e-9) / 100:.2f}"


class FuzzyFallback:
    """What a nik-lookup flow needs: the score of each not-found row, if it reaches
    ``min_score``."""

    def __init__(self, index: FuzzyIndex, min_score: float) -> None:
        self._index = index
        self.min_score = min_score

    @classmethod
    def open(cls, directory: Path, secret: bytes, snapshot_id: str, min_score: float
             ) -> FuzzyFallback:
        """The fallback of a snapshot; :class:`FuzzyIndexMissing` if it has no index."""
        return cls(FuzzyIndex(index_path(directory, snapshot_id), secret), min_score)

    def scores(self, rows: Iterable[tuple[str | None, str | None]]) -> list[float | None]:
        """For each (nama, tanggal_lahir), the best score if at least ``min_score``, else None.

        A row without a name or a birth date (None or blank) is not searched.
        """
        out: list[float | None] = []
        best = self._index.best_score
        for nama, dob in rows:
            score = None
            if nama and dob and nama.strip() and dob.strip():
                found = best(nama, dob)
                if found >= self.min_score:
                    score = found
            out.append(score)
        return out

    def close(self) -> None:
        self._index.close()


def iter_chunks(items: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    """Lists of at most ``size`` items (for scoring a stream in bounded memory)."""
    chunk: list[tuple[str, str]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
