"""The SFTP file handles: an upload being written, an outcome being downloaded.

An upload is handed over only when the client closes it normally (an
SSH_FXP_CLOSE); a connection that drops mid-upload closes the handle from
:meth:`ExchangeSFTPServer.finish_subsystem` instead, and that upload is
discarded and recorded, never processed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat as stat_mod
import struct
import time
from typing import TYPE_CHECKING, Any, Protocol

import paramiko
from paramiko.sftp import (
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_INIT,
    CMD_VERSION,
    CMD_WRITE,
    SFTP_BAD_MESSAGE,
    SFTP_FAILURE,
    SFTP_OK,
    SFTP_PERMISSION_DENIED,
    SFTPError,
)

from exchanged.sftp.door import Door, Upload, WitnessDoor
from exchanged.sftp.limits import Gate
from exchanged.sftp.paths import Place
from exchanged.sftp.pipe import ChunkPipe
from exchanged.sftp.session import MAX_OPEN_FILES, Session

log = logging.getLogger("exchanged.sftp")


class HandleOwner(Protocol):
    """What a handle needs of the folders that opened it
    (:class:`~exchanged.sftp.folders.DropFolders`)."""

    session: Session
    gate: Gate
    door: Door[Any]

    def finish_upload(self, handle: UploadHandle) -> None: ...


class UploadHandle(paramiko.SFTPHandle):
    """An upload being written; handed over on a normal close only."""

    def __init__(self, folders: HandleOwner, upload: Upload, path: str, limit: int,
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

    def write(self, offset: int, data: bytes | memoryview) -> int:  # type: ignore[override]
        self.folders.session.touch()
        if self.refused:
            return SFTP_FAILURE
        end = offset + len(data)
        if end > self.limit:
            self.refused = f"the upload is over the limit of {self.limit} bytes"
            return SFTP_FAILURE
        # counted before it is written: the exchange never stores a byte over the quota
        if not self.folders.gate.grow_upload(self.upload.agency, id(self), end, self.elsewhere):
            limits = self.folders.gate.limits
            agency = self.upload.agency
            self.refused = (f"the agency's inbox is over its quota of "
                            f"{limits.quota_bytes_of(agency)} bytes"
                            if limits.settings(agency).period_bytes is None else
                            "the agency is over its quota of bytes (in its inbox, or sent "
                            "within its period)")
            return SFTP_FAILURE
        try:
            self.upload.write(offset, data)
        except OSError as e:
            code = errno.errorcode.get(e.errno or 0, "error")
            self.refused = f"the exchange could not store it ({code})"
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


class CosignatureHandle(paramiko.SFTPHandle):
    """A cosignature being written: kept in memory (it is a few hundred bytes, and at most
    :data:`MAX_COSIGNATURE_BYTES`), handed over when the client closes it normally."""

    def __init__(self, session: Session, door: WitnessDoor, name: str) -> None:
        super().__init__()
        self.session = session
        self.door = door
        self.name = name
        self.data = bytearray()
        self.refused = False
        self.aborted = False
        self.closed = False

    def write(self, offset: int, data: bytes | memoryview) -> int:  # type: ignore[override]
        self.session.touch()
        end = offset + len(data)
        if self.refused or end > MAX_COSIGNATURE_BYTES:
            self.refused = True
            return SFTP_FAILURE
        if len(self.data) < end:
            self.data.extend(bytes(end - len(self.data)))
        self.data[offset:end] = data
        return SFTP_OK

    def read(self, offset: int, length: int) -> bytes | int:
        return SFTP_PERMISSION_DENIED

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.session.release_file()
        if self.aborted:
            return  # a cut connection: a cosignature is sent again at the next fetch
        try:
            self.door.cosignature(self.session.agency, self.name, bytes(self.data))
        except Exception as e:  # the exchange could not record it: the client sends it again
            log.error("a cosignature of %s could not be recorded (%s)", self.session.agency,
                      type(e).__name__)


#: a cosignature upload: a vkey line and a signature line, far below this
MAX_COSIGNATURE_BYTES = 4096


class ReadHandle(paramiko.SFTPHandle):
    """An outcome being downloaded; the session's ledger entry counts complete downloads."""

    def __init__(self, folders: HandleOwner, fd: int, place: Place, size: int) -> None:
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

    def write(self, offset: int, data: bytes | memoryview) -> int:  # type: ignore[override]
        return SFTP_PERMISSION_DENIED

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK

    def close(self) -> None:
        super().close()
        self.folders.session.release_file()
        if self.sent >= self.size:
            session = self.folders.session
            self.folders.door.outcome_event(session.sid, session.agency, self.place.flow,
                                            self.place.name, "downloaded", self.size)


