"""The agency's client: ``exchanged submit`` and ``exchanged fetch``.

One command does an agency's whole job: sign the CSV with the agency's
OpenPGP key and encrypt it to the exchange, upload it over SFTP (under a
temporary name, renamed when complete, so that a cut-off upload is never
processed), wait for the outcome, download it, check that the exchange signed
it, decrypt it and write the answer CSV — or print the reasons it was refused.

It pins what it learns on first use (trust on first use, like OpenSSH), in a
small state file (``~/.config/exchanged-client/pins.json`` unless told
otherwise): the server's SSH host key, and the exchange's OpenPGP fingerprint
(from the key file given the first time). Afterwards a different host key or
exchange key is refused, loudly, until the pin is removed by hand.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import secrets
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import paramiko

from exchanged.client.tokens import Tokenized, read_token_key, restore, tokenize
from exchanged.crypto.gpg import Status
from exchanged.crypto.keys import Keyring, create_gnupg_home
from exchanged.crypto.packets import decrypted, valid_signatures
from exchanged.crypto.streams import SealFailed
from exchanged.errors import Error, KeyProblem, Unavailable, UsageError
from exchanged.home import Listen, atomic_write
from exchanged.ids.redact import mask

OUTCOME_SUFFIXES = (".result.csv.gpg", ".rejected.json.gpg")
BATCH_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: the only names ``fetch`` writes: an outcome's, as the exchange makes them (a batch id, or
#: the exchange's own id, not starting with a dot; a replay's ``.replay-<n>``; the kind's
#: suffix). Whatever else a server lists (``../x``, ``/etc/x``, a backslash, a NUL, ``..``,
#: a name too long) is never a file name here: one path component, no more than 100 bytes
OUTCOME_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}(?:\.replay-\d{1,6})?"
                             r"(?:\.result\.csv|\.rejected\.json)\.gpg")
#: a flow's name (policy/flows.py's rule), as listed in ``/outbox``
FLOW_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")
#: the outbox folders beside the flows' that hold no outcomes
NOT_FLOWS = ("ledger", "notices")

Warn = Callable[[str], None]


class ClientError(Error):
    """Something went wrong on the agency's side or on the way (exit 2)."""


def warn_on_stderr(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def shown(name: str) -> str:
    """A name a server listed, made safe to print: printable ASCII (no terminal escapes),
    at most 80 characters, personal-looking numbers masked.

    >>> shown("../x\x1b[2J.result.csv.gpg")
    "'../x?[2J.result.csv.gpg'"
    """
    safe = mask("".join(ch if 32 <= ord(ch) < 127 else "?" for ch in name))
    return repr(safe[:80] + ("..." if len(safe) > 80 else ""))


def default_state() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "exchanged-client"


@dataclass
class Pins:
    """What the client trusts about each server, learned on first use."""

    path: Path
    data: dict[str, dict[str, str]]

    @classmethod
    def load(cls, state: Path) -> Pins:
        path = state / "pins.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except (OSError, ValueError):
            raise ClientError(f"the client's pin file {path} is damaged") from None
        return cls(path, data)

    def get(self, server: str, what: str) -> str | None:
        return self.data.get(server, {}).get(what)

    def set(self, server: str, what: str, value: str) -> None:
        self.data.setdefault(server, {})[what] = value
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(self.data, indent=2, sort_keys=True).encode())


class PinHostKey(paramiko.MissingHostKeyPolicy):
    """Trust the host key on first use, refuse any other afterwards."""

    def __init__(self, pins: Pins, server: str) -> None:
        self.pins = pins
        self.server = server

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        seen = f"{key.get_name()} {key.get_base64()}"
        pinned = self.pins.get(self.server, "host_key")
        if pinned is None:
            self.pins.set(self.server, "host_key", seen)
            return
        if pinned != seen:
            raise KeyProblem(
                f"the SSH host key of {self.server} CHANGED since it was pinned: refusing to "
                f"connect (it could be someone else). If the exchange really changed its host "
                f"key, remove {self.server} from {self.pins.path}")


@dataclass(frozen=True)
class Outcome:
    kind: str  # result | rejected
    name: str
    data: bytes


