"""Signed documents: the exchange signs with its OpenPGP key; anyone verifies with its public key.

Checkpoints, proofs and notices are OpenPGP *signed messages* (``gpg --sign
--armor``): a party can check one with plain ``gpg --verify`` and read it with
``gpg --decrypt``. Verification here accepts a document only if it carries a
good signature whose primary key fingerprint is the one expected.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

import gnupg

from exchanged.errors import CheckFailed, KeyProblem

OPTIONS = ["--pinentry-mode", "error", "--no-auto-key-retrieve", "--no-auto-key-locate",
           "--trust-model", "always"]


@dataclass(frozen=True)
class Verified:
    content: bytes
    signer: str


def _gpg(home: Path) -> gnupg.GPG:
    logging.getLogger("gnupg").setLevel(logging.CRITICAL)
    env = {**os.environ, "LC_ALL": "C", "LANGUAGE": "C"}
    return gnupg.GPG(gnupghome=str(home), options=list(OPTIONS), env=env)


def sign_document(gnupghome: Path, signer: str, content: bytes) -> bytes:
    """An armored OpenPGP signed message holding ``content``."""
    result = _gpg(gnupghome).sign(content, keyid=signer, detach=False, clearsign=False,
                                  binary=False)
    signed = bytes(result.data) if result.data else b""
    if not signed:
        raise KeyProblem("gpg could not sign the document with the exchange's key")
    return signed


def verify_document(data: bytes, gnupghome: Path, expected: str | Set[str]) -> Verified:
    """The content of a signed message, if signed by the key ``expected`` (or one of them);
    else CheckFailed."""
    accepted = {expected.upper()} if isinstance(expected, str) else {e.upper() for e in expected}
    named = " or ".join(sorted(accepted))
    result = _gpg(gnupghome).decrypt(data)
    stderr = str(getattr(result, "stderr", ""))
    signer = None
    for line in stderr.splitlines():
        parts = line.split()
        if line.startswith("[GNUPG:] VALIDSIG") and len(parts) >= 12:
            signer = parts[11].upper()
    if "[GNUPG:] BADSIG" in stderr:
        raise CheckFailed("the document's signature is bad: it was altered after signing")
    if signer is None:
        raise CheckFailed(f"the document is not signed by the exchange's key {named} "
                          "(no good signature by a known key)")
    if signer not in accepted:
        raise CheckFailed(f"the document is signed by {signer}, not by the exchange's key "
                          f"{named}")
    if "[GNUPG:] ENC_TO" in stderr:
        raise CheckFailed("the document is encrypted, not a signed checkpoint or proof")
    return Verified(bytes(result.data), signer)


def verify_with_key_file(data: bytes, public_key: Path) -> Verified:
    """Verify with only the exchange's public key file (an agency's check, without a home)."""
    try:
        key = public_key.read_bytes()
    except OSError as e:
        raise CheckFailed(f"cannot read the exchange's key {public_key}: {e.strerror}") from None
    home = Path(tempfile.mkdtemp(prefix="exchanged-verify-"))
    try:
        os.chmod(home, 0o700)
        gpg = _gpg(home)
        imported = gpg.import_keys(key)
        fingerprints = [str(f) for f in (imported.fingerprints or [])]
        if len(fingerprints) != 1:
            raise CheckFailed(f"{public_key} must hold exactly one public key")
        return verify_document(data, home, fingerprints[0])
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"],
                       capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