#: the longest SFTP message the server takes, as OpenSSH's sftp-server (SFTP_MAX_MSG_LENGTH)
MAX_SFTP_MESSAGE = 256 * 1024
#: the most one READ or WRITE carries, as OpenSSH's sftp-server: a WRITE of it and its
#: header fit in one SSH packet of the channel (packets.MAX_PACKET_BYTES, 256 KiB)
MAX_TRANSFER = MAX_SFTP_MESSAGE - 1024
#: the SFTP protocol version paramiko speaks
SFTP_VERSION = 3
#: an SSH_FXP_WRITE after its type: the request's id and the length of its handle; after the
#: handle: the offset and the length of the data
_WRITE_HEAD = struct.Struct(">II")
_WRITE_SPAN = struct.Struct(">QI")


class ExchangeSFTPServer(paramiko.SFTPServer):
    """paramiko's SFTP server, told apart a normal close from a dropped connection, and
    telling OpenSSH's client how much one request may carry (``limits@openssh.com``)."""

    if TYPE_CHECKING:  # paramiko's own, which its type stubs do not declare
        def _read_packet(self) -> tuple[int, bytes]: ...

        def _send_packet(self, t: int, packet: paramiko.Message) -> None: ...

        def _send_status(self, request_number: int, code: int, desc: str | None = None
                         ) -> None: ...

    def start_subsystem(self, name: str, transport: paramiko.Transport,
                        channel: paramiko.Channel) -> None:
        # paramiko's loop (SFTPServer.start_subsystem), but a WRITE is served from the
        # request's own bytes: paramiko copies its data twice on the way (the request
        # without its type byte, then the data out of its Message), 255 KiB each time
        # (docs/performance.md); every other request goes to paramiko as before
        self.sock = channel
        self._send_server_version()
        self.server.session_started()
        while True:
            try:
                data = self._read_request()
            except EOFError:
                return
            except Exception as e:
                log.debug("the SFTP channel failed (%s)", type(e).__name__)
                return
            kind = data[0] if data else 0
            if kind == CMD_WRITE:
                self._write(data)
                continue
            msg = paramiko.Message(data[1:])
            request_number = msg.get_int()
            try:
                self._process(kind, request_number, msg)
            except Exception as e:
                log.debug("an SFTP request failed (%s)", type(e).__name__)
                # as paramiko: the request is answered with a failure, the session goes on
                with contextlib.suppress(Exception):
                    self._send_status(request_number, SFTP_FAILURE)

    def _read_request(self) -> bytes:
        """The next request whole, its type byte first (paramiko's ``_read_packet``
        without the copy that drops the type)."""
        head = self._read_all(4)
        if head[0]:  # as paramiko: over 16 MB is garbage, not a request
            raise SFTPError("Garbage packet received")
        return self._read_all(int.from_bytes(head, "big"))

    def _write(self, data: bytes) -> None:
        """An SSH_FXP_WRITE (``data``: the whole request): the handle writes a view of the
        request's bytes. A malformed request is answered SSH_FX_BAD_MESSAGE (paramiko would
        have padded short data with zero bytes)."""
        view = memoryview(data)
        request_number = 0
        try:
            request_number, size = _WRITE_HEAD.unpack_from(view, 1)
            handle = bytes(view[9:9 + size])
            offset, length = _WRITE_SPAN.unpack_from(view, 9 + size)
            start = 9 + size + _WRITE_SPAN.size
            chunk = view[start:start + length]
            if len(handle) != size or len(chunk) != length:
                raise ValueError("a short SSH_FXP_WRITE")
            target = self.file_table.get(handle)
            if target is None:
                self._send_status(request_number, SFTP_BAD_MESSAGE, "Invalid handle")
            else:
                self._send_status(request_number, target.write(offset, chunk))
        except (struct.error, ValueError):
            with contextlib.suppress(Exception):
                self._send_status(request_number, SFTP_BAD_MESSAGE)
        except Exception as e:
            log.debug("an SFTP write failed (%s)", type(e).__name__)
            with contextlib.suppress(Exception):
                self._send_status(request_number, SFTP_FAILURE)

    def _read_all(self, n: int) -> bytes:
        # a request is read once it is here whole (up to the longest message the client is
        # told of: far within the channel's window, so it always can come), not piece by
        # piece as each SSH packet of it arrives: one wake-up of this thread and one join
        # per request instead of eight of each for a 255 KiB write (pipe.py)
        pipe = getattr(self.sock, "in_buffer", None)
        if isinstance(pipe, ChunkPipe):
            pipe.wait_for(min(n, MAX_SFTP_MESSAGE))
        out: bytes = paramiko.SFTPServer._read_all(self, n)  # type: ignore[attr-defined]
        return out

    def _send_server_version(self) -> int:
        # paramiko's own, with limits@openssh.com added to what it advertises: an OpenSSH
        # sftp client (8.6 and later) that sees it asks for the limits and writes 255 KiB
        # per request instead of 32 KiB, so paramiko's work per request (parse, answer,
        # encrypt, send) is done an eighth as often (docs/performance.md, issue 14)
        kind, data = self._read_packet()
        if kind != CMD_INIT:
            raise SFTPError("Incompatible sftp protocol")
        version = int.from_bytes(data[:4], "big")
        msg = paramiko.Message()
        msg.add_int(SFTP_VERSION)
        msg.add("check-file", "md5,sha1", "limits@openssh.com", "1")
        self._send_packet(CMD_VERSION, msg)
        return version

    def _process(self, t: int, request_number: int, msg: paramiko.Message) -> None:
        if t == CMD_EXTENDED:
            start = msg.packet.tell()
            if msg.get_text() == "limits@openssh.com":
                self._send_limits(request_number)
                return
            msg.packet.seek(start)  # another extension: paramiko's to answer
        paramiko.SFTPServer._process(self, t, request_number, msg)  # type: ignore[attr-defined]

    def _send_limits(self, request_number: int) -> None:
        """The limits@openssh.com reply: the longest message, read and write, and how many
        files a session may hold open (OpenSSH's PROTOCOL file)."""
        msg = paramiko.Message()
        msg.add_int(request_number)
        msg.add_int64(MAX_SFTP_MESSAGE)
        msg.add_int64(MAX_TRANSFER)
        msg.add_int64(MAX_TRANSFER)
        msg.add_int64(MAX_OPEN_FILES)
        self._send_packet(CMD_EXTENDED_REPLY, msg)

    def finish_subsystem(self) -> None:
        # Handles still open when the channel ends were never closed by the
        # client: mark uploads aborted, then close each on its own, so that one
        # that cannot be recorded does not leave the others (and their files) open.
        for key, handle in list(self.file_table.items()):
            if isinstance(handle, UploadHandle | CosignatureHandle):
                handle.aborted = True
            try:
                handle.close()
            except Exception as e:
                log.error("an open file could not be closed at the end of a session (%s)",
                          type(e).__name__)
            self.file_table.pop(key, None)
        super().finish_subsystem()
