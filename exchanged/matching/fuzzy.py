"""The fuzzy fallback: is a KPM whose NIK is not in the register possibly an ASN by name and birth date?

A valid NIK that is not in the register may still belong to a civil servant
registered under another (mistyped, old, borrowed) NIK. This module finds,
for such a row, the register people born **on the same day** whose name is
close to the row's, and scores the closest in 0..1. The flow answers a score
at or above the policy's ``min_score`` with the policy's status
(``KEMUNGKINAN_ASN``) for manual confirmation (Pasal 3 ayat (1) huruf b).
See docs/matching.md for the design, its privacy argument and the measured
precision and recall.

What the index holds, per register person, and nothing else:

* **blocking keys**: a 40-bit keyed BLAKE2b hash of (birth date, a name
  token), one per token of the normalised name (see
  :mod:`exchanged.matching.names`), plus the two tokens joined (a spacing
  variant: ``Nur Hayati`` / ``Nurhayati``) and, for a one-part name, its first
  and last three letters (so that a typo in the only part still meets it).
  A search probes the same keys for the query name, so it only ever sees
  people born on the query's day who share a token (or a joined form, or an
  end) with it.
* **one Bloom filter per name token**: 128 bits, the token's letter pairs
  (``^s si it ti i$``) set at keyed positions, so that two spellings of a
  part can be compared (Dice coefficient of the bits) without the part.
  The filters of a record are XORed with a keyed per-record keystream: equal
  parts of different people do not look equal in the file.

* **a lexicon**: keyed 64-bit hashes of the name parts that at least
  :data:`LEXICON_MIN` register people carry. A part one letter away from the
  query's counts as a typo only if not both are such names (``Wahyuni`` /
  ``Wahyudi`` are two names; ``Wahyuhi`` is a typo).

No name, part of a name, birth date or length of a part is stored. Without
``keys/register.key`` the file tells which records share a birth date and a
name token (through equal blocking keys), and how many parts each name has;
with the key, names and dates could be guessed back by trying a dictionary —
as NIKs can from their keyed hashes. The key is the secret either way.

The file is one flat, memory-mapped array per section, so that searching a
6-million-person register costs a few binary searches per row and the
process holds no per-person Python objects::

    header (96 B) | token filters (16 B each) | record starts (u32, R+1) | keys (u64, sorted)
      | lexicon (u64, sorted)

A key entry is ``hash40 << 24 | record``: sorting the entries sorts the
keys, and the records of one key are a contiguous run.
"""

from __future__ import annotations

import hashlib
import math
import mmap
import os
import re
import struct
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Final

from exchanged.matching.names import NameNormaliser, joined_key

__all__ = [
    "FuzzyBuildReport",
    "FuzzyFallback",
    "FuzzyIndex",
    "FuzzyIndexBuilder",
    "FuzzyIndexError",
    "FuzzyIndexMissing",
    "FuzzyKeys",
    "discard_index",
    "index_path",
    "name_score",
    "shown_score",
]

SUFFIX: Final = ".fuzzy"
MAGIC: Final = b"XFZIDX01"
VERSION: Final = 1
BLOOM_BITS: Final = 128
BLOOM_BYTES: Final = BLOOM_BITS // 8
#: positions set per letter pair; with ~7 pairs a token fills about a fifth of the bits
BLOOM_K: Final = 4
#: a name keeps at most this many parts (longer ones are rare and keep their first)
MAX_TOKENS: Final = 8
KEY_BITS: Final = 40
RECORD_BITS: Final = 24
MAX_RECORDS: Final = (1 << RECORD_BITS) - 1
_RECORD_MASK: Final = MAX_RECORDS
_PARTITIONS: Final = 256
_FLUSH: Final = 8192
_HEADER: Final = struct.Struct("<8sIHHHHIQQQQQQHH")
_HEADER_SIZE: Final = 96
_DOB_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_BLOOM_FULL: Final = (1 << BLOOM_BITS) - 1

# -- scoring -------------------------------------------------------------------------------------

