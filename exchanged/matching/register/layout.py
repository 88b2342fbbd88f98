"""A snapshot's file: what a flow matches against, kept without identifiers in the clear.

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

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from exchanged.matching.register.keys import IdentifierCipher

# the first format's name is kept: a snapshot is told apart by its first bytes
SUFFIX = ".db"
#: a snapshot's fuzzy index beside it (exchanged.matching.fuzzy), removed with it
FUZZY_SUFFIX = ".fuzzy"
MAGIC = b"EXSNAP02"
SQLITE_MAGIC = b"SQLite format 3\0"
ALIGN = 64


#: presence filter bits per stored value, rounded up to a power of two (16 to 32 a value:
#: 4.4 % of absent values pass at 6 M rows, docs/performance.md)
FILTER_BITS_PER_VALUE = 16
#: values a presence filter is made from at a time
FILTER_CHUNK = 1 << 18


def presence_filter(first: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """A bitmap with one bit set for the top bits of each keyed value's first word
    (``first`` sorted, as a snapshot stores it): a lookup reads one byte of it to rule out
    nearly every absent value before the binary search. The values are AES outputs,
    evenly spread, so their top bits make as good a hash as any."""
    bits = _filter_bits(len(first))
    shift = np.uint64(64 - bits)
    bitmap = np.zeros(1 << (bits - 3), dtype=np.uint8)
    # a quarter of a million values at a time: the temporaries stay small and are reused,
    # instead of six arrays of the column's size each faulted in afresh (6 M values:
    # 0.23-0.5 -> 0.16-0.19 s)
    for at in range(0, len(first), FILTER_CHUNK):
        where = first[at:at + FILTER_CHUNK] >> shift
        byte = (where >> np.uint64(3)).astype(np.intp)
        mask = np.left_shift(np.uint8(1), (where & np.uint64(7)).astype(np.uint8))
        # sorted values give sorted bytes: OR each run of equal bytes at once (a run cut
        # by the chunk's end is ORed again by the next chunk: hence |=)
        starts = np.flatnonzero(np.diff(byte, prepend=-1))
        bitmap[byte[starts]] |= np.bitwise_or.reduceat(mask, starts)
    return bitmap


def may_hold(bitmap: npt.NDArray[np.uint8], first: npt.NDArray[np.uint64]
             ) -> npt.NDArray[np.bool_]:
    """Which keyed values (by their first word) the filter does not rule out."""
    bits = (len(bitmap) * 8).bit_length() - 1
    where = first >> np.uint64(64 - bits)
    byte = bitmap[(where >> np.uint64(3)).astype(np.intp)]
    held: npt.NDArray[np.bool_] = ((byte >> (where & np.uint64(7)).astype(np.uint8)) & 1
                                   ).astype(np.bool_)
    return held


#: log2 of the largest filter, in bits (128 MiB): a register of the whole of DTKS (140 M
#: values) gets 7.7 bits a value, which still rules out about 88 % of absent values
MAX_FILTER_BITS = 30


def _filter_bits(values: int) -> int:
    """log2 of the filter's size in bits: FILTER_BITS_PER_VALUE a value or more, 64 at least,
    MAX_FILTER_BITS at most."""
    wanted = (max(values, 1) * FILTER_BITS_PER_VALUE - 1).bit_length()
    return min(MAX_FILTER_BITS, max(6, wanted))


class SnapshotPlace(Protocol):
    """Where a dataset's snapshots are and the keys they are made with (a register store)."""

    @property
    def directory(self) -> Path: ...

    @property
    def secret(self) -> bytes: ...

    @property
    def cipher(self) -> IdentifierCipher: ...
