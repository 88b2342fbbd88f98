"""Batches opened and answers sealed by gpg as streams: nothing of the plaintext on disk.

:class:`Decryption` gives a batch's plaintext as gpg decrypts it; :class:`Sealing`
takes an answer as the flow writes it and has gpg sign and encrypt it. gpg only
ever works on pipes: the exchange's own threads read the upload into gpg's
stdin and write gpg's sealed output into the destination file, so that a
failing disk is an :class:`OSError` raised where it arises (``ENOSPC``, ``EIO``)
and becomes :class:`~exchanged.errors.Unavailable` — never a message of gpg's to
recognise. Threads with bounded queues keep gpg and the exchange working at the
same time, through pipes widened to 1 MiB.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

from exchanged.crypto.deflate import Deflating
from exchanged.crypto.gpg import Gpg, Status, StatusReader
from exchanged.crypto.packets import Opened, classify_open, unusable_own_key
from exchanged.errors import Refused, RetryLater, Unavailable

#: how far above a batch's limit gpg's own --max-output is set (see decrypt_args)
MAX_OUTPUT_SLACK = 1 << 20
#: what the exchange reads of gpg's output at a time when it streams a batch
STREAM_BYTES = 1 << 20
#: chunks read ahead of the exchange from gpg's output (MiB: two blocks of rows)
READ_AHEAD = 16
#: writes (about one block of answer rows each) queued for gpg to seal
WRITE_BEHIND = 2
#: the size asked for the pipes to and from gpg
PIPE_BYTES = 1 << 20
#: how much of a sealed answer is written before it is synced to the disk
SYNC_BYTES = 4 << 20

#: errors of the exchange's own files that mean the machine, not the work: the exchange
#: stops intake and retries (the same list the pipeline applies to its own files)
RESOURCE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES,
                             errno.EMFILE, errno.ENFILE})


class SealFailed(RetryLater):
    """gpg could not sign and encrypt an outcome (not the sender's fault; retried).

    ``problems``: the keywords of gpg's status lines that said why (INV_RECP...)."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message + (f" ({', '.join(problems)})" if problems else ""))
        self.problems = tuple(problems)


def decrypt_args(max_bytes: int | None) -> list[str]:
    """``--decrypt`` (of stdin, to stdout), with an output limit if there is one.

    gpg stops writing at a 32 KiB boundary *below* its ``--max-output`` and may say so
    only when it has decompressed the whole message (minutes, for a compression bomb).
    So gpg's own limit is set 1 MiB above the batch's (more than gpg holds back in its
    buffers): a batch over its limit then yields more than the limit at once, and the
    exchange, counting what it reads, stops gpg there (:class:`Decryption`).
    """
    if not max_bytes:
        return ["--decrypt"]
    return ["--decrypt", "--max-output", str(max_bytes + 1 + MAX_OUTPUT_SLACK)]


def seal_args(recipient: str, signer: str, filename: str,
              compress_level: int | None = None) -> list[str]:
    """Sign with ``signer`` and encrypt to ``recipient``, stdin to stdout; ``filename`` is
    the name the message gives its content (none if empty); ``compress_level`` is zlib's
    level (0: not compressed; None: gpg's default, 6)."""
    named = ["--set-filename", filename] if filename else []
    level = [] if compress_level is None else ["--compress-level", str(compress_level)]
    return ["--encrypt", "--recipient", recipient, "--sign", "--default-key", signer,
            *named, *level]


def sign_args(signer: str, filename: str) -> list[str]:
    """Sign with ``signer``, not compressed (the exchange compresses: crypto/deflate)."""
    named = ["--set-filename", filename] if filename else []
    return ["--sign", "--default-key", signer, *named, "--compress-level", "0"]


def encrypt_packets_args(recipient: str) -> list[str]:
    """Encrypt to ``recipient`` what is already OpenPGP packets (a signed message,
    compressed): ``--no-literal`` puts them in the encrypted packet as they are."""
    return ["--encrypt", "--recipient", recipient, "--no-literal", "--compress-level", "0"]


def unavailable(error: OSError, what: str) -> Exception:
    """The exchange's own file failed: :class:`Unavailable` if for a reason of the machine
    (a full disk...), else the error itself (a bug or a damaged spool, not retried)."""
    if error.errno in RESOURCE_ERRNOS:
        return Unavailable(f"{what} failed: {os.strerror(error.errno or 0)}")
    return error


def remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _wide_pipe(stream: IO[bytes]) -> None:
    """A 1 MiB pipe instead of Linux's 64 KiB: gpg and the exchange then trade a
    sixteenth as many wake-ups over a large batch (ignored where it is not Linux)."""
    try:
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except OSError:
        pass


class _Copy:
    """Copies ``source`` into ``sink`` on a thread, closing both at the end: the upload
    into gpg's stdin, or gpg's sealed output into its file. An error of the exchange's
    own file (``file_is``: "source" or "sink") is kept in :attr:`error` and
    ``on_error`` called; gpg closing its end early is no error here — gpg's status says
    why it stopped."""

    def __init__(self, source: IO[bytes], sink: IO[bytes], *, name: str, file_is: str,
                 on_error: Callable[[], None] | None = None, hashed: bool = False,
                 sync_every: int = 0) -> None:
        self._source = source
        self._sink = sink
        self._file_is = file_is
        self._on_error = on_error
        self.error: OSError | None = None
        #: the SHA-256 of what was copied, if ``hashed`` (taken as it goes by)
        self.digest = hashlib.sha256() if hashed else None
        self._sync_every = sync_every
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._copy()
        finally:
            for stream in (self._sink, self._source):
                try:
                    stream.close()
                except OSError:
                    pass  # already kept, or gpg's end of a pipe that is gone

    def _copy(self) -> None:
        unsynced = 0
        while True:
            try:
                chunk = self._source.read(STREAM_BYTES)
            except OSError as e:
                self._failed(e, "source")
                return
            if not chunk:
                break
            try:
                self._sink.write(chunk)
                unsynced += len(chunk)
                if self._sync_every and unsynced >= self._sync_every:
                    self._sync()
                    unsynced = 0
            except OSError as e:
                self._failed(e, "sink")
                return
            if self.digest is not None:
                self.digest.update(chunk)
        try:
            if self._sync_every:
                self._sync()
            self._sink.close()  # the last of a file is written here: a full disk may show now
        except OSError as e:
            self._failed(e, "sink")

    def _sync(self) -> None:
        """What was written so far, to the disk: the file's fsync at the end then has only
        the last part to wait for, after the answer is complete (it was 20 ms and more of
        every 13 MB answer's wait)."""
        self._sink.flush()
        os.fdatasync(self._sink.fileno())

    def _failed(self, error: OSError, side: str) -> None:
        if side == self._file_is:
            self.error = error
            if self._on_error is not None:
                self._on_error()

    def join(self) -> None:
        self._thread.join()


class _ReadAhead:
    """Reads a pipe on a thread into a bounded queue, so that gpg keeps decrypting while
    the exchange works on what it already has (a plain read would let gpg run only a
    pipe's worth ahead, and the two would mostly take turns).

    ``on_limit`` is called as soon as more than ``limit`` bytes came out of the pipe,
    however far behind the exchange's reading is (gpg is then stopped at once)."""

    def __init__(self, stream: IO[bytes], *, chunk: int, depth: int, limit: int | None = None,
                 on_limit: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self._chunk = chunk
        self._limit = limit
        self._on_limit = on_limit
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buffer = b""
        self._done = False
        self._thread = threading.Thread(target=self._run, name="gpg-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        total = 0
        try:
            while not self._stop.is_set():
                data = self._stream.read(self._chunk)
                total += len(data)
                if self._limit is not None and total > self._limit and \
                        self._on_limit is not None:
                    self._on_limit()
                    self._on_limit = None
                self._put(data)
                if not data:
                    return
        except BaseException as e:  # handed to the reader
            self._put(e)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, size: int) -> bytes:
        """At most ``size`` bytes, from one chunk of the pipe (fewer than asked is no end:
        only b"" is). Chunks are never joined here: joining them again and again to fill a
        large read held the GIL for 70 ms of every million rows."""
        if not self._buffer and not self._done:
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if not item:
                self._done = True
            self._buffer = item
        if len(self._buffer) <= size:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _WriteBehind(io.BufferedIOBase):
    """Writes to a pipe on a thread from a bounded queue, so that the exchange works on
    the next rows while gpg compresses and encrypts the last ones.

    ``failure`` says whether the sealing has already failed for a reason of its own (the
    sealed output could not be written): a write then raises that, not a broken pipe."""

    def __init__(self, stream: IO[bytes], *, depth: int,
                 failure: Callable[[], Exception | None] | None = None) -> None:
        super().__init__()
        self._stream = stream
        self._queue: queue.Queue[ReadableBuffer | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._failure = failure
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="gpg-write-behind", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the writer learns of the error at its next write
            try:
                self._stream.write(item)
            except BaseException as e:
                self._error = e

    def _check(self) -> None:
        problem = self._failure() if self._failure is not None else None
        if problem is not None:
            raise problem
        if self._error is not None:
            raise BrokenPipeError("gpg stopped reading the answer") from self._error

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        self._check()
        view = memoryview(data)
        # what cannot change (bytes, an Arrow buffer of answer rows) is queued as it is;
        # anything else is copied first, as the caller may reuse it once this returns
        chunk: ReadableBuffer = view if view.readonly else bytes(view)
        self._queue.put(chunk)
        return view.nbytes

    def flush(self) -> None:
        if not self._closing:
            self._check()

    def close(self) -> None:
        """Wait until everything is written, then close the pipe (gpg's verdict, not this
        pipe's, says whether the answer was sealed)."""
        self._closing = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        try:
            self._stream.close()
        except BrokenPipeError:
            pass
        super().close()


class Decryption:
    """A batch being decrypted by gpg into a pipe: :meth:`read` gives the plaintext as
    gpg produces it (it never touches a disk); :meth:`finish` reads what is left, waits
    for gpg and only then says whether the batch was what it must be (the signature is
    checked at the end of the message)."""

    def __init__(self, gpg: Gpg, src: Path, *, pinned: str, exchange: str,
                 max_bytes: int | None, own_key_ids: frozenset[str] = frozenset()) -> None:
        self._pinned = pinned
        self._exchange = exchange
        self._max_bytes = max_bytes
        self._own_key_ids = own_key_ids
        self.bytes_read = 0
        try:
            source = open(src, "rb")
        except OSError as e:
            raise unavailable(e, "reading the upload") from None
        try:
            self._proc, self._status = gpg.spawn(decrypt_args(max_bytes),
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except BaseException:
            source.close()
            raise
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdout = self._proc.stdout
        _wide_pipe(self._proc.stdin)
        _wide_pipe(self._stdout)
        self._over_limit = threading.Event()
        self._feed = _Copy(source, self._proc.stdin, name="gpg-feed", file_is="source")
        self._ahead = _ReadAhead(self._stdout, chunk=STREAM_BYTES, depth=READ_AHEAD,
                                 limit=max_bytes or None, on_limit=self._limit_passed)

    def _limit_passed(self) -> None:
        """The batch decrypts to more than its limit: stop gpg now (it would otherwise
        go on decompressing the rest of a compression bomb, for minutes)."""
        self._over_limit.set()
        if self._proc.poll() is None:
            self._proc.kill()

    def read(self, size: int = -1) -> bytes:
        data = self._ahead.read(size if size and size > 0 else STREAM_BYTES)
        self.bytes_read += len(data)
        if self._max_bytes and self.bytes_read > self._max_bytes and \
                not self._over_limit.is_set():
            self._limit_passed()
        return data

    def finish(self) -> Opened:
        """Drain the plaintext, wait for gpg, decide from its status lines (Refused if bad;
        Unavailable if the exchange's disk or its gpg failed, whatever the batch)."""
        while self.read(STREAM_BYTES):
            pass
        self._proc.wait()
        self._feed.join()
        status = self._status.status()
        if self._feed.error is not None:
            raise unavailable(self._feed.error, "reading the upload") from None
        hit_limit = bool(self._max_bytes) and (
            self._over_limit.is_set() or self.bytes_read > (self._max_bytes or 0))
        try:
            opened = classify_open(status, self._pinned, exchange=self._exchange,
                                   hit_limit=hit_limit, limit=self._max_bytes)
        except Refused:
            problem = _gpg_failure(status, self._own_key_ids)
            if problem is not None:
                raise Unavailable(f"gpg could not decrypt the batch: {problem}") from None
            raise
        return Opened(opened.signer_fingerprint, opened.signed_at, self.bytes_read)

    def close(self) -> None:
        """Stop gpg if it still runs (an error cut the batch short)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._ahead.stop()
        self._stdout.close()
        self._feed.join()
        self._status.status()


def _gpg_failure(status: Status, own_key_ids: frozenset[str]) -> str | None:
    """What made gpg fail for a reason of the exchange's, not of the message, if anything."""
    problem = status.resource_failure()
    if problem is None and unusable_own_key(status, own_key_ids):
        problem = "the exchange's secret key could not be used"
    return problem


class Sealing:
    """An answer being signed and encrypted by gpg as it is written: :attr:`stream` is
    gpg's stdin, and the exchange writes gpg's output into ``dst``; :meth:`finish` closes
    the input and checks that the answer was sealed and written, :meth:`abort` stops gpg
    and removes ``dst``.

    ``deflate``: an OpenPGP compression algorithm (crypto/deflate) for the exchange to
    compress with between two gpg processes, one signing and one encrypting, instead of
    one gpg doing all three at ``compress_level``."""

    def __init__(self, gpg: Gpg, dst: Path, *, recipient: str, signer: str,
                 filename: str, compress_level: int | None = None,
                 deflate: int | None = None) -> None:
        self._dst = dst
        self._signer = signer
        try:
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise unavailable(e, "writing gpg's sealed output") from None
        sink = os.fdopen(fd, "wb")
        self._gpgs: list[tuple[subprocess.Popen[bytes], StatusReader]] = []
        try:
            if deflate is None:
                self._gpgs.append(gpg.spawn(
                    seal_args(recipient, signer, filename, compress_level),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE))
            else:
                for args in (sign_args(signer, filename), encrypt_packets_args(recipient)):
                    self._gpgs.append(gpg.spawn(args, stdin=subprocess.PIPE,
                                                stdout=subprocess.PIPE))
            first, last = self._gpgs[0][0], self._gpgs[-1][0]
            for proc, _ in self._gpgs:
                assert proc.stdin is not None and proc.stdout is not None
                _wide_pipe(proc.stdin)
                _wide_pipe(proc.stdout)
            assert first.stdin is not None and first.stdout is not None
            assert last.stdin is not None and last.stdout is not None
            # within the try: a compressor that cannot start leaves no gpg running
            self._deflating = None if deflate is None else Deflating(
                first.stdout, last.stdin, deflate, on_error=self._stop_gpg)
        except BaseException:
            self._stop_gpg()
            for proc, status in self._gpgs:
                proc.wait()
                status.status()
            sink.close()
            remove_quietly(dst)
            raise
        # the sealed answer's SHA-256 (for the ledger) taken as it is written, and the file
        # synced as it grows: neither waits for the end of the answer
        self._output = _Copy(last.stdout, sink, name="gpg-sealed-output", file_is="sink",
                             on_error=self._stop_gpg, hashed=True, sync_every=SYNC_BYTES)
        self._behind = _WriteBehind(first.stdin, depth=WRITE_BEHIND,
                                    failure=self._output_failure)
        # a file object to the flows, which write the answer as to any binary file
        self.stream = cast(IO[bytes], self._behind)

    def _stop_gpg(self) -> None:
        """The sealed answer cannot be written (or compressed): sealing the rest would be
        wasted, and a truncated answer must not be sealed."""
        for proc, _ in self._gpgs:
            if proc.poll() is None:
                proc.kill()

    def _output_failure(self) -> Exception | None:
        error = self._output.error
        return None if error is None else unavailable(error, "writing gpg's sealed output")

    def _wait(self) -> Status:
        """Wait for every part of the sealing to end; gpg's status lines, all together."""
        self._gpgs[0][0].wait()
        if self._deflating is not None:
            self._deflating.join()
        for proc, _ in self._gpgs:
            proc.wait()
        self._output.join()
        return Status(tuple(line for _, reader in self._gpgs for line in reader.status().lines))

    def finish(self) -> None:
        self._behind.close()
        status = self._wait()
        problem = self._output_failure()
        if problem is not None:
            remove_quietly(self._dst)
            raise problem
        if self._deflating is not None and self._deflating.error is not None:
            remove_quietly(self._dst)
            raise SealFailed("the answer could not be compressed") from self._deflating.error
        if not (status.has("END_ENCRYPTION") and status.has("SIG_CREATED")):
            remove_quietly(self._dst)
            failure = status.resource_failure()
            if failure is None and any(
                    len(args) >= 2 and args[0] == "9" and args[1].upper() == self._signer.upper()
                    for args in status.all("INV_SGNR")):
                # 9: "no secret key", for the exchange's own key, which it holds: its gpg
                # (agent, home) failed, as when the home is full or read-only
                failure = "the exchange's secret key could not be used"
            if failure is not None:
                raise Unavailable(f"gpg could not seal the outcome: {failure}")
            raise SealFailed("gpg could not sign and encrypt the outcome",
                             status.keywords("INV_RECP", "INV_SGNR", "FAILURE"))

    def sha256(self) -> str:
        """The sealed answer's SHA-256 (hex), once :meth:`finish` has returned."""
        assert self._output.digest is not None
        return self._output.digest.hexdigest()

    def abort(self) -> None:
        self._stop_gpg()
        self._behind.close()
        self._stop_gpg()
        self._wait()
        remove_quietly(self._dst)
