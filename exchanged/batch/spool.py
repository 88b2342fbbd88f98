"""The spool: uploads being written, received batches, and the private work area.

An upload is written to ``spool/uploads/<uid>/data.part`` (hidden from the
agency). Only when the client closes the file normally is it fsynced, its
metadata written beside it, and the whole folder renamed, in one atomic step,
to ``spool/batches/<uid>/``: from then on it is *received*. A folder left in
``spool/uploads/`` after a crash or a dropped connection was never received
and is discarded at start-up.

Plaintext lives only under ``work/<uid>/`` (0700) while a batch is processed;
the folder is removed right after, and the whole work area is wiped at
start-up.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exchanged.errors import Unavailable, as_unavailable
from exchanged.home import Home, atomic_write, fsync_dir, make_private_dir
from exchanged.home.drop import database_files, is_held
from exchanged.ids.redact import identifier_like, mask

UPLOAD_FILE = "upload"
OUTCOME_FILE = "outcome"
META_FILE = "meta.json"
REASONS_FILE = "reasons.json"
#: what an upload is copied in by, out of an OpenSSH chroot
COPY_BYTES = 1 << 20


def new_uid(now: datetime | None = None) -> str:
    """An exchange-wide unique id for an upload: its UTC receive time and randomness."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


@dataclass(frozen=True)
class UploadMeta:
    """What the spool keeps of an upload besides its bytes.

    ``name`` is the file name with any 16- or 18-digit number masked (a batch
    id could carry a NIK); ``name_personal`` says whether one was.
    """

    uid: str
    agency: str
    flow: str
    name: str
    name_personal: bool
    sha256: str
    size: int
    received_at: str

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> UploadMeta:
        raw: dict[str, Any] = json.loads(data)
        return cls(**raw)


class Upload:
    """One upload being written; :meth:`finish` hands it to the spool, :meth:`discard` drops it."""

    def __init__(self, spool: Spool, agency: str, flow: str, name: str) -> None:
        self.spool = spool
        self.agency = agency
        self.flow = flow
        self.name = name
        self.uid = new_uid()
        self.dir = spool.home.uploads / self.uid
        self.dir.mkdir(mode=0o700)
        self.path = self.dir / "data.part"
        self.fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        self.size = 0
        # SHA-256 computed as the data arrives, while it arrives in order
        self._hash: Any = hashlib.sha256()
        self._hashed = 0

    def write(self, offset: int, data: bytes | memoryview) -> None:
        os.pwrite(self.fd, data, offset)
        if offset == self._hashed and self._hash is not None:
            self._hash.update(data)
            self._hashed += len(data)
        else:
            # out of order, or a rewrite of bytes already hashed: hash the file at the end
            self._hash = None
        self.size = max(self.size, offset + len(data))

    def forget_hash(self) -> None:
        self._hash = None

    def _digest(self) -> str:
        if self._hash is not None and self._hashed == self.size:
            return str(self._hash.hexdigest())
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()

    def finish(self, received_at: str) -> UploadMeta:
        """fsync, record metadata, and move the folder into ``spool/batches`` atomically."""
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        self.size = self.path.stat().st_size
        meta = UploadMeta(
            self.uid, self.agency, self.flow, mask(self.name), identifier_like(self.name),
            self._digest(), self.size, received_at,
        )
        os.rename(self.path, self.dir / UPLOAD_FILE)
        atomic_write(self.dir / META_FILE, meta.to_json())
        fsync_dir(self.dir)
        os.rename(self.dir, self.spool.home.batches / self.uid)
        fsync_dir(self.spool.home.batches)
        return meta

    def keep_as(self, path: Path) -> None:
        """Move the finished data to ``path`` (a held upload) and drop the staging folder."""
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        os.replace(self.path, path)
        fsync_dir(path.parent)
        shutil.rmtree(self.dir, ignore_errors=True)

    def close(self) -> None:
        """Stop writing: the file stays (an upload kept until its discarding is recorded)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class NotAPlainFile(Exception):
    """What an agency's inbox holds under an upload's name is not a plain file of its own:
    a symbolic link, a file with another name elsewhere (a hard link), or no regular file
    (a FIFO, a device). It is not taken; it stays where it is for the administrator."""


def _refuse_held(path: Path, home: Home) -> None:
    """Raise NotAPlainFile if ``path`` is the ledger's database (or its WAL or shared
    memory) by another name: it must not even be opened (see
    :func:`~exchanged.home.drop.is_held`)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return  # nothing there: whoever reads it next says so
    if is_held(st, database_files(home.ledger)):
        raise NotAPlainFile("the exchange's own database")


