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

import logging
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import gnupg

from exchanged.errors import ConfigError, ExchangeUnavailable, KeyProblem, Rejected
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


# gpg's messages for a failure of the exchange's own disk (gpg runs with LC_ALL=C)
RESOURCE_MESSAGES = ("No space left on device", "Disk quota exceeded", "Input/output error",
                     "Read-only file system", "Too many open files")


class SealFailed(Exception):
    """gpg could not sign and encrypt an outcome (not the sender's fault; retried)."""


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
    """Decide from gpg's status lines whether a batch opened as it must; else raise Rejected."""
    encrypted = status.has("ENC_TO") or status.has("BEGIN_DECRYPTION")
    if not encrypted:
        if status.has("PLAINTEXT") or status.has("NEWSIG"):
            raise Rejected(reason("NOT_ENCRYPTED"))
        raise Rejected(reason("NOT_OPENPGP"))
    if status.has("NEED_PASSPHRASE_SYM") or not status.has("DECRYPTION_KEY"):
        raise Rejected(reason("NOT_ENCRYPTED_TO_EXCHANGE", fingerprint=exchange))
    if hit_limit and limit is not None:
        raise Rejected(reason("TOO_LARGE_DECRYPTED", limit=limit))
    if (
        status.has("DECRYPTION_FAILED")
        or not status.has("DECRYPTION_OKAY")
        or not status.has("END_DECRYPTION")
        # exactly one literal: no unsigned data beside the signed
        or len(status.all("PLAINTEXT")) != 1
    ):
        raise Rejected(reason("CORRUPT_MESSAGE"))
    if status.has("BADSIG"):
        raise Rejected(reason("BAD_SIGNATURE"))
    if not status.has("NEWSIG"):
        raise Rejected(reason("NOT_SIGNED", fingerprint=pinned))
    for args in status.all("VALIDSIG"):
        # VALIDSIG <sig-key-fpr> <date> <ts> <expire> <ver> <res> <pk-algo> <hash> <class>
        #          <primary-key-fpr>
        primary = args[9] if len(args) >= 10 else args[0]
        if primary.upper() == pinned.upper():
            if status.has("EXPKEYSIG"):
                raise Rejected(reason("SIGNER_KEY_EXPIRED"))
            if status.has("REVKEYSIG"):
                raise Rejected(reason("SIGNER_KEY_REVOKED"))
            return Opened(primary.upper(), int(args[2]) if args[2].isdigit() else 0, 0)
    if status.has("EXPKEYSIG"):
        raise Rejected(reason("SIGNER_KEY_EXPIRED"))
    if status.has("REVKEYSIG"):
        raise Rejected(reason("SIGNER_KEY_REVOKED"))
    raise Rejected(reason("WRONG_SIGNER", fingerprint=pinned))


class OpenPGP:
    """The exchange's GnuPG home."""

    def __init__(self, gnupghome: Path, gpg_binary: str = "gpg") -> None:
        self.home = gnupghome
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
        :class:`Rejected` says why.
        """
        if src.stat().st_size == 0:
            raise Rejected(reason("EMPTY_UPLOAD"))
        extra = ["--max-output", str(max_bytes + 1)] if max_bytes else []
        try:
            result = self._gpg.decrypt_file(str(src), output=str(dst), extra_args=extra)
            stderr = str(getattr(result, "stderr", ""))
            problem = _resource_failure(stderr)
            if problem is not None:
                raise ExchangeUnavailable(f"gpg could not write the plaintext: {problem}")
            status = Status.parse(stderr)
            size = dst.stat().st_size if dst.exists() else 0
            # gpg stops writing one byte past the limit
            hit_limit = bool(max_bytes) and size > (max_bytes or 0)
            opened = classify_open(
                status, pinned, exchange=exchange, hit_limit=hit_limit, limit=max_bytes
            )
        except BaseException:
            remove_quietly(dst)
            raise
        return Opened(opened.signer_fingerprint, opened.signed_at, size)

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
        stderr = str(getattr(result, "stderr", ""))
        status = Status.parse(stderr)
        if not (status.has("END_ENCRYPTION") and status.has("SIG_CREATED")):
            remove_quietly(dst)
            problem = _resource_failure(stderr)
            if problem is not None:
                raise ExchangeUnavailable(f"gpg could not write the outcome: {problem}")
            problems = [k for k, _ in status.lines if k in ("INV_RECP", "INV_SGNR", "FAILURE")]
            raise SealFailed(
                "gpg could not sign and encrypt the outcome"
                + (f" ({', '.join(problems)})" if problems else "")
            )

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