#: a part of four letters or more with one letter replaced, added, removed or swapped
TYPO_SIM: Final = 0.95
#: parts shorter than this are not compared for typos (Ani / Ana / Adi are other names)
TYPO_MIN_LENGTH: Final = 4
#: what an initial is worth against a part with its letter (A. against Agus)
INITIAL_SIM: Final = 0.6
#: a part split or joined (Nur Hayati / Nurhayati), when its letters agree
SPACING_SIM: Final = 0.95
#: the least evidence for a match: letter pairs of whole parts that agree (a
#: five-letter part has six: ^a ab ... e$)
MIN_EVIDENCE: Final = 6.0
#: what each part that only one of the names has costs, on top of its share:
#: Siti Aminah is not Siti Aminah Putri, however long the names are
UNPAIRED_FACTOR: Final = 0.85
#: a part this frequent in the register is a name in its own right: one letter
#: away from another such name (Wahyuni / Wahyudi) is another person, not a typo
LEXICON_MIN: Final = 3


def lexicon_minimum(records: int) -> int:
    """How many people must carry a part for it to count as a name.

    In a national register a part that one or two people carry may be a typo
    in the register itself; in a small one, every part seen is the best
    evidence there is that it is a name.

    >>> lexicon_minimum(6_000_000), lexicon_minimum(200_000), lexicon_minimum(3_000)
    (3, 2, 1)
    """
    if records >= 1_000_000:
        return LEXICON_MIN
    return 2 if records >= 100_000 else 1


def _estimated_pairs(bits_set: int) -> float:
    """How many letter pairs a token filter holds, from how many bits it has set."""
    if bits_set >= BLOOM_BITS:
        bits_set = BLOOM_BITS - 1
    return math.log(1 - bits_set / BLOOM_BITS) / (BLOOM_K * math.log(1 - 1 / BLOOM_BITS))


#: letter pairs by bits set, so weights cost a lookup
_PAIRS_BY_BITS: Final = tuple(_estimated_pairs(n) for n in range(BLOOM_BITS + 1))


class FuzzyIndexError(Exception):
    """The index cannot be built or read (never names a person or a value)."""


class FuzzyIndexMissing(FuzzyIndexError):
    """The snapshot has no fuzzy index (loaded before the fallback was switched on)."""


def index_path(directory: Path, snapshot_id: str) -> Path:
    """Where the fuzzy index of a snapshot lives: beside it, ``<snapshot-id>.fuzzy``."""
    return directory / f"{snapshot_id}{SUFFIX}"


@dataclass(frozen=True)
class FuzzyKeys:
    """Keys for the index, derived from the register secret, one per use.

    BLAKE2b's personalisation separates them from each other and from the
    identifier hashes made with the same secret.

    >>> keys = FuzzyKeys.from_secret(bytes(32))
    >>> len({keys.block, keys.bloom, keys.mask, keys.lexicon})
    4
    """

    block: bytes
    bloom: bytes
    mask: bytes
    lexicon: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> FuzzyKeys:
        def derive(label: bytes) -> bytes:
            return hashlib.blake2b(b"", key=secret[:64], person=label, digest_size=32).digest()

        return cls(derive(b"xfz1-block"), derive(b"xfz1-bloom"), derive(b"xfz1-mask"),
                   derive(b"xfz1-lexicon"))


def _blocking_terms(tokens: Sequence[str],
                    join: Callable[[str, str], str] = joined_key) -> set[str]:
    """What a name is filed under (with its birth date), the same for a register row and a query.

    >>> sorted(_blocking_terms(("siti", "nurhayati")))
    ['tnurhayati', 'tsiti', 'tsitinurhayati']
    >>> sorted(_blocking_terms(("tika", "astuti")))  # the key of Tikaastuti
    ['tastuti', 'ttika', 'ttikastuti']
    >>> sorted(_blocking_terms(("sumarni",)))
    ['psum', 'srni', 'tsumarni']
    >>> sorted(_blocking_terms(("a", "setiawan")))
    ['pset', 'swan', 'tsetiawan']
    """
    full = [t for t in tokens if len(t) >= 2]
    terms = {"t" + t for t in full}
    if len(full) == 2:
        terms.add("t" + join(full[0], full[1]))
    if len(full) == 1 and len(full[0]) >= 5:
        only = full[0]
        terms.add("p" + only[:3])
        terms.add("s" + only[-3:])
    return terms


