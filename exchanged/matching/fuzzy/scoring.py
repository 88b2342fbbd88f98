"""Scoring a query name against register names held only as keyed Bloom filters."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from exchanged.matching.fuzzy.encoding import Encoder, FuzzyKeys
from exchanged.matching.fuzzy.layout import BLOOM_BITS, BLOOM_K, MAX_TOKENS
from exchanged.matching.names import NameNormaliser

#: a part of four letters or more with one letter replaced, added, removed or swapped
TYPO_SIM: Final = 0.95
#: parts shorter than this are not compared for typos (Ani / Ana / Adi are other names)
TYPO_MIN_LENGTH: Final = 4
#: what an initial is worth against a part with its letter (A. against Agus)
INITIAL_SIM: Final = 0.6
#: a part split or joined (Nur Hayati / Nurhayati), when its letters agree
SPACING_SIM: Final = 0.95
#: the least evidence for a match: letter pairs of whole parts that agree (a
#: five-letter part has six: ^a ab ... e$)
MIN_EVIDENCE: Final = 6.0
#: what each part that only one of the names has costs, on top of its share:
#: Siti Aminah is not Siti Aminah Putri, however long the names are
UNPAIRED_FACTOR: Final = 0.85

def _estimated_pairs(bits_set: int) -> float:
    """How many letter pairs a token filter holds, from how many bits it has set."""
    if bits_set >= BLOOM_BITS:
        bits_set = BLOOM_BITS - 1
    return math.log(1 - bits_set / BLOOM_BITS) / (BLOOM_K * math.log(1 - 1 / BLOOM_BITS))


#: letter pairs by bits set, so weights cost a lookup
_PAIRS_BY_BITS: Final = tuple(_estimated_pairs(n) for n in range(BLOOM_BITS + 1))


@dataclass(frozen=True)
class Part:
    """One part of the query name, with what comparing it to a register filter needs.

    The query is in the clear (it is the batch's own row), so its variants
    can be computed exactly; the register side is only ever a filter.
    """

    text: str
    bloom: int
    weight: float
    #: the filter of the part's first letter alone (an initial's filter)
    initial: int
    #: the bits of the pair "^x": set in every part that starts with x
    start: int
    is_initial: bool
    #: a part that many register people carry (see LEXICON_MIN)
    known: bool = False
    #: the filters of the part with two adjacent letters swapped, and the spellings
    swapped: Mapping[int, str] = field(default_factory=dict)
    #: (what is left of the part's filter, where, how): a letter added at ``where``
    #: takes one letter pair away ("add"); a letter replaced or removed at
    #: ``where`` takes two ("replace")
    windows: tuple[tuple[int, int, str], ...] = ()


def _dice(a: int, b: int) -> float:
    both = (a & b).bit_count()
    return 2.0 * both / (a.bit_count() + b.bit_count())


def _pairs(token: str) -> list[str]:
    padded = f"^{token}$"
    return [padded[i : i + 2] for i in range(len(padded) - 1)]


def _or(values: Iterable[int]) -> int:
    out = 0
    for v in values:
        out |= v
    return out


_LETTERS: Final = "abcdefghijklmnopqrstuvwxyz"


def _variants_at(token: str, where: int, how: str) -> Iterator[str]:
    """The spellings with one letter added before ``where``, or replaced or removed at it."""
    if how == "add":
        for ch in _LETTERS:
            yield token[:where] + ch + token[where:]
        return
    for ch in _LETTERS:
        if ch != token[where]:
            yield token[:where] + ch + token[where + 1:]
    yield token[:where] + token[where + 1:]


#: (similarity, query parts, register parts) of one possible pairing
_Option = tuple[float, tuple[int, ...], tuple[int, ...]]


class Scorer:
    """Scores register names (as filters) against one query name at a time.

    ``lexicon`` tells whether a part's keyed hash is a known name (see
    :data:`LEXICON_MIN`).
    """

    def __init__(self, encoder: Encoder, known: Callable[[int], bool]) -> None:
        self._encoder = encoder
        self._known = known
        self._decoded: dict[tuple[str, int, str], dict[int, str]] = {}

    def parts(self, tokens: Sequence[str]) -> list[Part]:
        encoder = self._encoder
        out = []
        for t in tokens:
            bloom = encoder.bloom(t)
            swapped: dict[int, str] = {}
            windows: list[tuple[int, int, str]] = []
            known = False
            if len(t) >= TYPO_MIN_LENGTH:
                for i in range(len(t) - 1):
                    if t[i] != t[i + 1]:
                        other = t[:i] + t[i + 1] + t[i] + t[i + 2:]
                        swapped[encoder.bloom(other)] = other
                pairs = [encoder.pair_bits(p) for p in _pairs(t)]
                # pair j joins padded letters j and j + 1: letter i of the part
                # is in pairs i and i + 1
                for j in range(len(pairs)):
                    windows.append((_or(pairs[:j] + pairs[j + 1:]), j, "add"))
                for i in range(len(t)):
                    windows.append((_or(pairs[:i] + pairs[i + 2:]), i, "replace"))
                known = self._known(encoder.lexicon_hash(t))
            out.append(Part(t, bloom, len(t) + 1.0, encoder.bloom(t[0]),
                             encoder.pair_bits("^" + t[0]), len(t) == 1, known, swapped,
                             tuple(windows)))
        return out

    def joined(self, query: Sequence[Part]) -> list[tuple[int, int]]:
        """The filters of adjacent query parts written as one (for Nur Hayati / Nurhayati)."""
        return [(i, self._encoder.bloom(self._encoder.normalise.joined(query[i].text,
                                                                       query[i + 1].text)))
                for i in range(len(query) - 1)
                if not query[i].is_initial and not query[i + 1].is_initial]

    def _one_edit(self, q: Part, c: int) -> bool:
        """Is the register part ``c`` the query part with one letter replaced, added, removed
        or swapped?

        One such edit takes one or two adjacent letter pairs of the part away
        and brings at most two new ones, so a cheap test on the bits finds
        where; then the spellings one edit away there are tried until one has
        exactly the filter ``c``: the register part is then known for sure
        (the query side holds the key, and the query). Two parts that are both
        names of their own (in the lexicon: Wahyuni / Wahyudi, Putra / Putri,
        Dewi / Dwi) are two names, not a typo.
        """
        other = q.swapped.get(c)
        if other is None:
            extra = 2 * BLOOM_K
            for window, where, how in q.windows:
                if c & window == window and (c & ~window).bit_count() <= extra:
                    other = self._decode(q.text, c, where, how)
                    if other is not None:
                        break
            else:
                return False
        if other is None or len(other) < TYPO_MIN_LENGTH - 1:
            return False
        return not (q.known and self._known(self._encoder.lexicon_hash(other)))

    def _decode(self, token: str, bloom: int, where: int, how: str) -> str | None:
        """The spelling one edit away from ``token`` at ``where`` whose filter is ``bloom``."""
        key = (token, where, how)
        table = self._decoded.get(key)
        if table is None:
            if len(self._decoded) >= 1 << 14:
                self._decoded.clear()
            table = {self._encoder.bloom(v): v for v in _variants_at(token, where, how)}
            self._decoded[key] = table
        return table.get(bloom)

    def sim(self, q: Part, c: int, c_weight: float) -> float:
        if q.bloom == c:
            return 1.0
        if q.is_initial:
            # an initial against a whole part (not another initial) with its letter
            return INITIAL_SIM if c & q.start == q.start and c_weight > 2.5 else 0.0
        if c == q.initial:
            return INITIAL_SIM
        if q.windows and c.bit_count() >= 2 * BLOOM_K and self._one_edit(q, c):
            return TYPO_SIM
        return 0.0

    def _options(self, query: Sequence[Part], joined: Sequence[tuple[int, int]],
                 candidate: Sequence[int], c_weights: Sequence[float]) -> list[_Option]:
        """Every pairing of query parts with register parts that is worth something."""
        options: list[_Option] = []
        for i, q in enumerate(query):
            for j, c in enumerate(candidate):
                sim = self.sim(q, c, c_weights[j])
                if sim > 0.0:
                    options.append((sim, (i,), (j,)))
        # a query part against two adjacent register parts, and the reverse
        for i, q in enumerate(query):
            if q.is_initial:
                continue
            for j in range(len(candidate) - 1):
                if _dice(q.bloom, candidate[j] | candidate[j + 1]) >= 0.8:
                    options.append((SPACING_SIM, (i,), (j, j + 1)))
        for i, bloom in joined:
            for j, c in enumerate(candidate):
                if bloom == c or _dice(bloom, c) >= 0.85:
                    options.append((SPACING_SIM, (i, i + 1), (j,)))
        return options

    def score(self, query: Sequence[Part], joined: Sequence[tuple[int, int]],
              candidate: Sequence[int]) -> float:
        """How alike a query name and a register name are, 0..1 (both born the same day).

        Parts are paired greedily, best pair first, each part used once: the
        same filter is 1, a part with one typo :data:`TYPO_SIM`, an initial
        against a part with its letter :data:`INITIAL_SIM`, two adjacent parts
        against one joined :data:`SPACING_SIM`. The score is the paired share
        of both names' letter pairs, so a part that only one name has (``Siti
        Aminah`` / ``Siti Aminah Putri``) costs much more than a typo. Names
        that agree on fewer than :data:`MIN_EVIDENCE` letter pairs of whole
        parts score 0: an initial and a birth date are not enough.
        """
        c_weights = [_PAIRS_BY_BITS[c.bit_count()] for c in candidate]
        total = sum(q.weight for q in query) + sum(c_weights)
        options = self._options(query, joined, candidate, c_weights)
        if not options:
            return 0.0
        options.sort(key=lambda o: o[0], reverse=True)
        used_q: set[int] = set()
        used_c: set[int] = set()
        paired = 0.0
        evidence = 0.0
        for sim, qs, cs in options:
            if used_q.intersection(qs) or used_c.intersection(cs):
                continue
            used_q.update(qs)
            used_c.update(cs)
            weight = sum(query[i].weight for i in qs) + sum(c_weights[j] for j in cs)
            paired += sim * weight
            if sim > INITIAL_SIM and not any(query[i].is_initial for i in qs):
                evidence += sum(query[i].weight for i in qs)
        if evidence < MIN_EVIDENCE:
            return 0.0
        unpaired = len(query) - len(used_q) + len(candidate) - len(used_c)
        # rounded: sums of weights in another order must not make 1 into 0.9999999
        return round(min(1.0, paired / total * UNPAIRED_FACTOR ** unpaired), 6)


def name_score(query: str, register: str, secret: bytes = bytes(32),
               known: Iterable[str] = ()) -> float:
    """The score of two names of people born the same day, as the index computes it.

    For tests and for explaining: the index never holds the register name, only
    its filters, and computes exactly this from them. ``known`` stands for the
    register's lexicon.

    >>> name_score("Drs. H. Mochammad Soeharto, M.Si.", "MUHAMAD SUHARTO")
    1.0
    >>> name_score("Siti Aminah", "Siti Aminah Putri") < 0.85
    True
    >>> name_score("Siti Aminah", "Siti Aisyah") < 0.5
    True
    >>> round(name_score("Siti Aminah", "Siti Aminha"), 2)  # one typo
    0.97
    >>> round(name_score("Sri Wahyuni", "Sri Wahyudi"), 2)  # ... or a name of its own?
    0.97
    >>> name_score("Sri Wahyuni", "Sri Wahyudi", known=["wahyuni", "wahyudi"])
    0.0
    """
    encoder = Encoder(FuzzyKeys.from_secret(secret))
    lexicon = {encoder.lexicon_hash(t) for t in known}
    scorer = Scorer(encoder, lexicon.__contains__)
    normalise = NameNormaliser()
    q_tokens = normalise(query)[:MAX_TOKENS]
    r_tokens = normalise(register)[:MAX_TOKENS]
    if not q_tokens or not r_tokens:
        return 0.0
    parts = scorer.parts(q_tokens)
    return scorer.score(parts, scorer.joined(parts), [encoder.bloom(t) for t in r_tokens])
