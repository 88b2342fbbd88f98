"""The one place a ``gpg`` command line is built and run, and its status lines read.

Every call of gpg, whatever it does, carries the same options: never prompt
(the exchange runs unattended), never fetch a key from the network, trust
nothing but the fingerprints the exchange pins itself, C locale. Its
machine-readable status lines (``--status-fd``) come on a pipe of their own
and decide every outcome; gpg's human messages go to ``/dev/null`` unread,
since they may quote parts of a message (names, numbers) and are not meant to
be parsed.

A failure of gpg itself for a reason of the machine (a full or read-only disk,
no file descriptors left, an agent it cannot start) is recognised from the
gpg-error code of an ``ERROR``/``FAILURE`` status line (:meth:`Status.resource_failure`),
never from the text of a message.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import gnupg

from exchanged.errors import ConfigError

#: Options on every gpg call: never prompt, never fetch keys from the network, never trust
#: anything but the fingerprints pinned by the exchange (``--trust-model always``: the pin,
#: not the web of trust, decides whose signature counts).
OPTIONS = [
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

#: what python-gnupg puts before its options; the runner's own calls start the same way so
#: that a gpg call reads the same whichever of the two made it
_BASE = ["--no-tty", "--no-verbose", "--fixed-list-mode", "--batch", "--with-colons"]

#: at most this much of gpg's status lines is kept (a message's are a few hundred bytes;
#: a hostile one with thousands of signatures must not fill memory)
STATUS_LIMIT = 1 << 20

#: the bit libgpg-error sets on a code that stands for a system ``errno``
SYSTEM_ERROR = 1 << 15
#: gpg-error codes (``gpg-error.h``, libgpg-error 1.46) that mean the machine, not the
#: message: the exchange's disk or its process limits, or a gpg-agent gpg cannot start
#: (it needs a lock file in the GnuPG home to start one). Not ENOMEM: a hostile message
#: can make gpg run out of memory, and that must not stop the exchange's intake.
RESOURCE_CODES = {
    SYSTEM_ERROR | 91: "ENOSPC",  # seen: ERROR add_keyblock_resource 33587291 (full disk)
    SYSTEM_ERROR | 122: "EROFS",  # seen: ERROR add_keyblock_resource 33587322 (read-only)
    SYSTEM_ERROR | 34: "EDQUOT",
    SYSTEM_ERROR | 49: "EIO",
    SYSTEM_ERROR | 65: "EMFILE",
    SYSTEM_ERROR | 75: "ENFILE",
    77: "NO_AGENT",  # seen: FAILURE sign-encrypt 33554509 (full disk, no agent running)
}
#: the low 16 bits of a gpg-error value are its code (the high ones name its source)
_CODE_MASK = 0xFFFF

#: OpenPGP's hash algorithm ids (RFC 9580, 9.5), as VALIDSIG and ERRSIG give them
HASH_NAMES = {1: "MD5", 2: "SHA1", 3: "RIPEMD160", 8: "SHA256", 9: "SHA384", 10: "SHA512",
              11: "SHA224", 12: "SHA3-256", 14: "SHA3-512"}
#: the hashes a signature that counts may be made with: SHA-2 and SHA-3. MD5 and SHA-1
#: collisions can be made (a signed batch could be swapped for another with the same
#: hash), RIPEMD-160 is too short; anything unknown counts as weak, too
STRONG_HASHES = frozenset({8, 9, 10, 11, 12, 14})
#: ERRSIG's code when gpg has no public key for the signature (gpg-error GPG_ERR_NO_PUBKEY)
NO_PUBKEY = 9


def hash_name(algo: int) -> str:
    """A hash algorithm's name, for a reason or an error (``#<id>`` if unknown)."""
    return HASH_NAMES.get(algo, f"#{algo}")


@dataclass(frozen=True)
class ValidSig:
    """A good signature (``VALIDSIG``): its key's primary fingerprint, when it was made,
    the hash it was made with."""

    primary: str
    signed_at: int
    hash_algo: int

    @property
    def weak(self) -> bool:
        return self.hash_algo not in STRONG_HASHES


@dataclass(frozen=True)
class ErrSig:
    """A signature gpg could not check (``ERRSIG``): the key id (and, if gpg gives it, the
    fingerprint) of the key that made it, its hash, and gpg's error code."""

    key_id: str
    fingerprint: str
    hash_algo: int
    code: int

    @property
    def weak(self) -> bool:
        return self.hash_algo not in STRONG_HASHES


def _number(args: tuple[str, ...], at: int) -> int:
    return int(args[at]) if len(args) > at and args[at].isdigit() else 0


def environment() -> dict[str, str]:
    """gpg's environment: the C locale, so that what gpg writes does not vary by machine."""
    return {**os.environ, "LC_ALL": "C", "LANGUAGE": "C"}


