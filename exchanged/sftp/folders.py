"""An agency's SFTP view: ``/inbox/<flow>/`` to upload, ``/outbox/<flow>/`` to collect outcomes.

Nothing else exists for it: paths are resolved against a virtual root (``..``
stops at ``/``), only the flows its agreements let it use appear, symbolic
links are neither followed nor created, and every file is opened with
``O_NOFOLLOW`` inside its folder, itself reached without following a link
(so a link planted in a drop folder, or a drop folder replaced by a link,
leads nowhere). An outbox shows only sealed OpenPGP messages: the exchange
puts nothing else there, so anything else (a hard link to a key, a decrypted
file copied there by mistake) was put there by someone else and is never
served.

An upload is written to a hidden spool file and handed to processing only
when the client closes it normally (an SSH_FXP_CLOSE). A connection that drops
mid-upload closes the handle from :meth:`ExchangeSFTPServer.finish_subsystem`
instead, and that upload is discarded and recorded, never processed.

Uploads under a temporary name (a leading dot, or ending ``.filepart``,
``.part``, ``.partial``, ``.tmp``, ``.upload``) wait in the inbox until the
client renames them to their final name, as WinSCP and many scripts do.

Each agency's inbox has a quota of bytes and files (see
:mod:`exchanged.sftp.limits`): a write that would take it over the byte
quota fails at that write, and an upload is not even opened when the agency
already has its quota of files.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat as stat_mod
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from paramiko.sftp import (
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
)

from exchanged.errors import Unavailable
from exchanged.home.drop import open_below
from exchanged.sftp.door import Door, GuardedDoor, Upload
from exchanged.sftp.limits import Gate

log = logging.getLogger("exchanged.sftp")

TEMPORARY_SUFFIXES = (".filepart", ".part", ".partial", ".tmp", ".upload")
#: files one session may hold open at once (each is a file descriptor here)
MAX_OPEN_FILES = 32
SAFE_HELD_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")
MAX_NAME_BYTES = 1024
#: the components of a drop folder's path that are the agency's tree (agency, area, flow):
#: each is opened without following a link
TREE_DEPTH = 3
#: what an outcome starts with: a public-key encrypted session key packet (tag 1, old or
#: new format), version 3, an 8-byte key id, an algorithm gpg encrypts to
SEALED_TAGS = (0x84, 0x85, 0x86, 0xC1)
PUBKEY_ALGORITHMS = (1, 2, 16, 18, 22, 25)
#: ... or an armored OpenPGP message (the ledger's signed checkpoints)
ARMOR = b"-----BEGIN PGP MESSAGE-----"


def is_temporary_name(name: str) -> bool:
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def normalise(path: str) -> str:
    """Resolve a client path against the virtual root; ``..`` never climbs above ``/``.

    >>> normalise("../../etc/passwd")
    '/etc/passwd'
    >>> normalise("inbox/./kpm-verification/")
    '/inbox/kpm-verification'
    """
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def looks_sealed(head: bytes) -> bool:
    """Does a file that starts with ``head`` look like an OpenPGP message the exchange made?

    >>> looks_sealed(bytes([0x84, 0x5E, 3]) + bytes(8) + bytes([18]))
    True
    >>> looks_sealed(b"-----BEGIN PGP MESSAGE-----\\n"), looks_sealed(b"SQLite format 3\\0")
    (True, False)
    """
    if head.startswith(ARMOR):
        return True
    if len(head) < 12 or head[0] not in SEALED_TAGS:
        return False
    # the body starts after the length: one octet (old format, type 0), two (type 1), four
    # (type 2); a new-format length of one, two or five octets
    if head[0] == 0xC1:
        start = 2 if head[1] < 192 else 3 if head[1] < 224 else 6
    else:
        start = 1 + {0x84: 1, 0x85: 2, 0x86: 4}[head[0]]
    body = head[start:start + 10]
    return len(body) == 10 and body[0] == 3 and body[9] in PUBKEY_ALGORITHMS


def dir_attributes(name: str) -> paramiko.SFTPAttributes:
    attr = paramiko.SFTPAttributes()
    attr.filename = name
    attr.st_mode = stat_mod.S_IFDIR | 0o700
    attr.st_size = 0
    attr.st_uid = attr.st_gid = 0
    attr.st_mtime = attr.st_atime = int(time.time())
    return attr


def file_attributes(name: str, st: os.stat_result) -> paramiko.SFTPAttributes:
    attr = paramiko.SFTPAttributes.from_stat(st, name)
    attr.st_uid = attr.st_gid = 0
    attr.st_mode = stat_mod.S_IFREG | 0o600
    return attr


@dataclass
class Session:
    """One authenticated connection."""

    agency: str
    remote: str
    #: uploads handed over in this session: path -> (size, mtime), so a client's
    #: stat or setstat right after its upload succeeds (WinSCP sets the time)
    delivered: dict[str, tuple[int, int]] = field(default_factory=dict)
    open_files: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: when the client last asked for anything (monotonic seconds): the idle limit
    last_active: float = field(default_factory=time.monotonic)

    def take_file(self) -> bool:
        with self.lock:
            if self.open_files >= MAX_OPEN_FILES:
                return False
            self.open_files += 1
            return True

    def release_file(self) -> None:
        with self.lock:
            self.open_files = max(0, self.open_files - 1)

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_active


@dataclass(frozen=True)
class Place:
    """What a normalised path names in the agency's tree."""

    kind: str  # root | area | flow | file | none
    area: str = ""
    flow: str = ""
    name: str = ""


