"""An agency's SFTP view: ``/inbox/<flow>/`` to upload, ``/outbox/<flow>/`` to collect outcomes.

Nothing else exists for it: paths are resolved against a virtual root (``..``
stops at ``/``), only the flows its agreements let it use appear, symbolic
links are neither followed nor created, and every file is opened with
``O_NOFOLLOW``.

An upload is written to a hidden spool file and handed to processing only
when the client closes it normally (an SSH_FXP_CLOSE). A connection that drops
mid-upload closes the handle from :meth:`ExchangeSFTPServer.finish_subsystem`
instead, and that upload is discarded and recorded, never processed.

Uploads under a temporary name (a leading dot, or ending ``.filepart``,
``.part``, ``.partial``, ``.tmp``, ``.upload``) wait in the inbox until the
client renames them to their final name, as WinSCP and many scripts do.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat as stat_mod
import threading
import time
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

from exchanged.errors import ExchangeUnavailable
from exchanged.sftp.door import Door
from exchanged.spool import Upload

log = logging.getLogger("exchanged.sftp")

TEMPORARY_SUFFIXES = (".filepart", ".part", ".partial", ".tmp", ".upload")
#: files one session may hold open at once (each is a file descriptor here)
MAX_OPEN_FILES = 32
SAFE_HELD_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")
MAX_NAME_BYTES = 1024


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

    def take_file(self) -> bool:
        with self.lock:
            if self.open_files >= MAX_OPEN_FILES:
                return False
            self.open_files += 1
            return True

    def release_file(self) -> None:
        with self.lock:
            self.open_files = max(0, self.open_files - 1)


@dataclass(frozen=True)
class Place:
    """What a normalised path names in the agency's tree."""

    kind: str  # root | area | flow | file | none
    area: str = ""
    flow: str = ""
    name: str = ""


class UploadHandle(paramiko.SFTPHandle):
    """An upload being written; handed over on a normal close only."""

    def __init__(self, folders: DropFolders, upload: Upload, path: str, limit: int) -> None:
        super().__init__()
        self.folders = folders
        self.upload = upload
        self.path = path
        self.limit = limit
        self.aborted = False
        self.refused: str | None = None
        self.closed = False

    def write(self, offset: int, data: bytes) -> int:  # type: ignore[override]
        if self.refused:
            return SFTP_FAILURE
        if offset + len(data) > self.limit:
            self.refused = f"the upload is over the limit of {self.limit} bytes"
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
        # client: mark uploads aborted before paramiko closes them.
        for handle in list(self.file_table.values()):
            if isinstance(handle, UploadHandle):
                handle.aborted = True
        super().finish_subsystem()


class DropFolders(paramiko.SFTPServerInterface):
    """The SFTP operations on one agency's virtual tree."""

    def __init__(self, server: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self.door: Door = server.door
        session = server.session
        assert isinstance(session, Session), "sftp before authentication"
        self.session: Session = session

    # -- resolving -----------------------------------------------------------------------------

    def _place(self, path: str) -> Place:
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

    def _file_stat(self, place: Place) -> os.stat_result | None:
        """lstat of a listed file: regular files only, never through a link."""
        if place.kind != "file" or not _listable(place.name, place.area):
            return None
        try:
            st = os.lstat(self._disk(place) / place.name)
        except (OSError, ValueError):
            return None
        return st if stat_mod.S_ISREG(st.st_mode) else None

    # -- SFTP operations -----------------------------------------------------------------------

    def canonicalize(self, path: str) -> str:
        return normalise(path)

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        place = self._place(path)
        if place.kind == "root":
            return [dir_attributes("inbox"), dir_attributes("outbox")]
        if place.kind == "area":
            return [dir_attributes(f) for f in self._flows(place.area)]
        if place.kind != "flow":
            return SFTP_NO_SUCH_FILE
        folder = self._disk(place)
        out = []
        try:
            entries = sorted(os.listdir(folder))
        except FileNotFoundError:
            return []
        for name in entries:
            if not _listable(name, place.area):
                continue
            try:
                st = os.lstat(folder / name)
            except OSError:
                continue
            if stat_mod.S_ISREG(st.st_mode):
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
            if self._file_stat(place) is None:
                return SFTP_NO_SUCH_FILE
            try:
                fd = os.open(self._disk(place) / place.name, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                return SFTP_NO_SUCH_FILE
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                os.close(fd)
                return SFTP_NO_SUCH_FILE
            return ReadHandle(self, fd, place, st.st_size)
        if not writing:
            return SFTP_PERMISSION_DENIED  # the inbox is write-only
        agency = self.session.agency
        try:
            upload = self.door.new_upload(agency, place.flow, place.name)
        except ExchangeUnavailable:
            return SFTP_FAILURE
        limit = self.door.max_upload_bytes(agency, place.flow)
        return UploadHandle(self, upload, normalise(path), limit)

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
            os.replace(held, self._disk(new) / new.name)
            return SFTP_OK
        try:
            upload = self.door.adopt(self.session.agency, new.flow, held, new.name)
        except ExchangeUnavailable:
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
        try:
            os.unlink(self._disk(place) / place.name)
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


def _listable(name: str, area: str) -> bool:
    """Hidden files (our own temporaries) never show; inbox shows only held uploads."""
    if area == "outbox":
        return not name.startswith(".")
    return is_temporary_name(name) and bool(SAFE_HELD_NAME.fullmatch(name))
