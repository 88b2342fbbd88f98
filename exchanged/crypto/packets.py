"""What an opened OpenPGP message proved, decided from gpg's status lines.

An agency is bound to one pinned primary key fingerprint; the web of trust
plays no part: a batch is accepted only if it is encrypted to the exchange
*and* carries a good signature whose primary key fingerprint is the uploading
agency's pinned one, made with a strong hash (:func:`classify_open`). The same
reading of ``VALIDSIG`` serves signed documents and the agency's client
(:func:`valid_signatures`).
"""

from __future__ import annotations

from dataclasses import dataclass

from exchanged.crypto.gpg import NO_PUBKEY, ErrSig, Status, ValidSig, hash_name
from exchanged.errors import Refused
from exchanged.reasons import reason


@dataclass(frozen=True)
class Opened:
    """What opening a batch proved."""

    signer_fingerprint: str
    signed_at: int
    plaintext_bytes: int


def valid_signatures(status: Status) -> list[ValidSig]:
    """Every good signature gpg verified, in the message's order (weak ones too: each
    reader decides; see :attr:`ValidSig.weak`)."""
    return status.valid_signatures()


def decrypted(status: Status) -> bool:
    """gpg decrypted the whole message (its integrity checked)."""
    return (status.has("DECRYPTION_OKAY") and status.has("END_DECRYPTION")
            and not status.has("DECRYPTION_FAILED"))


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
        not decrypted(status)
        # exactly one literal: no unsigned data beside the signed
        or len(status.all("PLAINTEXT")) != 1
    ):
        raise Refused(reason("CORRUPT_MESSAGE"))
    if status.has("BADSIG"):
        raise Refused(reason("BAD_SIGNATURE"))
    if not status.has("NEWSIG"):
        raise Refused(reason("NOT_SIGNED", fingerprint=pinned))
    return _by_pinned(status, pinned)


def _by_pinned(status: Status, pinned: str) -> Opened:
    """The good signature of the pinned key, made with a strong hash, among the message's;
    else Refused."""
    pinned = pinned.upper()
    weak: list[int] = []
    for signature in signatures(status):
        valid = signature.valid_signatures()
        if valid:
            by_pinned = valid[0].primary == pinned
        else:
            # no VALIDSIG: only the key id of EXPKEYSIG/REVKEYSIG names the signer
            by_pinned = any(pinned.endswith(key[0].upper())
                            for k in ("EXPKEYSIG", "REVKEYSIG") for key in signature.all(k)
                            if key and len(key[0]) >= 16)
        if not by_pinned:
            # another key's state (an old key of the agency, revoked after a new one was
            # pinned) says nothing about the pinned key: that signer is simply not it
            weak += _refused_for_its_hash(signature.signature_errors())
            continue
        if signature.has("EXPKEYSIG"):
            raise Refused(reason("SIGNER_KEY_EXPIRED"))
        if signature.has("REVKEYSIG"):
            raise Refused(reason("SIGNER_KEY_REVOKED"))
        if valid and valid[0].weak:
            weak.append(valid[0].hash_algo)
        elif valid:
            return Opened(valid[0].primary, valid[0].signed_at, 0)
    if weak:
        raise Refused(reason("WEAK_SIGNATURE", hash=hash_name(weak[0])))
    raise Refused(reason("WRONG_SIGNER", fingerprint=pinned))


def _refused_for_its_hash(errors: list[ErrSig]) -> list[int]:
    """The weak hashes of signatures gpg would not check (it refuses MD5 itself: ERRSIG, no
    VALIDSIG) made by a key it has. ERRSIG names only the signing key, which may be a
    subkey of the pinned key: a weak signature by any key the exchange holds is said to be
    weak rather than by another signer (a key gpg does not have, NO_PUBKEY, is certainly
    not the pinned one)."""
    return [e.hash_algo for e in errors if e.weak and e.code != NO_PUBKEY]


def signatures(status: Status) -> list[Status]:
    """The status lines of each signature: from one NEWSIG to the next (gpg reports a
    message's signatures one after the other, each opened by NEWSIG)."""
    groups: list[list[tuple[str, tuple[str, ...]]]] = []
    for line in status.lines:
        if line[0] == "NEWSIG":
            groups.append([])
        if groups:
            groups[-1].append(line)
    return [Status(tuple(group)) for group in groups]


def unusable_own_key(status: Status, own_key_ids: frozenset[str]) -> bool:
    """gpg found the message encrypted to one of the exchange's own keys and could not use
    that secret key (``NO_SECKEY`` naming it, no ``DECRYPTION_KEY``).

    The exchange holds its secret key, so this is its gpg failing — an agent that could
    not start because the home is full or out of descriptors — not the sender's message.
    """
    if status.has("DECRYPTION_KEY"):
        return False
    return any(args and args[0].upper() in own_key_ids for args in status.all("NO_SECKEY"))
