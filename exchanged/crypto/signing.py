"""Signed documents: the exchange signs with its OpenPGP key; anyone verifies with its public key.

Checkpoints, proofs and notices are OpenPGP *signed messages* (``gpg --sign
--armor``): a party can check one with plain ``gpg --verify`` and read it with
``gpg --decrypt``. Verification here accepts a document only if it carries a
good signature whose primary key fingerprint is the one expected, made with a
strong hash (SHA-2 or SHA-3, never MD5 or SHA-1). Every call
goes through :class:`~exchanged.crypto.gpg.Gpg`, and its status lines decide.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

from exchanged.crypto.gpg import NO_PUBKEY, Gpg, hash_name
from exchanged.crypto.packets import valid_signatures
from exchanged.errors import CheckFailed, KeyProblem


@dataclass(frozen=True)
class Verified:
    content: bytes
    signer: str


def sign_document(gnupghome: Path, signer: str, content: bytes) -> bytes:
    """An armored OpenPGP signed message holding ``content``."""
    result = Gpg(gnupghome).run(["--armor", "--sign", "--local-user", signer], input=content)
    if not result.ok or not result.status.has("SIG_CREATED") or not result.stdout:
        raise KeyProblem("gpg could not sign the document with the exchange's key")
    return result.stdout


def verify_document(data: bytes, gnupghome: Path, expected: str | Set[str]) -> Verified:
    """The content of a signed message, if signed by the key ``expected`` (or one of them);
    else CheckFailed."""
    accepted = {expected.upper()} if isinstance(expected, str) else {e.upper() for e in expected}
    named = " or ".join(sorted(accepted))
    result = Gpg(gnupghome).run(["--decrypt"], input=data)
    status = result.status
    signatures = valid_signatures(status)
    # a signature made with a weak hash (MD5, SHA-1) proves nothing: another document with
    # the same hash could carry it
    good = [s for s in signatures if not s.weak]
    weak = ([s.hash_algo for s in signatures if s.weak and s.primary in accepted]
            + [e.hash_algo for e in status.signature_errors() if e.weak and e.code != NO_PUBKEY])
    signer = good[-1].primary if good else None
    if status.has("BADSIG"):
        raise CheckFailed("the document's signature is bad: it was altered after signing")
    if signer is None and weak:
        raise CheckFailed(f"the document is signed with the weak hash algorithm "
                          f"{hash_name(weak[0])}, which proves nothing: it is not accepted")
    if signer is None:
        raise CheckFailed(f"the document is not signed by the exchange's key {named} "
                          "(no good signature by a known key)")
    if signer not in accepted:
        raise CheckFailed(f"the document is signed by {signer}, not by the exchange's key "
                          f"{named}")
    if status.has("ENC_TO"):
        raise CheckFailed("the document is encrypted, not a signed checkpoint or proof")
    return Verified(result.stdout, signer)


def verify_with_key_file(data: bytes, public_key: Path) -> Verified:
    """Verify with only the exchange's public key file (an agency's check, without a home)."""
    try:
        key = public_key.read_bytes()
    except OSError as e:
        raise CheckFailed(f"cannot read the exchange's key {public_key}: {e.strerror}") from None
    home = Path(tempfile.mkdtemp(prefix="exchanged-verify-"))
    gpg = Gpg(home)
    try:
        os.chmod(home, 0o700)
        imported = gpg.run(["--import"], input=key)
        fingerprints = sorted({args[1].upper() for args in imported.status.all("IMPORT_OK")
                               if len(args) >= 2})
        if len(fingerprints) != 1:
            raise CheckFailed(f"{public_key} must hold exactly one public key")
        return verify_document(data, home, fingerprints[0])
    finally:
        gpg.stop_agent("all")
        shutil.rmtree(home, ignore_errors=True)
