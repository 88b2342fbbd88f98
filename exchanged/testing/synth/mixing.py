"""Deterministic randomness for the synthetic data: splitmix64 words and index permutations.

Every synthetic value is a pure function of ``(seed, purpose, index)``: a
64-bit key per field group of a seed (:func:`stream_key`), a word per index
(``mix64(key + i * GOLDEN)``), and permutations of ``[0, n)``
(``(a*i + b) mod odd(n)`` with a stride coprime to it) to give distinct rows
distinct slots without remembering any.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

# Hashing.  splitmix64's finaliser is a bijection of 64-bit words with good
# avalanche, and costs three multiplications: cheap enough to call a few
# times per row in pure Python.

_M64: Final = (1 << 64) - 1
GOLDEN: Final = 0x9E3779B97F4A7C15
_MIX1: Final = 0xBF58476D1CE4E5B9
_MIX2: Final = 0x94D049BB133111EB


def mix64(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * _MIX1) & _M64
    z = ((z ^ (z >> 27)) * _MIX2) & _M64
    return z ^ (z >> 31)


def stream_key(seed: int, purpose: int) -> int:
    """A 64-bit key for one field group of one seed.

    The word for index ``i`` is then ``mix64(key + i * GOLDEN)``, which is
    splitmix64's ``i``-th output for that key: independent-looking per index.
    """
    return mix64(mix64(seed % (1 << 64)) + purpose * GOLDEN)


def odd(n: int) -> int:
    """The modulus for a permutation of [0, n): n itself if odd, else n + 1.

    With an even modulus and an odd stride, ``(a*i + b) mod n`` has the
    parity of ``i + b``: every field decoded from the low bit (gender!)
    would simply alternate with the row index.  An odd modulus breaks that;
    the one extra value is skipped by cycle-walking (apply the map again),
    which keeps the map a bijection of [0, n).
    """
    return n | 1


def stride(n: int, key: int) -> int:
    """A multiplier coprime to ``n`` near ``n / phi``.

    Coprime makes ``i -> (a*i + b) mod n`` a bijection; a golden-ratio stride
    makes consecutive indexes land far apart and spread evenly over
    ``[0, n)`` (a Weyl sequence), so the first ``rows`` slots are a fair
    sample of the whole space whatever ``rows`` is.  The key shifts it a
    little so that seeds differ in the stride too.
    """
    if n <= 2:
        return 1
    a = int(n * 0.6180339887498949) + key % max(1, n // 1000)
    a = min(max(a, 1), n - 1)
    while math.gcd(a, n) != 1:
        a += 1
    return a % n


def cumulative(weights: Iterable[int]) -> tuple[int, ...]:
    """Running totals of ``weights``: a weighted pick is ``bisect_right(totals, x % total)``."""
    total = 0
    out: list[int] = []
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)
