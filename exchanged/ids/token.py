"""Keyed tokens of NIKs: what an agency sends instead of a NIK on a flow that matches on tokens.

Kemensos and BKN share a secret *token key* (32 random bytes) that the exchange
never holds. Each replaces every structurally valid NIK, on its own machine, by

    nt1.<key id>.<HMAC-SHA256(key, "nik:" + NIK), base64url without padding>

56 ASCII characters: the prefix (and the letters) make it impossible to take
for a NIK, and the key id (the first 8 hex digits of the key's fingerprint)
lets the exchange refuse tokens made with another key than the one the
addendum names, without knowing the key. The same NIK gives the same token
under the same key, so the exchange can match tokens, and only tokens.

The key's fingerprint is SHA-256 over a fixed label and the key: it names the
key in an addendum and lets each side check that it holds the same key, but
it reveals nothing of the key (docs/security.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Final

PREFIX: Final = "nt1."
KEY_BYTES: Final = 32
KEY_ID_HEX: Final = 8
#: the encoded HMAC: 32 bytes in base64url (RFC 4648 section 5) without its "=" of padding
DIGEST_CHARS: Final = 43
WIDTH: Final = len(PREFIX) + KEY_ID_HEX + 1 + DIGEST_CHARS
B64URL_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
KEY_FILE_LABEL: Final = "exchanged-token-key-v1"
_FINGERPRINT_LABEL: Final = b"exchanged token key fingerprint v1\x00"


class TokenKeyError(ValueError):
    """A token key file that cannot be used (the message never shows the key)."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def fingerprint(key: bytes) -> str:
    """The key's public name: 64 lower-case hex digits (SHA-256 of a label and the key)."""
    return hashlib.sha256(_FINGERPRINT_LABEL + key).hexdigest()


def key_id(key_fingerprint: str) -> str:
    """The part of the fingerprint every token carries."""
    return key_fingerprint[:KEY_ID_HEX].lower()


def key_file_text(key: bytes) -> str:
    return (
        "# exchanged token key: HMAC-SHA256 key for matching on keyed tokens.\n"
        "# SECRET. Kept by Kemensos and BKN only; never give it to the exchange.\n"
        f"# fingerprint {fingerprint(key)}\n"
        f"{KEY_FILE_LABEL} {base64.b64encode(key).decode('ascii')}\n"
    )


def parse_key_file(text: str) -> bytes:
    """The key in a key file's text; :class:`TokenKeyError` if there is none, or two."""
    found: list[bytes] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        label, _, encoded = line.partition(" ")
        if label != KEY_FILE_LABEL:
            raise TokenKeyError(f"it is not an exchanged token key file (a line does not "
                                f"start with {KEY_FILE_LABEL})")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise TokenKeyError("its key is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise TokenKeyError(f"its key is not {KEY_BYTES} bytes long")
        found.append(key)
    if len(found) != 1:
        raise TokenKeyError("it must hold exactly one key")
    return found[0]


class Tokenizer:
    """Tokens of canonical NIKs under one key (each call one HMAC-SHA256)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise TokenKeyError(f"a token key is {KEY_BYTES} bytes long")
        self.fingerprint = fingerprint(key)
        self._head = f"{PREFIX}{key_id(self.fingerprint)}."
        # the key's inner and outer states once, copied per value: half the hashing
        self._mac = hmac.new(key, b"nik:", hashlib.sha256)

    def token(self, nik: str) -> str:
        """The token of a canonical NIK (16 ASCII digits, already validated)."""
        mac = self._mac.copy()
        mac.update(nik.encode("ascii"))
        return self._head + base64.urlsafe_b64encode(mac.digest()).decode("ascii")[:DIGEST_CHARS]


def looks_like_token(value: str) -> bool:
    """Whether a cell holds (or starts like) a token: refused on a flow matching NIKs."""
    return value.strip().lower().startswith(PREFIX)
