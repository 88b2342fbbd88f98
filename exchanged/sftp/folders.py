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
mid-upload closes the handle from
:meth:`~exchanged.sftp.handles.ExchangeSFTPServer.finish_subsystem` instead,
and that upload is discarded and recorded, never processed.

Uploads under a temporary name (a leading dot, or ending ``.filepart``,
``.part``, ``.partial``, ``.tmp``, ``.upload``) wait in the inbox until the
client renames them to their final name, as WinSCP and many scripts do.

Each agency's inbox has a quota of bytes and files (see
:mod:`exchanged.sftp.limits`): a write that would take it over the byte
quota fails at that write, and an upload is not even opened when the agency
already has its quota of files. An agency's own settings may also bound what it
sends within a rolling period (``period_bytes``, ``period_files``): counted by
the Door from the batches received, with the uploads being written.
"""

from __future__ import annotations

import logging
import os
import stat as stat_mod
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from exchanged.home.drop import is_held
from exchanged.sftp.door import WITNESS_FOLDER, AgencyDoor, Door, GuardedDoor, Upload, WitnessDoor
from exchanged.sftp.handles import CosignatureHandle, ReadHandle, UploadHandle
from exchanged.sftp.limits import Gate
from exchanged.sftp.paths import (
    MAX_NAME_BYTES,
    Place,
    dir_attributes,
    entry,
    file_attributes,
    is_held_name,
    listable,
    looks_served,
    normalise,
    open_tree_folder,
)
from exchanged.sftp.session import Session

log = logging.getLogger("exchanged.sftp")


class DropFolders(paramiko.SFTPServerInterface):
    """The SFTP operations on one agency's virtual tree."""

    def __init__(self, server: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self.door: Door[Any] = server.door
        self.gate: Gate = server.gate
        self.guarded: GuardedDoor[Any] | None = server.guarded
        # an exchange that takes cosignatures of its checkpoints has /inbox/ledger too
        self.witness: WitnessDoor | None = (
            self.door if isinstance(self.door, WitnessDoor) else None)
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
        if area == "inbox":
            flows = self.door.inbox_flows(agency)
            return (*flows, WITNESS_FOLDER) if self.witness is not None else flows
        return self.door.outbox_flows(agency)

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
        if place.kind != "file" or not listable(place.name, place.area):
            return None
        with self._folder(place) as folder:
            if folder is None:
                return None
            return entry(folder, place.name, place.area, held=self.door.held_files())

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
        held = self.door.held_files()
        with self._folder(place) as folder:
            if folder is None:
                return []
            for name in sorted(os.listdir(folder)):
                if not listable(name, place.area):
                    continue
                st = entry(folder, name, place.area, held=held)
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

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes
             ) -> paramiko.SFTPHandle | int:
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
        if place.flow == WITNESS_FOLDER and self.witness is not None:
            # a cosignature: a few hundred bytes, taken as a whole when the file is closed
            return CosignatureHandle(self.session, self.witness, place.name)
        elsewhere = self._within_file_quota(agency)
        if elsewhere is None:
            return SFTP_FAILURE
        try:
            upload = self.door.new_upload(agency, place.flow, place.name)
        except Unavailable:
            return SFTP_FAILURE
        if is_held_name(place.name):
            # held when closed, hashed when it is renamed (Door.adopt reads it whole then):
            # hashing it as it arrives would be wasted (docs/performance.md)
            upload.forget_hash()
        limit = self.door.max_upload_bytes(agency, place.flow)
        return UploadHandle(self, upload, normalise(path), limit, elsewhere)

    def _open_outcome(self, place: Place) -> paramiko.SFTPHandle | int:
        if not listable(place.name, place.area):
            return SFTP_NO_SUCH_FILE
        with self._folder(place) as folder:
            if folder is None:
                return SFTP_NO_SUCH_FILE
            try:
                # a database the daemon holds, linked here, is never opened (is_held says why)
                if is_held(os.stat(place.name, dir_fd=folder, follow_symlinks=False),
                           self.door.held_files()):
                    return SFTP_NO_SUCH_FILE
                # O_NONBLOCK: a FIFO planted under an outcome's name must not hang the session
                fd = os.open(place.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
                             dir_fd=folder)
            except OSError:
                return SFTP_NO_SUCH_FILE
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode) or not looks_served(place.name,
                                                                     os.pread(fd, 64, 0)):
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
                          type(e).__name__, extra={"agency": agency})
                return None
        writing_bytes, writing_files = self.gate.writing(agency)
        files = held_files + queued_files + writing_files
        elsewhere = held_bytes + queued_bytes
        quota_bytes = limits.quota_bytes_of(agency)
        if (files >= limits.quota_files_of(agency)
                or elsewhere + writing_bytes >= quota_bytes):
            log.warning("%s: upload refused, its inbox is at its quota (%d files, %d bytes)",
                        agency, files, elsewhere + writing_bytes, extra={"agency": agency})
            return None
        room = self._period_room(agency, writing_bytes, writing_files)
        if room is False:
            return None
        if room is not None:
            # the handle's writes are held to quota_bytes - elsewhere: the smaller room wins
            elsewhere = max(elsewhere, quota_bytes - room)
        return elsewhere

    def _period_room(self, agency: str, writing_bytes: int, writing_files: int
                     ) -> int | None | bool:
        """The bytes the agency may still send within its rolling period (None: no limit of
        bytes), or False if it may send nothing more now."""
        settings = self.gate.limits.settings(agency)
        if settings.period_bytes is None and settings.period_files is None:
            return None
        door = self.door
        try:
            if not isinstance(door, AgencyDoor):
                raise TypeError("the Door cannot count what an agency sent")
            sent_bytes, sent_files = door.received_since(agency, settings.period_hours * 3600)
        except Exception as e:
            log.error("what %s sent cannot be counted (%s): upload refused", agency,
                      type(e).__name__)
            return False
        if (settings.period_files is not None
                and sent_files + writing_files >= settings.period_files) or (
                settings.period_bytes is not None
                and sent_bytes + writing_bytes >= settings.period_bytes):
            log.warning("%s: upload refused, it sent its quota of %d hours already (%d files, "
                        "%d bytes)", agency, settings.period_hours, sent_files, sent_bytes)
            return False
        return None if settings.period_bytes is None else settings.period_bytes - sent_bytes

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
        if is_held_name(name):
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
        if is_held_name(new.name):
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
            self.door.outcome_event(self.session.sid, self.session.agency, place.flow,
                                    place.name, "removed", st.st_size)
        return SFTP_OK

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_PERMISSION_DENIED

    def rmdir(self, path: str) -> int:
        return SFTP_PERMISSION_DENIED

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def readlink(self, path: str) -> str | int:
        return SFTP_OP_UNSUPPORTED