class UploadHandle(paramiko.SFTPHandle):
    """An upload being written; handed over on a normal close only."""

    def __init__(self, folders: DropFolders, upload: Upload, path: str, limit: int,
                 elsewhere: int) -> None:
        super().__init__()
        self.folders = folders
        self.upload = upload
        self.path = path
        self.limit = limit
        #: what the agency holds besides the uploads it is writing (for its byte quota)
        self.elsewhere = elsewhere
        self.aborted = False
        self.refused: str | None = None
        self.closed = False
        folders.gate.start_upload(upload.agency, id(self))

    def write(self, offset: int, data: bytes) -> int:  # type: ignore[override]
        self.folders.session.touch()
        if self.refused:
            return SFTP_FAILURE
        end = offset + len(data)
        if end > self.limit:
            self.refused = f"the upload is over the limit of {self.limit} bytes"
            return SFTP_FAILURE
        # counted before it is written: the exchange never stores a byte over the quota
        if not self.folders.gate.grow_upload(self.upload.agency, id(self), end, self.elsewhere):
            self.refused = (f"the agency's inbox is over its quota of "
                            f"{self.folders.gate.limits.quota_bytes} bytes")
            return SFTP_FAILURE
        try:
            self.upload.write(offset, data)
        except OSError as e:
            self.refused = f"the exchange could not store it ({errno.errorcode.get(e.errno or 0, 'error')})"
            return SFTP_FAILURE
        return SFTP_OK

    def read(self, offset: int, length: int) -> bytes | int:
        return SFTP_PERMISSION_DENIED

    def stat(self) -> paramiko.SFTPAttributes | int:
        attr = paramiko.SFTPAttributes()
        attr.st_size = self.upload.size
        attr.st_mode = stat_mod.S_IFREG | 0o600
        attr.st_mtime = attr.st_atime = int(time.time())
        return attr

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK  # times and modes of an upload are not kept

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.folders.finish_upload(self)
        finally:
            self.folders.gate.end_upload(self.upload.agency, id(self))
            self.folders.session.release_file()


class ReadHandle(paramiko.SFTPHandle):
    """An outcome being downloaded; the ledger records complete downloads."""

    def __init__(self, folders: DropFolders, fd: int, place: Place, size: int) -> None:
        super().__init__(os.O_RDONLY)
        self.folders = folders
        self.place = place
        self.size = size
        self.sent = 0
        self.readfile = os.fdopen(fd, "rb")

    def read(self, offset: int, length: int) -> bytes | int:
        self.folders.session.touch()
        data = super().read(offset, length)
        if isinstance(data, bytes):
            self.sent = max(self.sent, offset + len(data))
        return data

    def write(self, offset: int, data: bytes) -> int:  # type: ignore[override]
        return SFTP_PERMISSION_DENIED

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK

    def close(self) -> None:
        super().close()
        self.folders.session.release_file()
        if self.sent >= self.size:
            self.folders.door.outcome_event(
                self.folders.session.agency, self.place.flow, self.place.name, "downloaded",
                self.size,
            )