class _Encoder:
    """The keyed encodings shared by building and searching, with caches of their own."""

    def __init__(self, keys: FuzzyKeys, normaliser: NameNormaliser | None = None) -> None:
        self.normalise = normaliser or NameNormaliser()
        self._block = hashlib.blake2b(key=keys.block, digest_size=8)
        self._bloom = hashlib.blake2b(key=keys.bloom, digest_size=8)
        self._mask = hashlib.blake2b(key=keys.mask, digest_size=64)
        self._lexicon = hashlib.blake2b(key=keys.lexicon, digest_size=8)
        self._dob_states: dict[str, Any] = {}
        self._pair_bits: dict[str, int] = {}
        self._token_bloom: dict[str, int] = {}

    def key(self, dob: str, term: str) -> int:
        state = self._dob_states.get(dob)
        if state is None:
            # the date absorbed once: every person born that day has several keys
            if len(self._dob_states) >= 1 << 16:
                self._dob_states.clear()
            state = self._block.copy()
            state.update(f"{dob}|".encode())
            self._dob_states[dob] = state
        h = state.copy()
        h.update(term.encode())
        return int.from_bytes(h.digest()[:5], "big")

    def lexicon_hash(self, token: str) -> int:
        h = self._lexicon.copy()
        h.update(token.encode())
        return int.from_bytes(h.digest(), "little")

    def keys(self, dob: str, tokens: Sequence[str]) -> list[int]:
        return [self.key(dob, term) for term in _blocking_terms(tokens, self.normalise.joined)]

    def pair_bits(self, pair: str) -> int:
        bits = self._pair_bits.get(pair)
        if bits is None:
            h = self._bloom.copy()
            h.update(pair.encode())
            word = int.from_bytes(h.digest(), "little")
            bits = 0
            for _ in range(BLOOM_K):
                bits |= 1 << (word & (BLOOM_BITS - 1))
                word >>= 7
            self._pair_bits[pair] = bits
        return bits

    def bloom(self, token: str) -> int:
        bits = self._token_bloom.get(token)
        if bits is None:
            padded = f"^{token}$"
            bits = 0
            for i in range(len(padded) - 1):
                bits |= self.pair_bits(padded[i : i + 2])
            if len(self._token_bloom) >= 1 << 17:
                self._token_bloom.clear()
            self._token_bloom[token] = bits
        return bits

    def mask(self, record: int, tokens: int) -> int:
        """The keystream a record's filters are XORed with (``tokens`` filters long)."""
        out = 0
        shift = 0
        block = 0
        while shift < tokens * BLOOM_BITS:
            h = self._mask.copy()
            h.update(record.to_bytes(4, "little") + block.to_bytes(1, "little"))
            out |= int.from_bytes(h.digest(), "little") << shift
            shift += 512
            block += 1
        return out & ((1 << (tokens * BLOOM_BITS)) - 1)


def _valid_dob(text: str) -> str | None:
    text = text.strip()
    if not _DOB_RE.fullmatch(text):
        return None
    try:
        date.fromisoformat(text)
    except ValueError:
        return None
    return text


# -- building ---------------------------------------------------------------------------------


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
        self._encoder = _Encoder(FuzzyKeys.from_secret(secret))
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
        self._out.write(bytes(_HEADER_SIZE))
        self._part_files = [self._private(p) for p in self._part_paths]
        self._lines_file = self._private(self._lines_path)
        self._starts_file = self._private(self._starts_path)

    def _private(self, path: Path) -> IO[bytes]:
        f = os.fdopen(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb")
        self._files.append(f)
        return f

    def add(self, line: int, nama: str, tanggal_lahir: str) -> None:
        """One valid register row; a row without a usable name or date is not indexed."""
        dob = _valid_dob(tanggal_lahir)
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
        starts_at = _HEADER_SIZE + self._tokens * BLOOM_BYTES
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
                v for v in part if v & _RECORD_MASK not in dropped)
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
        out.write(_HEADER.pack(
            MAGIC, VERSION, BLOOM_BITS, BLOOM_K, KEY_BITS, RECORD_BITS, self._records,
            self._tokens, starts_at, keys_at, entries, lexicon_at, len(lexicon),
            self._min_year if self._records else 0, self._max_year,
        ).ljust(_HEADER_SIZE, b"\0"))
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