@dataclass(frozen=True)
class Status:
    """gpg's status lines, as (keyword, arguments) pairs."""

    lines: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def parse(cls, text: str) -> Status:
        out: list[tuple[str, tuple[str, ...]]] = []
        for raw in text.splitlines():
            if raw.startswith("[GNUPG:] "):
                parts = raw[9:].split()
                if parts:
                    out.append((parts[0], tuple(parts[1:])))
        return cls(tuple(out))

    def has(self, keyword: str) -> bool:
        return any(k == keyword for k, _ in self.lines)

    def all(self, keyword: str) -> list[tuple[str, ...]]:
        return [args for k, args in self.lines if k == keyword]

    def keywords(self, *wanted: str) -> list[str]:
        """The keywords of the lines among ``wanted``, in order (for a log or an error:
        keywords carry no data of the message)."""
        return [k for k, _ in self.lines if k in wanted]

    def valid_signatures(self) -> list[ValidSig]:
        """Every good signature, in the message's order."""
        # VALIDSIG <sig-key-fpr> <date> <ts> <expire> <ver> <res> <pk-algo> <hash> <class>
        #          <primary-key-fpr>
        return [ValidSig((args[9] if len(args) >= 10 else args[0]).upper(), _number(args, 2),
                         _number(args, 7))
                for args in self.all("VALIDSIG") if args]

    def signature_errors(self) -> list[ErrSig]:
        """Every signature gpg could not check, in the message's order."""
        # ERRSIG <keyid> <pkalgo> <hashalgo> <sig_class> <time> <rc> [<fpr>]
        return [ErrSig(args[0].upper(), args[6].upper() if len(args) > 6 else "",
                       _number(args, 2), _number(args, 5))
                for args in self.all("ERRSIG") if args]

    def resource_failure(self) -> str | None:
        """The name of the machine's failure an ERROR or FAILURE line reports, if any."""
        for keyword in ("ERROR", "FAILURE"):
            for args in self.all(keyword):
                # ERROR <location> <code> [<more>], FAILURE <location> <code>
                if len(args) >= 2 and args[1].isdigit():
                    name = RESOURCE_CODES.get(int(args[1]) & _CODE_MASK)
                    if name is not None:
                        return name
        return None


@dataclass(frozen=True)
class Result:
    """A finished gpg call: what it wrote to stdout, its exit code and its status lines."""

    stdout: bytes
    returncode: int
    status: Status

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class StatusReader:
    """Reads gpg's status pipe on a thread (gpg blocks if nobody reads it)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._parts: list[bytes] = []
        self._size = 0
        self._thread = threading.Thread(target=self._run, name="gpg-status", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._stream:
            while chunk := self._stream.read(65536):
                if self._size < STATUS_LIMIT:
                    self._parts.append(chunk)
                    self._size += len(chunk)

    def status(self) -> Status:
        """The status lines, once gpg has closed its end (it exited)."""
        self._thread.join()
        return Status.parse(b"".join(self._parts).decode("utf-8", "replace"))


class Gpg:
    """gpg for one GnuPG home: every command line it runs is built here.

    ``prompt``: let gpg-agent ask a person for a key's passphrase. Only the agency's
    client (``exchanged submit``) sets it, since an agency's key may rightly be protected
    by one; the exchange's own calls never prompt.
    """

    def __init__(self, home: Path, binary: str = "gpg", *, prompt: bool = False) -> None:
        self.home = home
        self.binary = binary
        self.prompt = prompt

    def options(self) -> list[str]:
        if not self.prompt:
            return list(OPTIONS)
        at = OPTIONS.index("--pinentry-mode")
        return OPTIONS[:at] + OPTIONS[at + 2:]

    def command(self, args: Sequence[str], *, status_fd: int) -> list[str]:
        """The whole command line: gpg, where its status lines go, the home, the options
        of every call, then ``args``."""
        return [self.binary, "--status-fd", str(status_fd), *_BASE, "--homedir",
                str(self.home), *self.options(), *args]

    def spawn(self, args: Sequence[str], *, stdin: int | IO[bytes] | None,
              stdout: int | IO[bytes] | None) -> tuple[subprocess.Popen[bytes], StatusReader]:
        """Start gpg with its status lines on a pipe of their own, its human messages
        discarded; the caller waits for it and reads the status from the reader."""
        read_end, write_end = os.pipe()
        try:
            proc = subprocess.Popen(self.command(args, status_fd=write_end), stdin=stdin,
                                    stdout=stdout, stderr=subprocess.DEVNULL,
                                    pass_fds=(write_end,), env=environment())
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return proc, StatusReader(os.fdopen(read_end, "rb"))

    def run(self, args: Sequence[str], *, input: bytes | None = None,
            timeout: float | None = None) -> Result:
        """Run gpg to the end: ``input`` on its stdin, its stdout and status returned."""
        proc, reader = self.spawn(args, stdin=subprocess.PIPE if input is not None
                                  else subprocess.DEVNULL, stdout=subprocess.PIPE)
        try:
            out, _ = proc.communicate(input, timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            reader.status()
            raise
        return Result(out, proc.returncode, reader.status())

    def python_gnupg(self) -> gnupg.GPG:
        """python-gnupg on this home with the same options (key generation, listing,
        scanning and importing keys: what it parses well)."""
        # python-gnupg logs gpg's stderr at debug level and warns on every non-zero
        # exit: the exchange decides from the results and logs itself
        logging.getLogger("gnupg").setLevel(logging.CRITICAL)
        try:
            gpg = gnupg.GPG(gpgbinary=self.binary, gnupghome=str(self.home),
                            options=self.options(), env=environment())
        except (OSError, ValueError, RuntimeError) as e:
            raise ConfigError(f"gpg cannot be started: {e}") from None
        gpg.encoding = "utf-8"
        return gpg

    def stop_agent(self, component: str = "gpg-agent") -> None:
        """Stop this home's gpg-agent (gpg starts one on demand), or ``all`` its daemons."""
        try:
            subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", component],
                           check=False, capture_output=True, timeout=10, env=environment())
        except (OSError, subprocess.SubprocessError):
            pass
