"""The fuzzy index's file: what it holds per register person, and how it is laid out.

A valid NIK that is not in the register may still belong to a civil servant
registered under another (mistyped, old, borrowed) NIK. The index finds,
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

import struct
from pathlib import Path
from typing import Final

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
RECORD_MASK: Final = MAX_RECORDS
HEADER: Final = struct.Struct("<8sIHHHHIQQQQQQHH")
HEADER_SIZE: Final = 96
BLOOM_FULL: Final = (1 << BLOOM_BITS) - 1

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


class FuzzyIndexError(Exception):
    """The index cannot be built or read (never names a person or a value)."""


class FuzzyIndexMissing(FuzzyIndexError):
    """The snapshot has no fuzzy index (loaded before the fallback was switched on)."""


def index_path(directory: Path, snapshot_id: str) -> Path:
    """Where the fuzzy index of a snapshot lives: beside it, ``<snapshot-id>.fuzzy``."""
    return directory / f"{snapshot_id}{SUFFIX}"


def discard_index(directory: Path, snapshot_id: str) -> None:
    """Remove a snapshot's index (its snapshot was refused or replaced)."""
    try:
        index_path(directory, snapshot_id).unlink()
    except FileNotFoundError:
        pass