# -- searching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One part of the query name, with what comparing it to a register filter needs.

    The query is in the clear (it is the batch's own row), so its variants
    can be computed exactly; the register side is only ever a filter.
    """

    text: str
    bloom: int
    weight: float
    #: the filter of the part's first letter alone (an initial's filter)
    initial: int
    #: the bits of the pair "^x": set in every part that starts with x
    start: int
    is_initial: bool
    #: a part that many register people carry (see LEXICON_MIN)
    known: bool = False
    #: the filters of the part with two adjacent letters swapped, and the spellings
    swapped: Mapping[int, str] = field(default_factory=dict)
    #: (what is left of the part's filter, where, how): a letter added at ``where``
    #: takes one letter pair away ("add"); a letter replaced or removed at
    #: ``where`` takes two ("replace")
    windows: tuple[tuple[int, int, str], ...] = ()


def _dice(a: int, b: int) -> float:
    both = (a & b).bit_count()
    return 2.0 * both / (a.bit_count() + b.bit_count())


def _pairs(token: str) -> list[str]:
    padded = f"^{token}$"
    return [padded[i : i + 2] for i in range(len(padded) - 1)]


def _or(values: Iterable[int]) -> int:
    out = 0
    for v in values:
        out |= v
    return out


_LETTERS: Final = "abcdefghijklmnopqrstuvwxyz"


def _variants_at(token: str, where: int, how: str) -> Iterator[str]:
    """The spellings with one letter added before ``where``, or replaced or removed at it."""
    if how == "add":
        for ch in _LETTERS:
            yield token[:where] + ch + token[where:]
        return
    for ch in _LETTERS:
        if ch != token[where]:
            yield token[:where] + ch + token[where + 1:]
    yield token[:where] + token[where + 1:]


class _Scorer:
    """Scores register names (as filters) against one query name at a time.

    ``lexicon`` tells whether a part's keyed hash is a known name (see
    :data:`LEXICON_MIN`).
    """

    def __init__(self, encoder: _Encoder, known: Callable[[int], bool]) -> None:
        self._encoder = encoder
        self._known = known
        self._decoded: dict[tuple[str, int, str], dict[int, str]] = {}

    def parts(self, tokens: Sequence[str]) -> list[_Part]:
        encoder = self._encoder
        out = []
        for t in tokens:
            bloom = encoder.bloom(t)
            swapped: dict[int, str] = {}
            windows: list[tuple[int, int, str]] = []
            known = False
            if len(t) >= TYPO_MIN_LENGTH:
                for i in range(len(t) - 1):
                    if t[i] != t[i + 1]:
                        other = t[:i] + t[i + 1] + t[i] + t[i + 2:]
                        swapped[encoder.bloom(other)] = other
                pairs = [encoder.pair_bits(p) for p in _pairs(t)]
                # pair j joins padded letters j and j + 1: letter i of the part
                # is in pairs i and i + 1
                for j in range(len(pairs)):
                    windows.append((_or(pairs[:j] + pairs[j + 1:]), j, "add"))
                for i in range(len(t)):
                    windows.append((_or(pairs[:i] + pairs[i + 2:]), i, "replace"))
                known = self._known(encoder.lexicon_hash(t))
            out.append(_Part(t, bloom, len(t) + 1.0, encoder.bloom(t[0]),
                             encoder.pair_bits("^" + t[0]), len(t) == 1, known, swapped,
                             tuple(windows)))
        return out

    def joined(self, query: Sequence[_Part]) -> list[tuple[int, int]]:
        """The filters of adjacent query parts written as one (for Nur Hayati / Nurhayati)."""
        return [(i, self._encoder.bloom(self._encoder.normalise.joined(query[i].text,
                                                                       query[i + 1].text)))
                for i in range(len(query) - 1)
                if not query[i].is_initial and not query[i + 1].is_initial]

    def _one_edit(self, q: _Part, c: int) -> bool:
        """Is the register part ``c`` the query part with one letter replaced, added, removed or swapped?

        One such edit takes one or two adjacent letter pairs of the part away
        and brings at most two new ones, so a cheap test on the bits finds
        where; then the spellings one edit away there are tried until one has
        exactly the filter ``c``: the register part is then known for sure
        (the query side holds the key, and the query). Two parts that are both
        names of their own (in the lexicon: Wahyuni / Wahyudi, Putra / Putri,
        Dewi / Dwi) are two names, not a typo.
        """
        other = q.swapped.get(c)
        if other is None:
            extra = 2 * BLOOM_K
            for window, where, how in q.windows:
                if c & window == window and (c & ~window).bit_count() <= extra:
                    other = self._decode(q.text, c, where, how)
                    if other is not None:
                        break
            else:
                return False
        if other is None or len(other) < TYPO_MIN_LENGTH - 1:
            return False
        return not (q.known and self._known(self._encoder.lexicon_hash(other)))

    def _decode(self, token: str, bloom: int, where: int, how: str) -> str | None:
        """The spelling one edit away from ``token`` at ``where`` whose filter is ``bloom``."""
        key = (token, where, how)
        table = self._decoded.get(key)
        if table is None:
            if len(self._decoded) >= 1 << 14:
                self._decoded.clear()
            table = {self._encoder.bloom(v): v for v in _variants_at(token, where, how)}
            self._decoded[key] = table
        return table.get(bloom)

    def sim(self, q: _Part, c: int, c_weight: float) -> float:
        if q.bloom == c:
            return 1.0
        if q.is_initial:
            # an initial against a whole part (not another initial) with its letter
            return INITIAL_SIM if c & q.start == q.start and c_weight > 2.5 else 0.0
        if c == q.initial:
            return INITIAL_SIM
        if q.windows and c.bit_count() >= 2 * BLOOM_K and self._one_edit(q, c):
            return TYPO_SIM
        return 0.0

    def score(self, query: Sequence[_Part], joined: Sequence[tuple[int, int]],
              candidate: Sequence[int]) -> float:
        """How alike a query name and a register name are, 0..1 (both born the same day).

        Parts are paired greedily, best pair first, each part used once: the
        same filter is 1, a part with one typo :data:`TYPO_SIM`, an initial
        against a part with its letter :data:`INITIAL_SIM`, two adjacent parts
        against one joined :data:`SPACING_SIM`. The score is the paired share
        of both names' letter pairs, so a part that only one name has (``Siti
        Aminah`` / ``Siti Aminah Putri``) costs much more than a typo. Names
        that agree on fewer than :data:`MIN_EVIDENCE` letter pairs of whole
        parts score 0: an initial and a birth date are not enough.
        """
        c_weights = [_PAIRS_BY_BITS[c.bit_count()] for c in candidate]
        total = sum(q.weight for q in query) + sum(c_weights)
        options: list[tuple[float, tuple[int, ...], tuple[int, ...]]] = []
        for i, q in enumerate(query):
            for j, c in enumerate(candidate):
                sim = self.sim(q, c, c_weights[j])
                if sim > 0.0:
                    options.append((sim, (i,), (j,)))
        # a query part against two adjacent register parts, and the reverse
        for i, q in enumerate(query):
            if q.is_initial:
                continue
            for j in range(len(candidate) - 1):
                if _dice(q.bloom, candidate[j] | candidate[j + 1]) >= 0.8:
                    options.append((SPACING_SIM, (i,), (j, j + 1)))
        for i, bloom in joined:
            for j, c in enumerate(candidate):
                if bloom == c or _dice(bloom, c) >= 0.85:
                    options.append((SPACING_SIM, (i, i + 1), (j,)))
        if not options:
            return 0.0
        options.sort(key=lambda o: o[0], reverse=True)
        used_q: set[int] = set()
        used_c: set[int] = set()
        paired = 0.0
        evidence = 0.0
        for sim, qs, cs in options:
            if used_q.intersection(qs) or used_c.intersection(cs):
                continue
            used_q.update(qs)
            used_c.update(cs)
            weight = sum(query[i].weight for i in qs) + sum(c_weights[j] for j in cs)
            paired += sim * weight
            if sim > INITIAL_SIM and not any(query[i].is_initial for i in qs):
                evidence += sum(query[i].weight for i in qs)
        if evidence < MIN_EVIDENCE:
            return 0.0
        unpaired = len(query) - len(used_q) + len(candidate) - len(used_c)
        # rounded: sums of weights in another order must not make 1 into 0.9999999
        return round(min(1.0, paired / total * UNPAIRED_FACTOR ** unpaired), 6)


def name_score(query: str, register: str, secret: bytes = bytes(32),
               known: Iterable[str] = ()) -> float:
    """The score of two names of people born the same day, as the index computes it.

    For tests and for explaining: the index never holds the register name, only
    its filters, and computes exactly this from them. ``known`` stands for the
    register's lexicon.

    >>> name_score("Drs. H. Mochammad Soeharto, M.Si.", "MUHAMAD SUHARTO")
    1.0
    >>> name_score("Siti Aminah", "Siti Aminah Putri") < 0.85
    True
    >>> name_score("Siti Aminah", "Siti Aisyah") < 0.5
    True
    >>> round(name_score("Siti Aminah", "Siti Aminha"), 2)  # one typo
    0.97
    >>> round(name_score("Sri Wahyuni", "Sri Wahyudi"), 2)  # ... or a name of its own?
    0.97
    >>> name_score("Sri Wahyuni", "Sri Wahyudi", known=["wahyuni", "wahyudi"])
    0.0
    """
    encoder = _Encoder(FuzzyKeys.from_secret(secret))
    lexicon = {encoder.lexicon_hash(t) for t in known}
    scorer = _Scorer(encoder, lexicon.__contains__)
    normalise = NameNormaliser()
    q_tokens = normalise(query)[:MAX_TOKENS]
    r_tokens = normalise(register)[:MAX_TOKENS]
    if not q_tokens or not r_tokens:
        return 0.0
    parts = scorer.parts(q_tokens)
    return scorer.score(parts, scorer.joined(parts), [encoder.bloom(t) for t in r_tokens])


class FuzzyIndex:
    """An index opened for searching (memory-mapped, read-only)."""

    def __init__(self, path: Path, secret: bytes) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise FuzzyIndexMissing("the register snapshot has no fuzzy index") from None
        try:
            size = os.fstat(fd).st_size
            if size < _HEADER_SIZE:
                raise FuzzyIndexError("the fuzzy index is truncated")
            self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        (magic, version, bloom_bits, bloom_k, key_bits, record_bits, records, tokens, starts_at,
         keys_at, entries, lexicon_at, lexicon_count, min_year, max_year) = _HEADER.unpack_from(
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
        self._tokens_at = _HEADER_SIZE
        self._encoder = _Encoder(FuzzyKeys.from_secret(secret))
        self._scorer = _Scorer(self._encoder, self._is_known)
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
                found.add(entry & _RECORD_MASK)
                i += 1
        return found

    def _record(self, record: int) -> list[int]:
        start, end = self._starts[record], self._starts[record + 1]
        count = end - start
        at = self._tokens_at + start * BLOOM_BYTES
        packed = int.from_bytes(self._map[at : at + count * BLOOM_BYTES], "little")
        packed ^= self._encoder.mask(record, count)
        return [(packed >> (i * BLOOM_BITS)) & _BLOOM_FULL for i in range(count)]

    def best_score(self, nama: str, tanggal_lahir: str) -> float:
        """The highest score of a register person born that day for this name (0 if none)."""
        dob = _valid_dob(tanggal_lahir)
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
    """What a nik-lookup flow needs: the score of each not-found row, if it reaches ``min_score``."""

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


def discard_index(directory: Path, snapshot_id: str) -> None:
    """Remove a snapshot's index (its snapshot was refused or replaced)."""
    try:
        index_path(directory, snapshot_id).unlink()
    except FileNotFoundError:
        pass


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