class Client:
    def __init__(self, server: str, agency: str, ssh_key: Path, *, gnupghome: Path | None,
                 state: Path, exchange_key: Path | None = None,
                 progress: IO[str] | None = None) -> None:
        self.listen = Listen.parse(server)
        self.server = str(self.listen)
        self.agency = agency
        self.ssh_key = ssh_key
        self.pins = Pins.load(state)
        self.progress = progress
        home = gnupghome or Path(os.environ.get("GNUPGHOME") or Path.home() / ".gnupg")
        if not home.is_dir():
            create_gnupg_home(home)  # as gpg does on first use
        # the agency's own home: its key may be protected by a passphrase, which gpg-agent
        # asks the person for
        self.keyring = Keyring(home, prompt=True)
        self.exchange_fpr = self._pin_exchange_key(exchange_key)
        self._ssh: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    # -- keys -------------------------------------------------------------------------------

    def _pin_exchange_key(self, key_file: Path | None) -> str:
        pinned = self.pins.get(self.server, "exchange_fingerprint")
        if key_file is not None:
            try:
                data = key_file.read_bytes()
            except OSError as e:
                raise UsageError(f"cannot read {key_file}: {e.strerror}") from None
            found = self.keyring.inspect_key_file(data)
            if len(found) != 1:
                raise KeyProblem(f"{key_file} must hold exactly one public key")
            fingerprint = found[0].fingerprint.upper()
            if pinned is not None and pinned != fingerprint:
                raise KeyProblem(
                    f"the exchange's key CHANGED: {fingerprint} is not the pinned {pinned}. "
                    f"If the exchange really rotated its key (ask its administrator), remove "
                    f"the pin for {self.server} from {self.pins.path}")
            self.keyring.import_keys(data)
            if pinned is None:
                self.pins.set(self.server, "exchange_fingerprint", fingerprint)
            return fingerprint
        if pinned is None:
            raise UsageError("the first time, give the exchange's public key with "
                             "--exchange-key (its administrator hands it over) to pin it")
        return pinned

    def _signer(self) -> str:
        keys = self.keyring.keys(secret=True)
        if len(keys) != 1:
            raise UsageError(f"the agency's GnuPG home must hold exactly one secret key "
                             f"(it holds {len(keys)}); use --gnupghome")
        return keys[0].fingerprint

    def seal(self, plaintext: Path, sealed: Path) -> None:
        try:
            # no file name inside the message: the exchange ignores it anyway
            self.keyring.seal(plaintext, sealed, recipient=self.exchange_fpr,
                              signer=self._signer(), filename="")
        except SealFailed as e:
            raise ClientError("gpg could not sign and encrypt the batch"
                              + (f" ({', '.join(e.problems)})" if e.problems else "")) from None
        except Unavailable as e:
            raise ClientError(f"the batch could not be sealed: {e}") from None
        except OSError as e:
            raise ClientError(f"cannot read {plaintext} or write {sealed}: {e.strerror}") from None

    def open(self, data: bytes) -> bytes:
        result = self.keyring.gpg.run(["--decrypt"], input=data)
        self._check_opened(result.status)
        return result.stdout

    def open_file(self, sealed: Path, plain: Path) -> None:
        """:meth:`open` of an outcome on disk into ``plain`` (a new file, 0600), streamed:
        memory does not grow with the answer. ``plain`` is removed if the outcome fails."""
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with open(sealed, "rb") as src, os.fdopen(fd, "wb") as dst:
                proc, reader = self.keyring.gpg.spawn(["--decrypt"], stdin=src, stdout=dst)
                proc.wait()
                status = reader.status()
            self._check_opened(status)
        except BaseException:
            plain.unlink(missing_ok=True)
            raise

    def _check_opened(self, status: Status) -> None:
        """An outcome is trusted only if it decrypted and the exchange's pinned key signed it."""
        if not decrypted(status):
            problems = status.keywords("NO_SECKEY", "DECRYPTION_FAILED", "NODATA", "FAILURE")
            raise ClientError("gpg could not decrypt the outcome"
                              + (f" ({', '.join(problems)})" if problems else ""))
        signatures = valid_signatures(status)
        if any(s.weak for s in signatures):
            raise KeyProblem("the outcome is signed with a weak hash algorithm (MD5, SHA-1), "
                             "which proves nothing: do not trust it")
        signers = {s.primary for s in signatures}
        if status.has("BADSIG") or signers != {self.exchange_fpr.upper()}:
            raise KeyProblem(f"the outcome is NOT signed by the exchange's pinned key "
                             f"{self.exchange_fpr}: do not trust it")

    # -- SFTP --------------------------------------------------------------------------------

    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            ssh = paramiko.SSHClient()
            ssh.set_missing_host_key_policy(PinHostKey(self.pins, self.server))
            pinned = self.pins.get(self.server, "host_key")
            if pinned is not None:
                key_type, key_data = pinned.split()
                host = (self.listen.host if self.listen.port == 22
                        else f"[{self.listen.host}]:{self.listen.port}")
                ssh.get_host_keys().add(host, key_type, paramiko.PKey.from_type_string(
                    key_type, base64.b64decode(key_data)))
            try:
                ssh.connect(self.listen.host, port=self.listen.port, username=self.agency,
                            key_filename=str(self.ssh_key), look_for_keys=False,
                            allow_agent=False, timeout=30, banner_timeout=30, auth_timeout=30)
            except paramiko.BadHostKeyException:
                raise KeyProblem(f"the SSH host key of {self.server} CHANGED since it was "
                                 "pinned: refusing to connect") from None
            except paramiko.AuthenticationException:
                raise ClientError(f"the exchange refused the login of {self.agency} with "
                                  f"{self.ssh_key}") from None
            except (OSError, paramiko.SSHException) as e:
                raise ClientError(f"cannot connect to {self.server}: {e}") from None
            self._ssh = ssh
            self._sftp = ssh.open_sftp()
        return self._sftp

    def close(self) -> None:
        if self._ssh is not None:
            self._ssh.close()
        self._ssh = self._sftp = None

    def upload(self, sealed: Path, flow: str, batch_id: str) -> None:
        sftp = self.sftp()
        final = f"/inbox/{flow}/{batch_id}.csv.gpg"
        part = final + ".part"  # processed only once renamed: a cut-off upload never is
        total = sealed.stat().st_size
        try:
            sftp.put(str(sealed), part, callback=self._bar("upload", total), confirm=False)
            sftp.posix_rename(part, final)
        except OSError as e:
            raise ClientError(f"the upload to {final} failed: {e}") from None
        self._done()

    def wait(self, flow: str, batch_id: str, timeout: float, into: Path | None = None
             ) -> Outcome:
        """The batch's outcome, once it is there: downloaded into memory, or ``into`` a file
        (then ``data`` is empty)."""
        sftp = self.sftp()
        folder = f"/outbox/{flow}"
        names = {suffix: f"{batch_id}{suffix}" for suffix in OUTCOME_SUFFIXES}
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        while True:
            try:
                present = set(sftp.listdir(folder))
            except OSError as e:
                raise ClientError(f"cannot list {folder}: {e}") from None
            for suffix, name in names.items():
                if name in present:
                    self._done()
                    kind = "result" if suffix.startswith(".result") else "rejected"
                    if into is not None:
                        self.download_to(f"{folder}/{name}", into)
                        return Outcome(kind, name, b"")
                    return Outcome(kind, name, self.download(f"{folder}/{name}"))
            if time.monotonic() > deadline:
                raise ClientError(f"no outcome for {batch_id} in {folder} after {timeout:.0f} s; "
                                  f"collect it later with 'exchanged fetch'")
            self._tick(f"waiting for the answer {time.monotonic() - started:4.0f} s")
            time.sleep(0.5)

    def download(self, remote: str) -> bytes:
        sftp = self.sftp()
        try:
            size = sftp.stat(remote).st_size or 0
            chunks: list[bytes] = []
            with sftp.open(remote, "rb") as f:
                f.prefetch(size)
                got = 0
                bar = self._bar("download", size)
                while chunk := f.read(1 << 20):
                    chunks.append(chunk)
                    got += len(chunk)
                    if bar:
                        bar(got, size)
            self._done()
            return b"".join(chunks)
        except OSError as e:
            raise ClientError(f"cannot download {remote}: {e}") from None

    def download_to(self, remote: str, local: Path) -> None:
        """:meth:`download` into a new file, a chunk at a time."""
        sftp = self.sftp()
        try:
            size = sftp.stat(remote).st_size or 0
            fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with sftp.open(remote, "rb") as f, os.fdopen(fd, "wb") as out:
                f.prefetch(size)
                bar = self._bar("download", size)
                while chunk := f.read(1 << 20):
                    out.write(chunk)
                    if bar:
                        bar(out.tell(), size)
            self._done()
        except OSError as e:
            raise ClientError(f"cannot download {remote}: {e}") from None

    def outcomes(self, flow: str | None, warn: Warn = warn_on_stderr
                 ) -> list[tuple[str, str]]:
        """The outcomes waiting, as (flow, name); a name that is not an outcome's (whatever
        a hostile or broken server lists) is left out with a warning."""
        sftp = self.sftp()
        flows = [flow] if flow else [f for f in sftp.listdir("/outbox") if f not in NOT_FLOWS]
        found = []
        for f in flows:
            if not FLOW_NAME_RE.fullmatch(f):
                warn(f"skipped /outbox/{shown(f)}: not a flow's name")
                continue
            for attr in sftp.listdir_attr(f"/outbox/{f}"):
                name = attr.filename
                if not stat.S_ISREG(attr.st_mode or 0) or not name.endswith(OUTCOME_SUFFIXES):
                    continue  # not an outcome at all (a folder, a file of another kind)
                if not OUTCOME_NAME_RE.fullmatch(name):
                    warn(f"skipped {shown(name)} in /outbox/{f}: not an outcome's name")
                    continue
                found.append((f, name))
        return sorted(found)

    def remove(self, remote: str) -> None:
        self.sftp().remove(remote)

    # -- progress ------------------------------------------------------------------------------

    def _bar(self, what: str, total: int) -> Callable[[int, int], None] | None:
        out = self.progress
        if out is None:
            return None

        def show(done: int, size: int) -> None:
            size = size or total or 1
            width = 30
            filled = int(width * done / size)
            out.write(f"\r{what} [{'#' * filled}{'.' * (width - filled)}] "
                      f"{100 * done / size:5.1f}% of {size / 1e6:.1f} MB")
            out.flush()

        return show

    def _tick(self, text: str) -> None:
        if self.progress is not None:
            self.progress.write(f"\r{text}")
            self.progress.flush()

    def _done(self) -> None:
        if self.progress is not None:
            self.progress.write("\n")
            self.progress.flush()


