"""The exchange's secret for keyed hashes of untrusted text in the ledger.

The ledger must hold no personal data, yet some of what it records is text a
stranger chose: the user name of a failed login, the name of a file an
agency downloaded. A plain SHA-256 of such text is no protection — whoever
reads the ledger can hash every NIK (10^16 guesses, fewer with the structure
of a NIK) and find the one that matches. So every such hash is an
HMAC-SHA256 keyed with ``keys/ledger-hmac.key``, 32 random bytes that never
leave the home (0600): without the key a hash says only "the same text as
another entry's". ``exchanged init`` creates the key; a home that predates it
gets one the first time it is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from functools import partial
from pathlib import Path

from exchanged.home.files import FILE_MODE, atomic_write

KEY_BYTES = 32


def text_key(path: Path) -> bytes:
    """The key at ``path``, created (0600, atomically) if there is none yet."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = b""
    if len(key) < KEY_BYTES:
        # a home from before the key existed (or a cut-off write, which atomic_write
        # cannot leave): a new key; earlier entries' hashes stay as they were written
        key = secrets.token_bytes(KEY_BYTES)
        atomic_write(path, key, FILE_MODE)
    elif os.stat(path).st_mode & 0o077:
        os.chmod(path, FILE_MODE)
    return key


def keyed_hash(key: bytes, text: str) -> str:
    """HMAC-SHA256 of ``text`` (UTF-8; undecodable bytes kept as they came), hex.

    >>> keyed_hash(b"k" * 32, "kemensos") == keyed_hash(b"k" * 32, "kemensos")
    True
    >>> keyed_hash(b"k" * 32, "kemensos") == keyed_hash(b"j" * 32, "kemensos")
    False
    """
    return hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def existing_hasher(path: Path) -> Callable[[str], str] | None:
    """:func:`keyed_hash` with the key at ``path``, if there is one: a read-only command
    makes no key (without one, nothing was hashed with it)."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(key) < KEY_BYTES:
        return None
    return partial(keyed_hash, key)
