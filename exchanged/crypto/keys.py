"""A GnuPG home and its keys: the exchange's keyring (or an agency's, for its client).

The exchange has its own GnuPG home (``HOME/keys/gnupg``, 0700) holding its key
pair and the agencies' public keys. :class:`Keyring` is everything done with
it: the exchange's key made, listed, exported, certified, deleted; an agency's
key inspected and imported; and batches opened and answers sealed
(:mod:`exchanged.crypto.streams`). Keys are listed, scanned and imported with
python-gnupg, every other call goes through :class:`~exchanged.crypto.gpg.Gpg`;
both with the same options.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exchanged.crypto import deflate as deflate_module
from exchanged.crypto.gpg import Gpg
from exchanged.crypto.streams import STREAM_BYTES, Decryption, SealFailed, Sealing
from exchanged.errors import ConfigError, KeyProblem, Refused
from exchanged.reasons import reason

if TYPE_CHECKING:
    import gnupg


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
    #: the long key ids of the primary key and its subkeys
    key_ids: tuple[str, ...] = ()


def _key_info(k: dict[str, Any], secret: bool, *, any_case: bool = False) -> KeyInfo:
    # a listing's capitals are what the key as a whole can do now (lower case: what the
    # primary key alone can); a scanned file is judged by either
    caps = str(k.get("cap", ""))
    caps = caps.upper() if any_case else caps
    trust = str(k.get("trust", ""))
    ids = [str(k.get("keyid", ""))] + [str(s[0]) for s in k.get("subkeys", []) if s]
    return KeyInfo(
        fingerprint=str(k.get("fingerprint", "")),
        uids=tuple(str(u) for u in k.get("uids", [])),
        created=int(k.get("date") or 0),
        expires=int(k["expires"]) if k.get("expires") else None,
        can_sign="S" in caps,
        can_encrypt="E" in caps,
        revoked=trust == "r",
        expired=trust == "e",
        secret=secret,
        key_ids=tuple(i.upper() for i in ids if i),
    )


class Keyring:
    """A GnuPG home: the exchange's (``HOME/keys/gnupg``), or an agency's for its client
    (``prompt``: its key may be protected by a passphrase that gpg-agent asks for)."""

    def __init__(self, gnupghome: Path, gpg_binary: str = "gpg", *,
                 prompt: bool = False) -> None:
        if not gnupghome.is_dir():
            raise ConfigError(f"the exchange's GnuPG home {gnupghome} is missing")
        self.home = gnupghome
        self.gpg = Gpg(gnupghome, gpg_binary, prompt=prompt)
        self._python_gnupg: gnupg.GPG | None = None
        self._own_key_ids: dict[str, frozenset[str]] = {}

    @property
    def _lib(self) -> gnupg.GPG:
        if self._python_gnupg is None:
            self._python_gnupg = self.gpg.python_gnupg()
        return self._python_gnupg

    # -- keys ------------------------------------------------------------------------------

    def generate_exchange_key(self, name: str, email: str, expire: str = "3y") -> str:
        """Create the exchange's key pair: Ed25519 signing, Curve25519 encryption."""
        spec = self._lib.gen_key_input(
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
        result = self._lib.gen_key(spec)
        if not result.fingerprint:
            raise KeyProblem("gpg could not create the exchange's key pair")
        return str(result.fingerprint)

    def keys(self, secret: bool = False) -> list[KeyInfo]:
        return [_key_info(k, secret) for k in self._lib.list_keys(secret=secret)]

    def key(self, fingerprint: str) -> KeyInfo | None:
        for k in self.keys():
            if k.fingerprint.upper() == fingerprint.upper():
                return k
        return None

    def exchange_fingerprint(self) -> str:
        secret = self.keys(secret=True)
        if len(secret) != 1:
            raise ConfigError(
                "the exchange's GnuPG home must hold exactly one secret key "
                f"(it holds {len(secret)})"
            )
        # its key ids, kept now: gpg may be unable to list them when they are needed
        self._own_key_ids.setdefault(secret[0].fingerprint, frozenset(secret[0].key_ids))
        return secret[0].fingerprint

    def inspect_key_file(self, data: bytes) -> list[KeyInfo]:
        """The keys an armored or binary key file holds, without importing them."""
        return [_key_info(k, str(k.get("type", "")) == "sec", any_case=True)
                for k in self._lib.scan_keys_mem(data)]

    def import_keys(self, data: bytes) -> list[str]:
        """Import a key file as it is; the fingerprints gpg imported (or found unchanged)."""
        result = self._lib.import_keys(data)
        return [str(f) for f in (result.fingerprints or [])]

    def import_agency_key(self, data: bytes, *, refresh_of: str | None = None) -> KeyInfo:
        """Import one agency public key, refusing secret keys and unusable keys.

        ``refresh_of``: the key already pinned; a new copy of it (a revocation, a new
        expiry date) is imported even if it makes the key unusable — that is its point.
        """
        if b"PRIVATE KEY BLOCK" in data:
            raise KeyProblem("the key file holds a secret key; give the agency's public key only")
        found = self.inspect_key_file(data)
        if len(found) != 1:
            raise KeyProblem("the key file must hold exactly one public key "
                             f"(it holds {len(found)})")
        if found[0].secret:
            raise KeyProblem("the key file holds a secret key; give the agency's public key only")
        fingerprints = self.import_keys(data)
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

    def export_public(self, fingerprint: str, *, minimal: bool = True) -> str:
        """The armored public key; ``minimal=False`` keeps the certifications made on it
        (a new exchange key certified by the old one)."""
        options = ["--export-options", "export-minimal"] if minimal else []
        result = self.gpg.run(["--armor", *options, "--export", fingerprint])
        if not result.stdout:
            raise KeyProblem(f"no public key {fingerprint} to export")
        return result.stdout.decode("ascii")

    def export_secret(self, fingerprint: str) -> bytes:
        """The armored secret key (to be moved offline when the key is retired)."""
        result = self.gpg.run(["--armor", "--export-secret-keys", fingerprint])
        if not result.ok or b"PRIVATE KEY" not in result.stdout:
            raise KeyProblem(f"gpg could not export the secret key {fingerprint}")
        return result.stdout

    def certify(self, fingerprint: str, *, by: str) -> None:
        """Certify the key ``fingerprint`` with the key ``by`` (``--quick-sign-key``)."""
        result = self.gpg.run(["--yes", "--local-user", by, "--quick-sign-key", fingerprint])
        if not result.ok:
            raise KeyProblem(f"gpg could not certify {fingerprint} with {by}")

    def delete_secret(self, fingerprint: str) -> None:
        """Remove a secret key from the home (its public key stays)."""
        self._delete("--delete-secret-keys", fingerprint)

    def delete_secret_and_public(self, fingerprint: str) -> None:
        self._delete("--delete-secret-and-public-key", fingerprint)

    def _delete(self, command: str, fingerprint: str) -> None:
        result = self.gpg.run(["--yes", command, fingerprint])
        if not result.ok:
            raise KeyProblem(f"gpg could not delete the key {fingerprint}")

    def stop_agent(self) -> None:
        """Stop this home's gpg-agent (started on demand by gpg)."""
        self.gpg.stop_agent()

    def _key_ids(self, fingerprint: str) -> frozenset[str]:
        """The key ids of a key and its subkeys, looked up once (gpg may not be able to
        list them at the moment they are needed: when its home is full)."""
        if fingerprint not in self._own_key_ids:
            found = self.key(fingerprint)
            self._own_key_ids[fingerprint] = frozenset(found.key_ids if found else ())
        return self._own_key_ids[fingerprint]

    # -- batches ---------------------------------------------------------------------------

    def decrypting(self, src: Path, *, pinned: str, exchange: str,
                   max_bytes: int | None = None) -> Decryption:
        """Start decrypting ``src`` into a pipe (see :class:`Decryption`); the caller
        closes it. An empty upload is refused at once."""
        if src.stat().st_size == 0:
            raise Refused(reason("EMPTY_UPLOAD"))
        return Decryption(self.gpg, src, pinned=pinned, exchange=exchange, max_bytes=max_bytes,
                          own_key_ids=self._key_ids(exchange))

    def sealing(self, dst: Path, *, recipient: str, signer: str, filename: str,
                compress_level: int | None = None) -> Sealing:
        """Start sealing an answer written to a pipe into ``dst`` (see :class:`Sealing`),
        compressed at zlib's ``compress_level`` (None: gpg's default). Level 1 (``fast``)
        is the exchange's own: ISA-L's deflate between gpg signing and gpg encrypting, in
        the algorithm the recipient's key prefers (crypto/deflate)."""
        deflate = None
        if compress_level == deflate_module.EXCHANGE_LEVEL:
            deflate = self.compression_for(recipient)
            if deflate is None:
                compress_level = 0  # the recipient's key takes neither ZIP nor ZLIB
        return Sealing(self.gpg, dst, recipient=recipient, signer=signer, filename=filename,
                       compress_level=compress_level, deflate=deflate)

    def compression_for(self, fingerprint: str) -> int | None:
        """The OpenPGP compression algorithm (ZIP or ZLIB) the exchange uses for answers to
        this key, by the key's own preferences; None: not compressed. Read at every
        sealing (a few milliseconds), so that a key updated by another process counts at
        once."""
        result = self.gpg.run(["--export-options", "export-minimal", "--export", fingerprint])
        if not result.ok or not result.stdout:
            return deflate_module.ZIP  # gpg's encryption will say what is wrong with the key
        return deflate_module.algorithm_for(
            deflate_module.compression_preferences(result.stdout))

    def seal(self, src: Path, dst: Path, *, recipient: str, signer: str, filename: str) -> None:
        """Sign with ``signer`` and encrypt to ``recipient`` the file ``src``, into ``dst``."""
        sealing = self.sealing(dst, recipient=recipient, signer=signer, filename=filename)
        try:
            with open(src, "rb") as f:
                while chunk := f.read(STREAM_BYTES):
                    sealing.stream.write(chunk)
        except BrokenPipeError:
            sealing.finish()  # gpg stopped reading: this says why
            sealing.abort()
            raise SealFailed("gpg stopped reading the answer") from None
        except BaseException:
            sealing.abort()
            raise
        sealing.finish()


def create_gnupg_home(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