class ExchangeSFTPServer(paramiko.SFTPServer):
    """paramiko's SFTP server, told apart a normal close from a dropped connection."""

    def finish_subsystem(self) -> None:
        # Handles still open when the channel ends were never closed by the
        # client: mark uploads aborted, then close each on its own, so that one
        # that cannot be recorded does not leave the others (and their files) open.
        for key, handle in list(self.file_table.items()):
            if isinstance(handle, UploadHandle):
                handle.aborted = True
            try:
                handle.close()
            except Exception as e:
                log.error("an open file could not be closed at the end of a session (%s)",
                          type(e).__name__)
            self.file_table.pop(key, None)
        super().finish_subsystem()


class DropFolders(paramiko.SFTPServerInterface):
    """The SFTP operations on one agency's virtual tree."""

    def __init__(self, server: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self.door: Door[Any] = server.door
        self.gate: Gate = server.gate
        self.guarded: GuardedDoor[Any] | None = server.guarded
        session = server.session
        assert isinstance(session, Session), "sftp before authentication"
        self.session: Session = session

    # -- resolving -----------------------------------------------------------------------------

    def _place(self, path: str) -> Place:
        self.session.touch()
        parts = [p for p in normalise(path).split("/") if p]
        if not parts:
            return Place("root")
        area = parts[0]
        if area not in ("inbox", "outbox"):
            return Place("none")
        if len(parts) == 1:
            return Place("area", area)
        flows = self._flows(area)
        if parts[1] not in flows:
            return Place("none")
        if len(parts) == 2:
            return Place("flow", area, parts[1])
        if len(parts) == 3 and len(parts[2].encode("utf-8", "surrogateescape")) <= MAX_NAME_BYTES \
                and "\0" not in parts[2]:
            return Place("file", area, parts[1], parts[2])
        return Place("none")

    def _flows(self, area: str) -> tuple[str, ...]:
        agency = self.session.agency
        return self.door.inbox_flows(agency) if area == "inbox" else self.door.outbox_flows(agency)

    def _disk(self, place: Place) -> Path:
        if place.area == "inbox":
            return self.door.inbox_dir(self.session.agency, place.flow)
        return self.door.outbox_dir(self.session.agency, place.flow)

    @contextmanager
    def _folder(self, place: Place) -> Iterator[int | None]:
        """The place's drop folder, open (None if it does not exist or is not a real folder)."""
        try:
            fd = open_tree_folder(self._disk(place))
        except OSError:
            yield None
            return
        try:
            yield fd
        finally:
            os.close(fd)

    def _file_stat(self, place: Place) -> os.stat_result | None:
        """lstat of a listed file: regular files only, never through a link."""
        if place.kind != "file" or not _listable(place.name, place.area):
            return None
        with self._folder(place) as folder:
            if folder is None:
                return None
            return _entry(folder, place.name, place.area)

    # -- SFTP operations -----------------------------------------------------------------------

    def canonicalize(self, path: str) -> str:
        self.session.touch()
        return normalise(path)

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        place = self._place(path)
        if place.kind == "root":
            return [dir_attributes("inbox"), dir_attributes("outbox")]
        if place.kind == "area":
            return [dir_attributes(f) for f in self._flows(place.area)]
        if place.kind != "flow":
            return SFTP_NO_SUCH_FILE
        out = []
        with self._folder(place) as folder:
            if folder is None:
                return []
            for name in sorted(os.listdir(folder)):
                if not _listable(name, place.area):
                    continue
                st = _entry(folder, name, place.area)
                if st is not None:
                    out.append(file_attributes(name, st))
        return out

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        place = self._place(path)
        if place.kind == "root":
            return dir_attributes("/")
        if place.kind in ("area", "flow"):
            return dir_attributes(place.flow or place.area)
        st = self._file_stat(place)
        if st is not None:
            return file_attributes(place.name, st)
        with self.session.lock:
            known = self.session.delivered.get(normalise(path))
        if known is not None:
            attr = paramiko.SFTPAttributes()
            attr.filename = place.name
            attr.st_size, attr.st_mtime = known
            attr.st_atime = known[1]
            attr.st_mode = stat_mod.S_IFREG | 0o600
            return attr
        return SFTP_NO_SUCH_FILE

    lstat = stat

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        result = self.stat(path)
        return SFTP_OK if not isinstance(result, int) else result

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        place = self._place(path)
        if place.kind != "file":
            return SFTP_PERMISSION_DENIED if place.kind != "none" else SFTP_NO_SUCH_FILE
        if not self.session.take_file():
            return SFTP_FAILURE
        handle = self._open(place, path, flags)
        if isinstance(handle, int):
            self.session.release_file()
        return handle

    def _open(self, place: Place, path: str, flags: int) -> paramiko.SFTPHandle | int:
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR))
        if place.area == "outbox":
            if writing:
                return SFTP_PERMISSION_DENIED
            return self._open_outcome(place)
        if not writing:
            return SFTP_PERMISSION_DENIED  # the inbox is write-only
        agency = self.session.agency
        elsewhere = self._within_file_quota(agency)
        if elsewhere is None:
            return SFTP_FAILURE
        try:
            upload = self.door.new_upload(agency, place.flow, place.name)
        except Unavailable:
            return SFTP_FAILURE
        limit = self.door.max_upload_bytes(agency, place.flow)
        return UploadHandle(self, upload, normalise(path), limit, elsewhere)

    def _open_outcome(self, place: Place) -> paramiko.SFTPHandle | int:
        if not _listable(place.name, place.area):
            return SFTP_NO_SUCH_FILE
        with self._folder(place) as folder:
            if folder is None:
                return SFTP_NO_SUCH_FILE
            try:
                # O_NONBLOCK: a FIFO planted under an outcome's name must not hang the session
                fd = os.open(place.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
                             dir_fd=folder)
            except OSError:
                return SFTP_NO_SUCH_FILE
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode) or not looks_sealed(os.pread(fd, 64, 0)):
                os.close(fd)
                return SFTP_NO_SUCH_FILE
            os.set_blocking(fd, True)
        except OSError:
            os.close(fd)
            return SFTP_NO_SUCH_FILE
        return ReadHandle(self, fd, place, st.st_size)

    def _within_file_quota(self, agency: str) -> int | None:
        """The bytes the agency holds besides what it is writing, or None if one more upload
        would take it over its quota of files (or its bytes are at the quota already)."""
        limits = self.gate.limits
        held_bytes, held_files = self._held(agency)
        queued_bytes, queued_files = 0, 0
        if self.guarded is not None:
            try:
                queued_bytes, queued_files = self.guarded.unanswered(agency)
            except Exception as e:
                # the exchange cannot say how much is queued: take no more (fail closed)
                log.error("the queue of %s cannot be counted (%s): upload refused", agency,
                          type(e).__name__)
                return None
        writing_bytes, writing_files = self.gate.writing(agency)
        files = held_files + queued_files + writing_files
        elsewhere = held_bytes + queued_bytes
        if files >= limits.quota_files or elsewhere + writing_bytes >= limits.quota_bytes:
            log.warning("%s: upload refused, its inbox is at its quota (%d files, %d bytes)",
                        agency, files, elsewhere + writing_bytes)
            return None
        return elsewhere

    def _held(self, agency: str) -> tuple[int, int]:
        """Bytes and number of the uploads the agency holds under a temporary name."""
        size = files = 0
        for flow in self.door.inbox_flows(agency):
            try:
                folder = open_tree_folder(self.door.inbox_dir(agency, flow))
            except OSError:
                continue
            try:
                for name in os.listdir(folder):
                    try:
                        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
                    except OSError:
                        continue
                    if stat_mod.S_ISREG(st.st_mode):
                        size += st.st_size
                        files += 1
            finally:
                os.close(folder)
        return size, files

    def finish_upload(self, handle: UploadHandle) -> None:
        """A write handle closed: hand over, hold (temporary name) or discard."""
        upload = handle.upload
        if handle.aborted:
            self.door.discard(upload, "the connection ended before the client closed the file")
            return
        if handle.refused:
            self.door.discard(upload, handle.refused)
            return
        name = upload.name
        if is_temporary_name(name) and SAFE_HELD_NAME.fullmatch(name):
            self._hold(upload)
            return
        self.door.receive(upload)
        with self.session.lock:
            self.session.delivered[handle.path] = (upload.size, int(time.time()))

    def _hold(self, upload: Upload) -> None:
        """Keep a temporary-named upload in the inbox until it is renamed."""
        folder = self.door.inbox_dir(upload.agency, upload.flow)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # a drop folder replaced by a link must not take the upload elsewhere
        os.close(open_tree_folder(folder))
        upload.keep_as(folder / upload.name)

    def rename(self, oldpath: str, newpath: str) -> int:
        old, new = self._place(oldpath), self._place(newpath)
        if old.kind != "file" or new.kind != "file" or old.area != "inbox" or new.area != "inbox":
            return SFTP_PERMISSION_DENIED
        if old.flow != new.flow:
            return SFTP_PERMISSION_DENIED
        if self._file_stat(old) is None:
            return SFTP_NO_SUCH_FILE
        held = self._disk(old) / old.name
        if is_temporary_name(new.name) and SAFE_HELD_NAME.fullmatch(new.name):
            with self._folder(old) as folder:
                if folder is None:
                    return SFTP_NO_SUCH_FILE
                os.replace(old.name, new.name, src_dir_fd=folder, dst_dir_fd=folder)
            return SFTP_OK
        try:
            upload = self.door.adopt(self.session.agency, new.flow, held, new.name)
        except Unavailable:
            return SFTP_FAILURE
        self.door.receive(upload)
        with self.session.lock:
            self.session.delivered[normalise(newpath)] = (upload.size, int(time.time()))
        return SFTP_OK

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self.rename(oldpath, newpath)

    def remove(self, path: str) -> int:
        place = self._place(path)
        st = self._file_stat(place)
        if st is None:
            return SFTP_NO_SUCH_FILE if place.kind in ("file", "none") else SFTP_PERMISSION_DENIED
        with self._folder(place) as folder:
            if folder is None:
                return SFTP_NO_SUCH_FILE
            try:
                os.unlink(place.name, dir_fd=folder)
            except OSError:
                return SFTP_NO_SUCH_FILE
        if place.area == "outbox":
            self.door.outcome_event(self.session.agency, place.flow, place.name, "removed",
                                    st.st_size)
        return SFTP_OK

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_PERMISSION_DENIED

    def rmdir(self, path: str) -> int:
        return SFTP_PERMISSION_DENIED

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def readlink(self, path: str) -> str | int:
        return SFTP_OP_UNSUPPORTED


def open_tree_folder(path: Path) -> int:
    """Open a drop folder, following no link in the agency's part of its path.

    The last :data:`TREE_DEPTH` components (agency, inbox or outbox, flow) are each
    opened relative to the one before with ``O_NOFOLLOW``, so a drop folder that was
    replaced by a link to elsewhere raises ``OSError`` instead of being served.
    """
    return open_below(path.parents[TREE_DEPTH - 1], path.parts[-TREE_DEPTH:])


def _entry(folder: int, name: str, area: str) -> os.stat_result | None:
    """The stat of a file an agency may see in an open drop folder, else None.

    Regular files only, never through a link; in an outbox, only sealed OpenPGP messages.
    """
    try:
        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except (OSError, ValueError):
        return None
    if not stat_mod.S_ISREG(st.st_mode):
        return None
    if area == "outbox":
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
        except OSError:
            return None
        try:
            if not looks_sealed(os.pread(fd, 64, 0)):
                return None
        finally:
            os.close(fd)
    return st


def _listable(name: str, area: str) -> bool:
    """Hidden files (our own temporaries) never show; inbox shows only held uploads."""
    if area == "outbox":
        return not name.startswith(".")
    return is_temporary_name(name) and bool(SAFE_HELD_NAME.fullmatch(name))
