"""Putting files into an agency's drop folders without ever following a link planted there.

Another process on the host may replace an agency's folder by a link to somewhere else
(``keys/``, another agency's outbox); the exchange must then deliver nothing there. Every
folder of the agency's part of the path is opened relative to the one before it with
``O_NOFOLLOW``, and every file is created in the last one with ``O_EXCL | O_NOFOLLOW`` and
renamed into place within it. Outcomes (the pipeline), checkpoints and notices all go
through here.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from exchanged.home.paths import Home


class PlantedLink(OSError):
    """A folder of the agency's drop path is a link (or not a folder): nothing delivered.
    An OSError (ELOOP), so that whoever only reads the folders handles it like any other."""

    def __init__(self, where: str) -> None:
        super().__init__(errno.ELOOP,
                         f"{where} in the agency's drop folders is a link or not a folder")
        self.where = where

    def __str__(self) -> str:
        return str(self.strerror)


def database_files(database: Path) -> tuple[Path, ...]:
    """An SQLite database and the files SQLite keeps beside it (WAL, shared memory, journal)."""
    return (database, *(database.with_name(database.name + s)
                        for s in ("-wal", "-shm", "-journal")))


def is_held(st: os.stat_result, files: Iterable[Path]) -> bool:
    """Is ``st`` (the lstat of a file found under a name another process could have put
    there: a drop folder's) one of ``files``, reached by another name (a hard link)?

    Why it matters: SQLite keeps its locks as POSIX record locks, which belong to the
    process and the file, not to a descriptor: a daemon that opens its own ledger.db (or
    its -wal or -shm) through a planted hard link and closes that descriptor again has
    silently dropped every lock its ledger connections hold. Another process (an
    ``exchanged ledger`` command) then takes the database as unused, checkpoints and
    removes the WAL under the daemon's feet, and the daemon's connections fail with
    SQLITE_IOERR_SHORT_READ, then SQLITE_NOTADB. Such a file must be refused from its
    lstat, before anything opens it.
    """
    for path in files:
        try:
            held = os.stat(path)
        except OSError:
            continue
        if (held.st_dev, held.st_ino) == (st.st_dev, st.st_ino):
            return True
    return False


def open_below(root: Path, names: Sequence[str], *, make: bool = False) -> int:
    """A descriptor of ``root/names...``, each of ``names`` opened relative to the one before
    with ``O_NOFOLLOW`` (and made first if missing, with ``make``); raises PlantedLink
    naming the first that is a link or not a folder."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, name in enumerate(names, 1):
            if make:
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise PlantedLink("/".join(names[:depth])) from None
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_drop_folder(home: Home, agency: str, *parts: str) -> int:
    """A descriptor of ``drop/<agency>/<parts...>``, folders made if missing, reached without
    following a link in the agency's part of the path; raises PlantedLink."""
    home.drop.mkdir(mode=0o700, parents=True, exist_ok=True)
    return open_below(home.drop, (agency, *parts), make=True)


def place(folder: int, name: str, *, source: Path | None = None, data: bytes | None = None,
          mode: int = 0o600, link: bool = False) -> None:
    """Put ``source``'s content (hard-linked if ``link`` and possible) or ``data`` into the
    open ``folder`` as ``name``, atomically: a hidden temporary name, fsynced, renamed."""
    tmp = f".{name}.tmp"
    try:
        os.unlink(tmp, dir_fd=folder)
    except FileNotFoundError:
        pass
    linked = False
    if link and source is not None:
        try:
            os.link(source, tmp, dst_dir_fd=folder)
            linked = True
        except OSError:
            pass
    if not linked:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode,
                     dir_fd=folder)
        with os.fdopen(fd, "wb") as out:
            if source is not None:
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            else:
                out.write(data or b"")
            out.flush()
            os.fchmod(out.fileno(), mode)  # whatever the umask took away
            os.fsync(out.fileno())
    os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    os.fsync(folder)


def deliver(home: Home, agency: str, folder: str, name: str, data: bytes) -> None:
    """``data`` as ``/outbox/<folder>/<name>`` of the agency (a checkpoint, a notice);
    raises PlantedLink if the way there is a link."""
    fd = open_drop_folder(home, agency, "outbox", folder)
    try:
        place(fd, name, data=data, mode=0o640 if home.shared_drop else 0o600)
    finally:
        os.close(fd)
