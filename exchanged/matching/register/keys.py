"""Keyed values of identifiers (NIK, NIP, NKK): what a snapshot stores instead of the numbers."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 16
#: identifiers have at most this many digits (fits a 64-bit integer)
MAX_DIGITS = 18

U64Pairs = npt.NDArray[np.uint64]  # shape (n, 2): one keyed value per row
Rows = npt.NDArray[np.int64]


def identifier_key(secret: bytes, value: str) -> bytes:
    """The keyed hash of the first snapshot format (read-only now)."""
    return hashlib.blake2b(value.encode("ascii"), key=secret, digest_size=KEY_BYTES).digest()


def token_key(column: str, key_fingerprint: str) -> str:
    """The name under which a snapshot indexes a column loaded as keyed tokens: it names the
    agencies' token key, so that a lookup with tokens of another key (or with plain NIKs)
    finds no index to search instead of finding nothing."""
    return f"{column}~token~{key_fingerprint[:16]}"


class IdentifierCipher:
    """Turns identifiers (ASCII digits) into keyed 16-byte values, many at a time."""

    def __init__(self, secret: bytes) -> None:
        # a key of its own for this use, derived from the register secret
        self._key = hashlib.blake2b(b"exchanged identifier blocks v2", key=secret[:64],
                                    digest_size=32).digest()

    def digits(self, column: str, digits: npt.NDArray[np.uint8]) -> U64Pairs:
        """Keyed values of ``digits`` (shape (n, width), ASCII 0-9 each row)."""
        n, width = digits.shape
        if width > MAX_DIGITS:
            raise ValueError("identifiers have at most 18 digits")
        number = _numbers(digits)
        plain = np.empty((n, 2), dtype=">u8")
        tag = hashlib.blake2b(f"{column}:{width}".encode(), digest_size=8).digest()
        plain[:, 0] = int.from_bytes(tag, "big")
        plain[:, 1] = number
        encryptor = Cipher(algorithms.AES(self._key), modes.ECB()).encryptor()
        sealed = encryptor.update(plain.tobytes()) + encryptor.finalize()
        return np.frombuffer(sealed, dtype=np.uint64).reshape(n, 2)

    def tokens(self, key: str, digests: npt.NDArray[np.uint8]) -> U64Pairs:
        """Keyed values of keyed tokens, given as the first 16 bytes of each token's HMAC
        (shape (n, 16)): the agencies' HMAC is keyed once more under the register key, so
        that a snapshot holds nothing an agency could compare with its own tokens."""
        n = len(digests)
        tag = np.frombuffer(hashlib.blake2b(f"{key}:token".encode(), digest_size=16).digest(),
                            dtype=np.uint8)
        plain = np.ascontiguousarray(digests, dtype=np.uint8) ^ tag
        encryptor = Cipher(algorithms.AES(self._key), modes.ECB()).encryptor()
        sealed = encryptor.update(plain.tobytes()) + encryptor.finalize()
        return np.frombuffer(sealed, dtype=np.uint64).reshape(n, 2)

    def values(self, column: str, identifiers: Sequence[str]) -> U64Pairs:
        """Keyed values of identifiers given as text (each all ASCII digits)."""
        out = np.zeros((len(identifiers), 2), dtype=np.uint64)
        by_width: dict[int, list[int]] = {}
        for i, value in enumerate(identifiers):
            if not (value.isascii() and value.isdigit()) or len(value) > MAX_DIGITS:
                raise ValueError("an identifier is not all digits")
            by_width.setdefault(len(value), []).append(i)
        for width, where in by_width.items():
            joined = "".join(identifiers[i] for i in where).encode("ascii")
            matrix = np.frombuffer(joined, dtype=np.uint8).reshape(len(where), width)
            out[where] = self.digits(column, matrix)
        return out


def _numbers(digits: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """The numbers written by rows of ASCII digits (at most 18 a row), eight digits at a
    time: each eight bytes read as one 64-bit word and turned into their value by three
    multiplications (the "SWAR" parse of eight digits), four times faster than a digit at
    a time (docs/performance.md)."""
    n, width = digits.shape
    words = -(-width // 8)
    if width != 8 * words:  # leading zeros do not change a number
        padded = np.full((n, 8 * words), 48, dtype=np.uint8)
        padded[:, 8 * words - width:] = digits
        digits = padded
    w = np.ascontiguousarray(digits).view("<u8") - np.uint64(0x3030303030303030)
    w = w * np.uint64(10) + (w >> np.uint64(8))
    w = ((w & np.uint64(0x000000FF000000FF)) * np.uint64(100 + (1000000 << 32))
         + ((w >> np.uint64(16)) & np.uint64(0x000000FF000000FF)) * np.uint64(1 + (10000 << 32))
         ) >> np.uint64(32)
    number = w[:, 0].copy()
    for i in range(1, words):
        number = number * np.uint64(10**8) + w[:, i]
    return number