def _copy_in(path: Path, sink: int) -> None:
    """Copy the agency's file at ``path`` into the open ``sink``, then remove it.

    The file is opened without following a link (``O_NOFOLLOW``; ``O_NONBLOCK``, so that a
    FIFO cannot hold the watcher) and the *open descriptor* is checked: a regular file with
    one link. The bytes come from that descriptor, so a name swapped for a link after any
    check by name leads nowhere; what is copied is the exchange's own file (0600), which
    the agency can no longer change through a handle it kept open. The name is removed
    only if it still is the file that was copied.
    """
    try:
        source = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotAPlainFile("a symbolic link") from None
        raise
    try:
        st = os.fstat(source)
        if not stat.S_ISREG(st.st_mode):
            raise NotAPlainFile("not a regular file")
        if st.st_nlink != 1:
            raise NotAPlainFile(f"a file with {st.st_nlink} links")
        while chunk := os.read(source, COPY_BYTES):
            view = memoryview(chunk)
            while view:
                view = view[os.write(sink, view):]
    finally:
        os.close(source)
    try:
        now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return  # the agency removed it meanwhile: what it had closed is taken
    if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
        os.unlink(path)


def _moved(path: Path, upload: Upload) -> bool:
    """Rename a held upload into ``upload``'s place; False if it is on another file system."""
    try:
        os.replace(path, upload.path)
    except OSError as e:
        if e.errno == errno.EXDEV:
            return False
        raise
    os.close(upload.fd)
    upload.fd = os.open(upload.path, os.O_RDWR | os.O_NOFOLLOW)
    return True


class Spool:
    def __init__(self, home: Home) -> None:
        self.home = home

    def new_upload(self, agency: str, flow: str, name: str) -> Upload:
        return Upload(self, agency, flow, name)

    def adopt(self, path: Path, agency: str, flow: str, name: str) -> Upload:
        """Take a complete file (a held upload being renamed) as a new upload.

        In OpenSSH mode (:attr:`Home.shared_drop`) the file is the agency's, in a folder
        its user (and its group) can write: it is copied out of the chroot from a checked
        descriptor (:func:`_copy_in`), never moved or read by its path. The embedded front
        door's held upload is the exchange's own file: it is moved (copied the same way
        only if its folder is on another file system).
        """
        _refuse_held(path, self.home)
        upload = Upload(self, agency, flow, name)
        try:
            if self.home.shared_drop or not _moved(path, upload):
                _copy_in(path, upload.fd)
        except BaseException:
            upload.discard()
            raise
        upload.size = os.fstat(upload.fd).st_size
        upload.forget_hash()
        return upload

    def batch_dir(self, uid: str) -> Path:
        return self.home.batches / uid

    def upload_path(self, uid: str) -> Path:
        return self.batch_dir(uid) / UPLOAD_FILE

    def outcome_path(self, uid: str) -> Path:
        return self.batch_dir(uid) / OUTCOME_FILE

    def reasons_path(self, uid: str) -> Path:
        """The reasons of a rejection, kept until the rejection is sealed and delivered."""
        return self.batch_dir(uid) / REASONS_FILE

    def forget(self, uid: str) -> None:
        """A batch answered: its bookkeeping files go (the file name it came under, masked,
        and its rejection's sentences), so that nothing in the home but the ledger and
        sealed messages outlives a batch."""
        for name in (META_FILE, REASONS_FILE):
            try:
                (self.batch_dir(uid) / name).unlink()
            except FileNotFoundError:
                pass

    def unreceive(self, uid: str) -> None:
        """Take back a received folder that could not be recorded: it is discarded."""
        try:
            os.rename(self.batch_dir(uid), self.home.uploads / uid)
        except OSError:
            return
        shutil.rmtree(self.home.uploads / uid, ignore_errors=True)

    def meta(self, uid: str) -> UploadMeta:
        return UploadMeta.from_json((self.batch_dir(uid) / META_FILE).read_bytes())

    def with_bookkeeping(self) -> list[str]:
        """The batches whose folder still holds a metadata or reasons file."""
        return sorted(p.parent.name for name in (META_FILE, REASONS_FILE)
                      for p in self.home.batches.glob(f"*/{name}"))

    def received_uids(self) -> list[str]:
        return sorted(p.name for p in self.home.batches.iterdir() if p.is_dir())

    def interrupted_uploads(self) -> list[Path]:
        """Uploads whose writing never finished (the daemon stopped or the link dropped)."""
        return sorted(p for p in self.home.uploads.iterdir())

    @contextmanager
    def work_dir(self, uid: str) -> Iterator[Path]:
        """A private folder for one batch's plaintext, removed when the block ends."""
        path = self.home.work / uid
        shutil.rmtree(path, ignore_errors=True)
        make_private_dir(path)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def check_writable(self, margin: int) -> None:
        """Raise :class:`~exchanged.errors.Unavailable` unless the spool's disk has ``margin``
        bytes free and takes a small file, written and synced (the probe while intake stops)."""
        free = shutil.disk_usage(self.home.spool).free
        if free < margin:
            raise Unavailable(f"{free // 2**20} MB free on the exchange's disk, "
                              f"{margin // 2**20} MB needed")
        probe = self.home.work / ".probe"
        try:
            fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, bytes(4096))
                os.fsync(fd)
            finally:
                os.close(fd)
            probe.unlink()
        except OSError as e:
            raise as_unavailable(e) or e from None

    def wipe_work(self) -> int:
        """Remove everything in the work area (stray plaintext after a crash); returns the
        number of files removed."""
        count = 0
        for entry in self.home.work.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                count += sum(len(files) for _, _, files in os.walk(entry))
                shutil.rmtree(entry, ignore_errors=True)
            else:
                count += 1
                entry.unlink()
        return count
