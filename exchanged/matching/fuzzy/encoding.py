"""The fuzzy index's keyed encodings of names and birth dates, for building and searching."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from exchanged.matching.fuzzy.layout import BLOOM_BITS, BLOOM_K
from exchanged.matching.names import NameNormaliser, joined_key

_DOB_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class FuzzyKeys:
    """Keys for the index, derived from the register secret, one per use.

    BLAKE2b's personalisation separates them from each other and from the
    identifier hashes made with the same secret.

    >>> keys = FuzzyKeys.from_secret(bytes(32))
    >>> len({keys.block, keys.bloom, keys.mask, keys.lexicon})
    4
    """

    block: bytes
    bloom: bytes
    mask: bytes
    lexicon: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> FuzzyKeys:
        def derive(label: bytes) -> bytes:
            return hashlib.blake2b(b"", key=secret[:64], person=label, digest_size=32).digest()

        return cls(derive(b"xfz1-block"), derive(b"xfz1-bloom"), derive(b"xfz1-mask"),
                   derive(b"xfz1-lexicon"))


def blocking_terms(tokens: Sequence[str],
                    join: Callable[[str, str], str] = joined_key) -> set[str]:
    """What a name is filed under (with its birth date), the same for a register row and a query.

    >>> sorted(blocking_terms(("siti", "nurhayati")))
    ['tnurhayati', 'tsiti', 'tsitinurhayati']
    >>> sorted(blocking_terms(("tika", "astuti")))  # the key of Tikaastuti
    ['tastuti', 'ttika', 'ttikastuti']
    >>> sorted(blocking_terms(("sumarni",)))
    ['psum', 'srni', 'tsumarni']
    >>> sorted(blocking_terms(("a", "setiawan")))
    ['pset', 'swan', 'tsetiawan']
    """
    full = [t for t in tokens if len(t) >= 2]
    terms = {"t" + t for t in full}
    if len(full) == 2:
        terms.add("t" + join(full[0], full[1]))
    if len(full) == 1 and len(full[0]) >= 5:
        only = full[0]
        terms.add("p" + only[:3])
        terms.add("s" + only[-3:])
    return terms


class Encoder:
    """The keyed encodings shared by building and searching, with caches of their own."""

    def __init__(self, keys: FuzzyKeys, normaliser: NameNormaliser | None = None) -> None:
        self.normalise = normaliser or NameNormaliser()
        self._block = hashlib.blake2b(key=keys.block, digest_size=8)
        self._bloom = hashlib.blake2b(key=keys.bloom, digest_size=8)
        self._mask = hashlib.blake2b(key=keys.mask, digest_size=64)
        self._lexicon = hashlib.blake2b(key=keys.lexicon, digest_size=8)
        self._dob_states: dict[str, Any] = {}
        self._pair_bits: dict[str, int] = {}
        self._token_bloom: dict[str, int] = {}

    def key(self, dob: str, term: str) -> int:
        state = self._dob_states.get(dob)
        if state is None:
            # the date absorbed once: every person born that day has several keys
            if len(self._dob_states) >= 1 << 16:
                self._dob_states.clear()
            state = self._block.copy()
            state.update(f"{dob}|".encode())
            self._dob_states[dob] = state
        h = state.copy()
        h.update(term.encode())
        return int.from_bytes(h.digest()[:5], "big")

    def lexicon_hash(self, token: str) -> int:
        h = self._lexicon.copy()
        h.update(token.encode())
        return int.from_bytes(h.digest(), "little")

    def keys(self, dob: str, tokens: Sequence[str]) -> list[int]:
        return [self.key(dob, term) for term in blocking_terms(tokens, self.normalise.joined)]

    def pair_bits(self, pair: str) -> int:
        bits = self._pair_bits.get(pair)
        if bits is None:
            h = self._bloom.copy()
            h.update(pair.encode())
            word = int.from_bytes(h.digest(), "little")
            bits = 0
            for _ in range(BLOOM_K):
                bits |= 1 << (word & (BLOOM_BITS - 1))
                word >>= 7
            self._pair_bits[pair] = bits
        return bits

    def bloom(self, token: str) -> int:
        bits = self._token_bloom.get(token)
        if bits is None:
            padded = f"^{token}$"
            bits = 0
            for i in range(len(padded) - 1):
                bits |= self.pair_bits(padded[i : i + 2])
            if len(self._token_bloom) >= 1 << 17:
                self._token_bloom.clear()
            self._token_bloom[token] = bits
        return bits

    def mask(self, record: int, tokens: int) -> int:
        """The keystream a record's filters are XORed with (``tokens`` filters long)."""
        out = 0
        shift = 0
        block = 0
        while shift < tokens * BLOOM_BITS:
            h = self._mask.copy()
            h.update(record.to_bytes(4, "little") + block.to_bytes(1, "little"))
            out |= int.from_bytes(h.digest(), "little") << shift
            shift += 512
            block += 1
        return out & ((1 << (tokens * BLOOM_BITS)) - 1)


def valid_dob(text: str) -> str | None:
    text = text.strip()
    if not _DOB_RE.fullmatch(text):
        return None
    try:
        date.fromisoformat(text)
    except ValueError:
        return None
    return text
