"""The snapshots of one dataset: making, opening, listing and removing them."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from exchanged.matching.register.builder import SnapshotBuilder
from exchanged.matching.register.keys import IdentifierCipher
from exchanged.matching.register.layout import FUZZY_SUFFIX, SQLITE_MAGIC, SUFFIX
from exchanged.matching.register.snapshot import LegacySnapshot, Snapshot


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
