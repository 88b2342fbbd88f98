"""OpenPGP through the real ``gpg``: the exchange's keys, opening batches, sealing answers.

The exchange has its own GnuPG home (``HOME/keys/gnupg``, 0700) holding its key
pair and the agencies' public keys. An agency is bound to one pinned primary
key fingerprint; the web of trust plays no part: a batch is accepted only if
it is encrypted to the exchange *and* carries a good signature whose primary
key fingerprint is the uploading agency's pinned one.

``gpg``'s machine-readable status lines (``--status-fd``) decide every
outcome; its human messages are never shown to anyone, since they may quote
parts of the message.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

import gnupg

from exchanged.errors import ConfigError, KeyProblem, Refused, RetryLater, Unavailable
from exchanged.reasons import reason

# Options on every gpg call: never prompt, never fetch keys from the network,
# never trust anything but the fingerprints we pin ourselves.
GPG_OPTIONS = [
    "--pinentry-mode",
    "error",
    "--no-auto-key-retrieve",
    "--no-auto-key-locate",
    "--keyid-format",
    "long",
    "--no-emit-version",
    "--no-comments",
    "--no-greeting",
    "--trust-model",
    "always",
]


#: how far above a batch's limit gpg's own --max-output is set (see decrypt_args)
MAX_OUTPUT_SLACK = 1 << 20

# what gpg says (LC_ALL=C) when a message decrypts to more than --max-output: it stops
# writing at a 32 KiB boundary *below* the limit, so only this says the limit was passed
MAX_OUTPUT_MESSAGE = b"exceeded --max-output limit"

# gpg's messages for a failure of the exchange's own disk (gpg runs with LC_ALL=C)
RESOURCE_MESSAGES = ("No space left on device", "Disk quota exceeded", "Input/output error",
                     "Read-only file system", "Too many open files")


class SealFailed(RetryLater):
    """gpg could not sign and encrypt an outcome (not the sender's fault; retried)."""


#: what the exchange reads of gpg's output at a time when it streams a batch
STREAM_BYTES = 1 << 20
#: chunks read ahead of the exchange from gpg's output (MiB: two blocks of rows)
READ_AHEAD = 16
#: writes (about one block of answer rows each) queued for gpg to seal
WRITE_BEHIND = 2
#: the size asked for the pipes to and from gpg
PIPE_BYTES = 1 << 20
#: at most this much of gpg's stderr is kept (status lines are a few hundred bytes)
STDERR_LIMIT = 1 << 20


def gpg_command(gnupghome: Path, gpg_binary: str = "gpg") -> list[str]:
    """The start of every gpg command line: python-gnupg's options, then ours."""
    return [gpg_binary, "--status-fd", "2", "--no-tty", "--no-verbose", "--fixed-list-mode",
            "--batch", "--with-colons", "--homedir", str(gnupghome), *GPG_OPTIONS]


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


def seal_args(recipient: str, signer: str, filename: str, output: Path) -> list[str]:
    """Sign with ``signer`` and encrypt to ``recipient`` (stdin to ``output``)."""
    return ["--encrypt", "--recipient", recipient, "--yes", "--output", str(output),
            "--sign", "--default-key", signer, "--set-filename", filename]


def _wide_pipe(stream: IO[bytes]) -> None:
    """A 1 MiB pipe instead of Linux's 64 KiB: gpg and the exchange then trade a
    sixteenth as many wake-ups over a large batch (ignored where it is not Linux)."""
    try:
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except OSError:
        pass


def _gpg_env() -> dict[str, str]:
    # C locale: gpg's few messages we read (a full disk) are then in English
    return {**os.environ, "LC_ALL": "C", "LANGUAGE": "C"}


class _Stderr:
    """Collects a process's stderr on a thread (gpg blocks if nobody reads it); calls
    ``on_limit`` as soon as gpg says it passed ``--max-output``."""

    def __init__(self, stream: IO[bytes], on_limit: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self._parts: list[bytes] = []
        self._size = 0
        self._on_limit = on_limit
        self._thread = threading.Thread(target=self._run, name="gpg-stderr", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tail = b""
        while chunk := self._stream.read(65536):
            if self._size < STDERR_LIMIT:
                self._parts.append(chunk)
                self._size += len(chunk)
            if self._on_limit is not None and MAX_OUTPUT_MESSAGE in tail + chunk:
                self._on_limit()
                self._on_limit = None
            tail = chunk[-len(MAX_OUTPUT_MESSAGE):]

    def text(self) -> str:
        self._thread.join()
        return b"".join(self._parts).decode("utf-8", "replace")


class _ReadAhead:
    """Reads a pipe on a thread into a bounded queue, so that gpg keeps decrypting while
    the exchange works on what it already has (a plain read would let gpg run only a
    pipe's worth ahead, and the two would mostly take turns)."""

    def __init__(self, stream: IO[bytes], *, chunk: int, depth: int) -> None:
        self._stream = stream
        self._chunk = chunk
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buffer = b""
        self._done = False
        self._thread = threading.Thread(target=self._run, name="gpg-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._stream.read(self._chunk)
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
        while len(self._buffer) < size and not self._done:
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if not item:
                self._done = True
                break
            self._buffer = self._buffer + item if self._buffer else item
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _WriteBehind(io.BufferedIOBase):
    """Writes to a pipe on a thread from a bounded queue, so that the exchange works on
    the next rows while gpg compresses and encrypts the last ones."""

    def __init__(self, stream: IO[bytes], *, depth: int) -> None:
        super().__init__()
        self._stream = stream
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
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

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        if self._error is not None:
            raise BrokenPipeError("gpg stopped reading the answer") from self._error
        chunk = bytes(data)
        self._queue.put(chunk)
        return len(chunk)

    def flush(self) -> None:
        if self._error is not None and not self._closing:
            raise BrokenPipeError("gpg stopped reading the answer") from self._error

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
    """A batch being decrypted by gpg into a pipe: :attr:`stream` gives the plaintext as
    gpg produces it (it never touches a disk); :meth:`finish` reads what is left, waits
    for gpg and only then says whether the batch was what it must be (the signature is
    checked at the end of the message)."""

    def __init__(self, command: list[str], src: Path, *, pinned: str, exchange: str,
                 max_bytes: int | None) -> None:
        self._pinned = pinned
        self._exchange = exchange
        self._max_bytes = max_bytes
        self.bytes_read = 0
        with open(src, "rb") as source:
            self._proc = subprocess.Popen(command, stdin=source, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, env=_gpg_env())
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._stdout = self._proc.stdout
        _wide_pipe(self._stdout)
        self._over_limit = threading.Event()
        self._stderr = _Stderr(self._proc.stderr, on_limit=self._limit_passed)
        self._ahead = _ReadAhead(self._stdout, chunk=STREAM_BYTES, depth=READ_AHEAD)

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
        """Drain the plaintext, wait for gpg, decide from its status lines (Refused if bad)."""
        while self.read(STREAM_BYTES):
            pass
        self._proc.wait()
        stderr = self._stderr.text()
        problem = _resource_failure(stderr)
        if problem is not None:
            raise Unavailable(f"gpg could not decrypt the batch: {problem}")
        status = Status.parse(stderr)
        hit_limit = bool(self._max_bytes) and (
            self._over_limit.is_set() or self.bytes_read > (self._max_bytes or 0))
        opened = classify_open(status, self._pinned, exchange=self._exchange,
                               hit_limit=hit_limit, limit=self._max_bytes)
        return Opened(opened.signer_fingerprint, opened.signed_at, self.bytes_read)

    def close(self) -> None:
        """Stop gpg if it still runs (an error cut the batch short)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._ahead.stop()
        self._stdout.close()
        self._stderr.text()


class Sealing:
    """An answer being signed and encrypted by gpg as it is written: :attr:`stream` is
    gpg's stdin, ``dst`` its output file; :meth:`finish` closes the input and checks that
    gpg sealed it, :meth:`abort` stops gpg and removes ``dst``."""

    def __init__(self, command: list[str], dst: Path) -> None:
        self._dst = dst
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, env=_gpg_env())
        assert self._proc.stdin is not None and self._proc.stderr is not None
        _wide_pipe(self._proc.stdin)
        self._behind = _WriteBehind(self._proc.stdin, depth=WRITE_BEHIND)
        # a file object to the flows, which write the answer as to any binary file
        self.stream = cast(IO[bytes], self._behind)
        self._stderr = _Stderr(self._proc.stderr)

    def finish(self) -> None:
        self._behind.close()
        self._proc.wait()
        _check_sealed(self._stderr.text(), self._dst)

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._behind.close()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._stderr.text()
        remove_quietly(self._dst)


def _check_sealed(stderr: str, dst: Path) -> None:
    status = Status.parse(stderr)
    if not (status.has("END_ENCRYPTION") and status.has("SIG_CREATED")):
        remove_quietly(dst)
        problem = _resource_failure(stderr)
        if problem is not None:
            raise Unavailable(f"gpg could not write the outcome: {problem}")
        problems = [k for k, _ in status.lines if k in ("INV_RECP", "INV_SGNR", "FAILURE")]
        raise SealFailed(
            "gpg could not sign and encrypt the outcome"
            + (f" ({', '.join(problems)})" if problems else "")
        )


def _resource_failure(stderr: str) -> str | None:
    for message in RESOURCE_MESSAGES:
        if message in stderr:
            return message
    return None


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    uids: tuple[str, ...]
    created: int
    expires: int | None
    can_sign: bool
    can_encrypt: bool
    revoked: bool
    expired: bool
    secret: bool = False


@dataclass(frozen=True)
class Opened:
    """What opening a batch proved."""

    signer_fingerprint: str
    signed_at: int
    plaintext_bytes: int


@dataclass(frozen=True)
class Status:
    """gpg's status lines, as (keyword, arguments) pairs."""

    lines: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def parse(cls, stderr: str) -> Status:
        out: list[tuple[str, tuple[str, ...]]] = []
        for raw in stderr.splitlines():
            if raw.startswith("[GNUPG:] "):
                parts = raw[9:].split()
                if parts:
                    out.append((parts[0], tuple(parts[1:])))
        return cls(tuple(out))

    def has(self, keyword: str) -> bool:
        return any(k == keyword for k, _ in self.lines)

    def all(self, keyword: str) -> list[tuple[str, ...]]:
        return [args for k, args in self.lines if k == keyword]


def classify_open(
    status: Status, pinned: str, *, exchange: str, hit_limit: bool, limit: int | None
) -> Opened:
    """Decide from gpg's status lines whether a batch opened as it must; else raise Refused."""
    encrypted = status.has("ENC_TO") or status.has("BEGIN_DECRYPTION")
    if not encrypted:
        if status.has("PLAINTEXT") or status.has("NEWSIG"):
            raise Refused(reason("NOT_ENCRYPTED"))
        raise Refused(reason("NOT_OPENPGP"))
    if status.has("NEED_PASSPHRASE_SYM") or not status.has("DECRYPTION_KEY"):
        raise Refused(reason("NOT_ENCRYPTED_TO_EXCHANGE", fingerprint=exchange))
    if hit_limit and limit is not None:
        raise Refused(reason("TOO_LARGE_DECRYPTED", limit=limit))
    if (
        status.has("DECRYPTION_FAILED")
        or not status.has("DECRYPTION_OKAY")
        or not status.has("END_DECRYPTION")
        # exactly one literal: no unsigned data beside the signed
        or len(status.all("PLAINTEXT")) != 1
    ):
        raise Refused(reason("CORRUPT_MESSAGE"))
    if status.has("BADSIG"):
        raise Refused(reason("BAD_SIGNATURE"))
    if not status.has("NEWSIG"):
        raise Refused(reason("NOT_SIGNED", fingerprint=pinned))
    for signature in _signatures(status):
        valid = signature.all("VALIDSIG")
        primary, signed_at = "", 0
        if valid:
            # VALIDSIG <sig-key-fpr> <date> <ts> <expire> <ver> <res> <pk-algo> <hash> <class>
            #          <primary-key-fpr>
            args = valid[0]
            primary = (args[9] if len(args) >= 10 else args[0]).upper()
            signed_at = int(args[2]) if len(args) > 2 and args[2].isdigit() else 0
            by_pinned = primary == pinned.upper()
        else:
            # no VALIDSIG: only the key id of EXPKEYSIG/REVKEYSIG names the signer
            by_pinned = any(pinned.upper().endswith(key[0].upper())
                            for k in ("EXPKEYSIG", "REVKEYSIG") for key in signature.all(k)
                            if key and len(key[0]) >= 16)
        if not by_pinned:
            # another key's state (an old key of the agency, revoked after a new one was
            # pinned) says nothing about the pinned key: that signer is simply not it
            continue
        if signature.has("EXPKEYSIG"):
            raise Refused(reason("SIGNER_KEY_EXPIRED"))
        if signature.has("REVKEYSIG"):
            raise Refused(reason("SIGNER_KEY_REVOKED"))
        if primary:
            return Opened(primary, signed_at, 0)
    raise Refused(reason("WRONG_SIGNER", fingerprint=pinned))


def _signatures(status: Status) -> list[Status]:
    """The status lines of each signature: from one NEWSIG to the next (gpg reports a
    message's signatures one after the other, each opened by NEWSIG)."""
    groups: list[list[tuple[str, tuple[str, ...]]]] = []
    for line in status.lines:
        if line[0] == "NEWSIG":
            groups.append([])
        if groups:
            groups[-1].append(line)
    return [Status(tuple(group)) for group in groups]


class OpenPGP:
    """The exchange's GnuPG home."""

    def __init__(self, gnupghome: Path, gpg_binary: str = "gpg") -> None:
        self.home = gnupghome
        self._binary = gpg_binary
        # python-gnupg logs gpg's stderr at debug level and warns on every
        # non-zero exit: we decide from status lines and log ourselves.
        logging.getLogger("gnupg").setLevel(logging.CRITICAL)
        if not gnupghome.is_dir():
            raise ConfigError(f"the exchange's GnuPG home {gnupghome} is missing")
        # C locale: gpg's few messages we read (a full disk) are then in English
        env = {**os.environ, "LC_ALL": "C", "LANGUAGE": "C"}
        try:
            self._gpg = gnupg.GPG(
                gpgbinary=gpg_binary, gnupghome=str(gnupghome), options=list(GPG_OPTIONS),
                env=env,
            )
        except (OSError, ValueError, RuntimeError) as e:
            raise ConfigError(f"gpg cannot be started: {e}") from None
        self._gpg.encoding = "utf-8"

    # -- keys ------------------------------------------------------------------------------

    def generate_exchange_key(self, name: str, email: str, expire: str = "3y") -> str:
        """Create the exchange's key pair: Ed25519 signing, Curve25519 encryption."""
        spec = self._gpg.gen_key_input(
            key_type="EDDSA",
            key_curve="ed25519",
            key_usage="sign",
            subkey_type="ECDH",
            subkey_curve="cv25519",
            subkey_usage="encrypt",
            name_real=name,
            name_comment="exchanged",
            name_email=email,
            expire_date=expire,
            no_protection=True,
        )
        result = self._gpg.gen_key(spec)
        if not result.fingerprint:
            raise KeyProblem("gpg could not create the exchange's key pair")
        return str(result.fingerprint)

    def keys(self, secret: bool = False) -> list[KeyInfo]:
        out = []
        for k in self._gpg.list_keys(secret=secret):
            caps = str(k.get("cap", ""))
            trust = str(k.get("trust", ""))
            expires = int(k["expires"]) if k.get("expires") else None
            out.append(
                KeyInfo(
                    fingerprint=str(k["fingerprint"]),
                    uids=tuple(str(u) for u in k.get("uids", [])),
                    created=int(k.get("date") or 0),
                    expires=expires,
                    can_sign="S" in caps,
                    can_encrypt="E" in caps,
                    revoked=trust == "r",
                    expired=trust == "e",
                    secret=secret,
                )
            )
        return out

    def key(self, fingerprint: str) -> KeyInfo | None:
        for k in self.keys():
            if k.fingerprint.upper() == fingerprint.upper():
                return k
        return None

    def exchange_fingerprint(self) -> str:
        secret = self.keys(secret=True)
        if len(secret) != 1:
            raise ConfigError(
                f"the exchange's GnuPG home must hold exactly one secret key (it holds {len(secret)})"
            )
        return secret[0].fingerprint

    def export_public(self, fingerprint: str) -> str:
        data = self._gpg.export_keys(fingerprint, armor=True, minimal=True)
        if not data:
            raise KeyProblem(f"no public key {fingerprint} to export")
        return str(data)

    def inspect_key_file(self, data: bytes) -> list[KeyInfo]:
        """The keys an armored or binary key file holds, without importing them."""
        result = self._gpg.scan_keys_mem(data)
        infos = []
        for k in result:
            caps = str(k.get("cap", ""))
            infos.append(
                KeyInfo(
                    fingerprint=str(k.get("fingerprint", "")),
                    uids=tuple(str(u) for u in k.get("uids", [])),
                    created=int(k.get("date") or 0),
                    expires=int(k["expires"]) if k.get("expires") else None,
                    can_sign="S" in caps.upper(),
                    can_encrypt="E" in caps.upper(),
                    revoked=str(k.get("trust", "")) == "r",
                    expired=str(k.get("trust", "")) == "e",
                    secret=str(k.get("type", "")) == "sec",
                )
            )
        return infos

    def import_agency_key(self, data: bytes, *, refresh_of: str | None = None) -> KeyInfo:
        """Import one agency public key, refusing secret keys and unusable keys.

        ``refresh_of``: the key already pinned; a new copy of it (a revocation, a new
        expiry date) is imported even if it makes the key unusable — that is its point.
        """
        if b"PRIVATE KEY BLOCK" in data:
            raise KeyProblem("the key file holds a secret key; give the agency's public key only")
        found = self.inspect_key_file(data)
        if len(found) != 1:
            raise KeyProblem(f"the key file must hold exactly one public key (it holds {len(found)})")
        if found[0].secret:
            raise KeyProblem("the key file holds a secret key; give the agency's public key only")
        result = self._gpg.import_keys(data)
        fingerprints = [str(f) for f in (result.fingerprints or [])]
        if not fingerprints:
            raise KeyProblem("gpg could not import the key")
        info = self.key(fingerprints[0])
        if info is None:
            raise KeyProblem("gpg could not import the key")
        if refresh_of is not None and info.fingerprint.upper() == refresh_of.upper():
            return info
        if info.revoked:
            raise KeyProblem(f"key {info.fingerprint} is revoked")
        if info.expired:
            raise KeyProblem(f"key {info.fingerprint} has expired")
        if not (info.can_sign and info.can_encrypt):
            raise KeyProblem(
                f"key {info.fingerprint} must be able to sign and to receive encrypted data"
            )
        return info

    # -- batches ---------------------------------------------------------------------------

    def open(
        self, src: Path, dst: Path, *, pinned: str, exchange: str, max_bytes: int | None = None
    ) -> Opened:
        """Decrypt ``src`` into ``dst`` and verify it was signed by ``pinned``.

        On any failure ``dst`` is removed (it may hold partial plaintext) and
        :class:`Refused` says why.
        """
        if src.stat().st_size == 0:
            raise Refused(reason("EMPTY_UPLOAD"))
        extra = ["--max-output", str(max_bytes + 1)] if max_bytes else []
        try:
            result = self._gpg.decrypt_file(str(src), output=str(dst), extra_args=extra)
            stderr = str(getattr(result, "stderr", ""))
            problem = _resource_failure(stderr)
            if problem is not None:
                raise Unavailable(f"gpg could not write the plaintext: {problem}")
            status = Status.parse(stderr)
            size = dst.stat().st_size if dst.exists() else 0
            hit_limit = bool(max_bytes) and (size > (max_bytes or 0)
                                             or MAX_OUTPUT_MESSAGE.decode() in stderr)
            opened = classify_open(
                status, pinned, exchange=exchange, hit_limit=hit_limit, limit=max_bytes
            )
        except BaseException:
            remove_quietly(dst)
            raise
        return Opened(opened.signer_fingerprint, opened.signed_at, size)

    def decrypting(self, src: Path, *, pinned: str, exchange: str,
                   max_bytes: int | None = None) -> Decryption:
        """Start decrypting ``src`` into a pipe (see :class:`Decryption`); the caller
        closes it. An empty upload is refused at once."""
        if src.stat().st_size == 0:
            raise Refused(reason("EMPTY_UPLOAD"))
        command = gpg_command(self.home, self._binary) + decrypt_args(max_bytes)
        return Decryption(command, src, pinned=pinned, exchange=exchange, max_bytes=max_bytes)

    def sealing(self, dst: Path, *, recipient: str, signer: str, filename: str) -> Sealing:
        """Start sealing an answer written to a pipe into ``dst`` (see :class:`Sealing`)."""
        command = gpg_command(self.home, self._binary) + seal_args(recipient, signer, filename,
                                                                  dst)
        return Sealing(command, dst)

    def seal(self, src: Path, dst: Path, *, recipient: str, signer: str, filename: str) -> None:
        """Sign with the exchange's key and encrypt to ``recipient``, into ``dst``."""
        result = self._gpg.encrypt_file(
            str(src),
            recipients=[recipient],
            sign=signer,
            armor=False,
            output=str(dst),
            extra_args=["--set-filename", filename],
        )
        _check_sealed(str(getattr(result, "stderr", "")), dst)

    def stop_agent(self) -> None:
        """Stop this home's gpg-agent (started on demand by gpg)."""
        try:
            subprocess.run(
                ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
                check=False,
                capture_output=True,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            pass


def create_gnupg_home(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def fingerprints(keys: Iterable[KeyInfo]) -> list[str]:
    return [k.fingerprint for k in keys]
