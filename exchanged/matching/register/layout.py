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

from exchanged.matching.register.keys import IdentifierCipher

# the first format's name is kept: a snapshot is told apart by its first bytes
SUFFIX = ".db"
#: a snapshot's fuzzy index beside it (exchanged.matching.fuzzy), removed with it
FUZZY_SUFFIX = ".fuzzy"
MAGIC = b"EXSNAP02"
SQLITE_MAGIC = b"SQLite format 3\0"
ALIGN = 64


class SnapshotPlace(Protocol):
    """Where a dataset's snapshots are and the keys they are made with (a register store)."""

    @property
    def directory(self) -> Path: ...

    @property
    def secret(self) -> bytes: ...

    @property
    def cipher(self) -> IdentifierCipher: ...