def default_batch_id(path: Path, now: datetime | None = None) -> str:
    """The file's name and the time, in the batch id's characters.

    >>> default_batch_id(Path("kpm minggu 4.csv"), datetime(2026, 11, 26, 3, 4, 5, tzinfo=UTC))
    'kpm-minggu-4-20261126T030405Z'
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name.removesuffix(".csv")).strip(".-") or "batch"
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stem[:46]}-{moment}"


@dataclass(frozen=True)
class Submitted:
    batch_id: str
    kind: str
    answer: Path | None
    reasons: list[dict[str, Any]]
    #: with ``--tokenize``: what tokenizing did
    tokenized: Tokenized | None = None


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def submit(client: Client, flow: str, csv_file: Path, *, batch_id: str | None,
           output: Path | None, timeout: float, wait: bool = True,
           token_key: Path | None = None) -> Submitted:
    """Seal, upload, wait, open; with ``token_key``, every NIK leaves as its keyed token and
    the answer gets the NIKs back on this machine (:mod:`exchanged.client.tokens`)."""
    if not csv_file.is_file():
        raise UsageError(f"{csv_file} is not a file")
    batch_id = batch_id or default_batch_id(csv_file)
    if not BATCH_ID_RE.fullmatch(batch_id) or batch_id.startswith("."):
        raise UsageError(f"batch id {batch_id!r} must be 1-64 characters A-Z a-z 0-9 . _ -")
    key = read_token_key(token_key) if token_key is not None else None
    if key is not None and not wait:
        raise UsageError("--tokenize waits for the answer, whose NIKs are put back on this "
                         "machine: leave out --no-wait")
    sealed = csv_file.with_name(f".{batch_id}.csv.gpg")
    tokens_file = csv_file.with_name(f".{batch_id}.tokens.csv")
    tokenized: Tokenized | None = None
    try:
        if key is not None:
            tokenized = tokenize(csv_file, tokens_file, key)
        client.seal(tokens_file if key is not None else csv_file, sealed)
        client.upload(sealed, flow, batch_id)
    finally:
        _unlink(sealed)
        _unlink(tokens_file)
    if not wait:
        return Submitted(batch_id, "uploaded", None, [])
    if key is not None:
        return _answer_with_niks(client, flow, csv_file, batch_id, output, timeout, key,
                                 tokenized)
    outcome = client.wait(flow, batch_id, timeout)
    plain = client.open(outcome.data)
    if outcome.kind == "rejected":
        body = json.loads(plain)
        return Submitted(batch_id, "rejected", None, list(body.get("reasons", [])))
    target = output or csv_file.with_name(f"{batch_id}.result.csv")
    atomic_write(target, plain, mode=0o600)
    return Submitted(batch_id, "result", target, [])


def _answer_with_niks(client: Client, flow: str, csv_file: Path, batch_id: str,
                      output: Path | None, timeout: float, key: bytes,
                      tokenized: Tokenized | None) -> Submitted:
    """A tokenized batch's outcome: downloaded, opened and given its NIKs back as streams,
    through private files beside the answer that are removed whatever happens."""
    target = output or csv_file.with_name(f"{batch_id}.result.csv")
    stem = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    sealed, plain, restored = (stem.with_suffix(s) for s in (".gpg", ".plain", ".tmp"))
    try:
        outcome = client.wait(flow, batch_id, timeout, into=sealed)
        if outcome.kind == "rejected":
            body = json.loads(client.open(sealed.read_bytes()))
            return Submitted(batch_id, "rejected", None, list(body.get("reasons", [])),
                             tokenized)
        client.open_file(sealed, plain)
        restore(plain, csv_file, restored, key)
        os.replace(restored, target)
    finally:
        for leftover in (sealed, plain, restored):
            _unlink(leftover)
    return Submitted(batch_id, "result", target, [], tokenized)


def fetch(client: Client, flow: str | None, output_dir: Path, *, remove: bool,
          warn: Warn = warn_on_stderr) -> list[tuple[str, Path]]:
    """Download, verify and decrypt every outcome waiting; returns (remote name, local file).

    Each is written as a new file of ``output_dir`` itself, never over one that is there
    (a file of an earlier fetch, or a link planted to lead elsewhere): such a name is
    skipped with a warning, and with ``remove`` left on the server."""
    output_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        folder = os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ClientError(f"cannot open {output_dir}: {e.strerror}") from None
    got = []
    try:
        for f, name in client.outcomes(flow, warn):
            plain = client.open(client.download(f"/outbox/{f}/{name}"))
            local = name.removesuffix(".gpg")
            if not write_new(folder, local, plain):
                warn(f"skipped {name}: {output_dir / local} already exists (nothing was "
                     "written over it)")
                continue
            if remove:
                client.remove(f"/outbox/{f}/{name}")
            got.append((name, output_dir / local))
    finally:
        os.close(folder)
    return got


def write_new(folder: int, name: str, data: bytes) -> bool:
    """Write ``data`` as the new file ``name`` (one component) of the open folder, whole or
    not at all; False if the name exists, as anything (a dangling link included).

    The file is written under a random hidden name (``O_EXCL | O_NOFOLLOW``) and then
    hard-linked to ``name`` (``link`` never replaces, never follows a link at the target),
    so it appears complete; where the file system has no hard links, it is created as
    ``name`` itself, ``O_EXCL | O_NOFOLLOW``.
    """
    if "/" in name or "\0" in name or name in (".", ".."):
        raise ValueError("not a single file name")
    temporary = f".{name}.{secrets.token_hex(6)}.part"
    _write_exclusive(folder, temporary, data)
    try:
        os.link(temporary, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise ClientError(f"cannot write {name}: {e.strerror}") from None
        try:
            _write_exclusive(folder, name, data)
        except FileExistsError:
            return False
    finally:
        os.unlink(temporary, dir_fd=folder)
    os.fsync(folder)
    return True


def _write_exclusive(folder: int, name: str, data: bytes) -> None:
    """A new file ``name`` of ``folder``, 0600, holding ``data``, synced; FileExistsError if
    the name exists, as anything."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(fd)
    except OSError as e:
        os.close(fd)
        os.unlink(name, dir_fd=folder)
        raise ClientError(f"cannot write {name}: {e.strerror}") from None
    os.close(fd)


def progress_stream() -> IO[str] | None:
    return sys.stderr if sys.stderr.isatty() else None

