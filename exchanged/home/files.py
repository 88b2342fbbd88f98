"""Files written the safe way: private folders, atomic replacement, fsync, fresh secrets."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

DIR_MODE = 0o700
FILE_MODE = 0o600

def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) as 0700, and fix the mode if it exists."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: Path, mode: int = FILE_MODE) -> Iterator[IO[bytes]]:
    """Write ``path`` atomically: a hidden temporary beside it, fsync, rename.

    Readers see the old file or the whole new one, never half of it; the
    temporary is removed if the block fails.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    with atomic_writer(path, mode) as f:
        f.write(data)


def new_secret(path: Path, nbytes: int = 32) -> None:
    atomic_write(path, secrets.token_bytes(nbytes))


def files_sha256(files: Mapping[str, bytes]) -> str:
    """The SHA-256 of a set of named files: each name with its own SHA-256, in name order.

    >>> files_sha256({"a.yaml": b"x"}) == files_sha256({"a.yaml": b"x"})
    True
    >>> files_sha256({"a.yaml": b"x"}) == files_sha256({"b.yaml": b"x"})
    False
    """
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{hashlib.sha256(files[name]).hexdigest()}\n".encode())
    return digest.hexdigest()
