"""A labelled set for the fuzzy fallback: KPM rows that are, or are not, register people.

Every row has a structurally valid NIK that is **not** in the register (the
situation the fallback is for), a name and a birth date, and a label:

* a **positive** is a register person written the way another office
  writes them: titles removed or added, another spelling of Muhammad, old
  spelling (Soeharto), parts joined or split (Nur Hayati / Nurhayati), one
  letter mistyped, a given name cut to its initial, capitals and stray
  spaces, or two of these at once; always the person's birth date;
* a **hard negative** is somebody else who looks alike: a register person's
  name with a part added (Siti Aminah / Siti Aminah Putri) or left out, one
  part replaced by another name (Siti Aisyah; a brother Maruli next to
  Hotman Simanjuntak), a part replaced by a *name* one letter away (a twin:
  Putra / Putri, Wahyuni / Wahyudi), all on the same birth date; or the same
  name on another birth date;
* a **background** row is an ordinary KPM person who is not in the register
  (from :func:`~exchanged.testing.synth.kpm_batch`).

Rows are a pure function of (register, seed, index), like everything in
this package. A row's NIK is its person's NIK with a serial from 1000 up, or
a not-found NIK of ``kpm_batch``: register serials stop at 999, so none is
in the register (see :mod:`exchanged.testing.synth.kpm`).
"""

from __future__ import annotations

import datetime
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from exchanged.testing.synth.dates import nik_date
from exchanged.testing.synth.kpm import kpm_batch
from exchanged.testing.synth.mixing import GOLDEN, cumulative, mix64, stream_key
from exchanged.testing.synth.names import STYLES
from exchanged.testing.synth.register import SyntheticRegister
from exchanged.testing.synth.titles import ACADEMIC_PREFIXES, add_titles

__all__ = [
    "FUZZY_STATUS",
    "FUZZY_TRUTH_COLUMNS",
    "NEGATIVE_KINDS",
    "POSITIVE_KINDS",
    "FuzzyCase",
    "fuzzy_cases",
    "strip_titles",
]

FUZZY_STATUS: Final = "KEMUNGKINAN_ASN"
NOT_FOUND: Final = "TIDAK_DITEMUKAN"
FUZZY_TRUTH_COLUMNS: Final = ("ref", "nik", "expected_status", "kind")

#: how each positive is written (relative frequencies)
_POSITIVE_KINDS: Final = (
    ("titles_removed", 20), ("titles_added", 6), ("capitals_spaces", 8), ("muhammad", 8),
    ("old_spelling", 6), ("spacing", 8), ("typo", 18), ("initial", 8), ("combined", 18),
)
POSITIVE_KINDS: Final = tuple(k for k, _ in _POSITIVE_KINDS)
_POSITIVE_CUM: Final = cumulative(w for _, w in _POSITIVE_KINDS)
_NEGATIVE_KINDS: Final = (
    ("extra_part", 20), ("missing_part", 15), ("other_part", 25), ("twin", 20), ("other_date", 20),
)
NEGATIVE_KINDS: Final = tuple(k for k, _ in _NEGATIVE_KINDS) + ("background",)
_NEGATIVE_CUM: Final = cumulative(w for _, w in _NEGATIVE_KINDS)

_ATTEMPTS: Final = 200
_STEP: Final = 7919
_P_FUZZY_CASE: Final = 31
_P_FUZZY_PERSON: Final = 32

_MUHAMMAD_FORMS: Final = ("Muhammad", "Muhamad", "Mohammad", "Mochammad", "Mohamad", "Moh.",
                          "Muh.", "Mhd.", "M.")
_HONORIFICS: Final = frozenset({"H.", "Hj.", "Prof.", "Prof. Dr.", *ACADEMIC_PREFIXES})
# keys next to each other on a keyboard, for typos that hands make
_KEYBOARD: Final = MappingProxyType({
    "a": "sq", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj",
    "i": "uo", "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o",
    "q": "wa", "r": "et", "s": "ad", "t": "ry", "u": "yi", "v": "cb", "w": "qe", "x": "zc",
    "y": "tu", "z": "x",
})
# prefixes that people write as a part of their own or glue to the next
_SPLITTABLE: Final = ("Nur", "Sri", "Dwi", "Tri", "Eka", "Abdul", "Siti", "Putri", "Dewi")


def _pool(female: bool) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for style in STYLES:
        for n in (style.female_given + style.female_second) if female else (
                style.male_given + style.male_second):
            if " " not in n and "." not in n:
                names[n] = None
    return tuple(names)


_FEMALE_POOL: Final = _pool(True)
_MALE_POOL: Final = _pool(False)


def _near_names(pool: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Names of the pool one letter apart from each other (Wahyuni / Wahyudi, Putra / Putri)."""
    def close(a: str, b: str) -> bool:
        a, b = a.lower(), b.lower()
        if a == b or abs(len(a) - len(b)) > 1 or _spelling_variants(a, b):
            return False
        if len(a) == len(b):
            return sum(x != y for x, y in zip(a, b, strict=True)) == 1
        short, long_ = (a, b) if len(a) < len(b) else (b, a)
        return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))

    everything = sorted(set(_FEMALE_POOL) | set(_MALE_POOL) | set(pool))
    return {n: tuple(m for m in everything if close(n, m)) for n in pool}


def _spelling_variants(a: str, b: str) -> bool:
    """Two spellings of one name, not two names (Siti / Sitti, Rizki / Rizky, Hafiz / Hafidz)."""
    def plain(name: str) -> str:
        for old, new in (("dz", "z"), ("dh", "d"), ("kh", "h"), ("ch", "h"), ("th", "t"),
                         ("y", "i"), ("j", "i")):
            name = name.replace(old, new)
        return "".join(ch for i, ch in enumerate(name) if i == 0 or ch != name[i - 1])

    return plain(a) == plain(b)


_NEAR: Final = _near_names(tuple(sorted(set(_FEMALE_POOL) | set(_MALE_POOL))))


@dataclass(frozen=True, slots=True)
class FuzzyCase:
    """One labelled KPM row for the fuzzy fallback.

    ``person`` is the register row it was made from (-1 for background rows).
    """

    ref: str
    nik: str
    nama: str
    tanggal_lahir: str
    expected_status: str  # FUZZY_STATUS or "TIDAK_DITEMUKAN"
    kind: str
    person: int


def strip_titles(name: str) -> str:
    """The name without the titles the generator adds (and nothing else).

    >>> strip_titles("Prof. Dr. H. Ahmad Fauzi, S.Pd., M.Si.")
    'Ahmad Fauzi'
    >>> strip_titles("Muh. Arsyad")
    'Muh. Arsyad'
    """
    words = name.split(",")[0].split()
    while words and (words[0] in _HONORIFICS or words[0] in ("Dr.", "Prof.")):
        words = words[1:]
    return " ".join(words)


def _parts(name: str) -> list[str]:
    return strip_titles(name).split()


def _typo(word: str, x: int) -> str:
    """One realistic slip of the hand in a word of four letters or more."""
    pos = 1 + x % (len(word) - 1)  # rarely the first letter: people check that one
    x //= len(word) - 1
    kind = x % 4
    x //= 4
    lower = word[pos].lower()
    if kind == 0:  # a neighbouring key
        near = _KEYBOARD.get(lower, "a")
        ch = near[x % len(near)]
        return word[:pos] + (ch.upper() if word[pos].isupper() else ch) + word[pos + 1:]
    if kind == 1:  # a letter dropped
        return word[:pos] + word[pos + 1:]
    if kind == 2:  # a letter typed twice
        return word[:pos] + word[pos] + word[pos:]
    if pos < len(word) - 1:  # two letters swapped
        return word[:pos] + word[pos + 1] + word[pos] + word[pos + 2:]
    return word[:pos - 1] + word[pos] + word[pos - 1]


_VOWELS: Final = "aeiouAEIOU"


def _old_word(word: str) -> str:
    """One word as written before 1972: u as oe, j as dj, c as tj, and y before a vowel as j."""
    if word.endswith(".") or any(old in word.lower() for old in ("dj", "tj", "oe")):
        return word  # an abbreviation, or already in the old spelling
    out = []
    for i, ch in enumerate(word):
        nxt = word[i + 1] if i + 1 < len(word) else ""
        prev = word[i - 1].lower() if i else ""
        low = ch.lower()
        if low == "u":
            new = "oe"
        elif low == "j":
            new = "dj"
        elif low == "c" and nxt and nxt in _VOWELS:
            new = "tj"
        elif low == "y" and nxt and nxt in _VOWELS and prev not in ("t", "d", "s", "n"):
            new = "j"  # not after t, d, s, n: "tj", "dj", "sj", "nj" would read otherwise
        else:
            new = low
        out.append(new.capitalize() if ch.isupper() else new)
    return "".join(out)


def _old_spelling(name: str) -> str | None:
    """The name as written before 1972 (Suharto: Soeharto, Joko: Djoko, Cahyadi: Tjahjadi)."""
    old = " ".join(_old_word(w) for w in name.split())
    return old if old != name else None


class _Variation:
    """Writes a name as another office would (or returns None when the kind does not apply)."""

    @staticmethod
    def titles_removed(name: str, x: int, female: bool, year: int) -> str | None:
        bare = strip_titles(name)
        return bare if bare != name else bare.upper() if x % 2 else None

    @staticmethod
    def titles_added(name: str, x: int, female: bool, year: int) -> str | None:
        bare = strip_titles(name)
        titled = add_titles(bare, female, True, min(year, 1985), x)
        return titled if titled != name else None

    @staticmethod
    def capitals_spaces(name: str, x: int, female: bool, year: int) -> str | None:
        words = strip_titles(name).split()
        text = ("  " if x % 2 else " ").join(words)
        return (text.upper() if x % 3 else text.lower()) + (" " if x % 5 == 0 else "")

    @staticmethod
    def muhammad(name: str, x: int, female: bool, year: int) -> str | None:
        words = _parts(name)
        for i, w in enumerate(words):
            if w in _MUHAMMAD_FORMS:
                forms = [f for f in _MUHAMMAD_FORMS if f != w and (i == 0 or f != "M.")]
                words[i] = forms[x % len(forms)]
                return " ".join(words)
        return None

    @staticmethod
    def old_spelling(name: str, x: int, female: bool, year: int) -> str | None:
        return _old_spelling(strip_titles(name))

    @staticmethod
    def spacing(name: str, x: int, female: bool, year: int) -> str | None:
        words = _parts(name)
        for i, w in enumerate(words):
            for prefix in _SPLITTABLE:
                if w.startswith(prefix) and len(w) >= len(prefix) + 3:
                    rest = w[len(prefix):]
                    return " ".join(words[:i] + [prefix, rest.capitalize()] + words[i + 1:])
        full = [i for i, w in enumerate(words) if not w.endswith(".")]
        if len(words) == 2 and len(full) == 2:
            return words[0] + words[1].lower()
        return None

    @staticmethod
    def typo(name: str, x: int, female: bool, year: int) -> str | None:
        words = _parts(name)
        long_ = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        if not long_:
            return None
        i = long_[x % len(long_)]
        words[i] = _typo(words[i], x // len(long_))
        return " ".join(words)

    @staticmethod
    def initial(name: str, x: int, female: bool, year: int) -> str | None:
        words = _parts(name)
        given = [i for i, w in enumerate(words[:-1]) if len(w) >= 3 and w.isalpha()]
        if len(words) < 2 or not given:
            return None
        i = given[x % len(given)]
        words[i] = words[i][0] + "."
        return " ".join(words)


_APPLIERS: Final = MappingProxyType({
    "titles_removed": _Variation.titles_removed, "titles_added": _Variation.titles_added,
    "capitals_spaces": _Variation.capitals_spaces, "muhammad": _Variation.muhammad,
    "old_spelling": _Variation.old_spelling, "spacing": _Variation.spacing,
    "typo": _Variation.typo, "initial": _Variation.initial,
})


def _positive(name: str, kind: str, x: int, female: bool, year: int) -> str | None:
    """The name written in the way of ``kind``, or None if that kind does not apply to it."""
    if kind != "combined":
        return _APPLIERS[kind](name, x, female, year)
    first = _Variation.titles_removed(name, x, female, year) or strip_titles(name)
    for second in ("muhammad", "spacing", "old_spelling", "typo"):
        if (second == "typo" or (x >> 3) % 3 == 0) and (out := _APPLIERS[second](
                first, x >> 5, female, year)) is not None:
            return out
    return None


def _negative(name: str, kind: str, x: int, female: bool) -> str | None:
    words = _parts(name)
    pool = _FEMALE_POOL if female else _MALE_POOL
    if kind == "extra_part":
        extra = pool[x % len(pool)]
        if extra in words:
            return None
        return " ".join([*words, extra])
    if kind == "missing_part":
        full = [i for i, w in enumerate(words) if len(w) >= 3 and not w.endswith(".")]
        if len(full) < 2:
            return None
        i = full[x % len(full)]
        return " ".join(words[:i] + words[i + 1:])
    if kind == "other_part":
        full = [i for i, w in enumerate(words) if len(w) >= 3 and not w.endswith(".")]
        if not full:
            return None
        i = full[x % len(full)]
        other = pool[(x // len(full)) % len(pool)]
        if other.lower() == words[i].lower():
            return None
        return " ".join(words[:i] + [other] + words[i + 1:])
    if kind == "twin":
        for i, w in enumerate(words):
            near = _NEAR.get(w, ())
            if near:
                return " ".join(words[:i] + [near[x % len(near)]] + words[i + 1:])
        return None
    raise ValueError(kind)


def _other_date(iso: str, x: int) -> str:
    """Another birth date close to ``iso``: a day, a month or a year off, or day and month
    swapped."""
    day = datetime.date.fromisoformat(iso)
    kind = x % 4
    if kind == 3 and day.day <= 12 and day.day != day.month:
        return day.replace(month=day.day, day=day.month).isoformat()
    if kind == 2:
        try:
            return day.replace(year=day.year + (1 if x & 16 else -1)).isoformat()
        except ValueError:  # 29 February
            return (day + datetime.timedelta(days=365)).isoformat()
    if kind == 1:
        return (day + datetime.timedelta(days=30 if x & 16 else -31)).isoformat()
    return (day + datetime.timedelta(days=1 if x & 16 else -1)).isoformat()


def _outside_nik(nik: str, iso: str, female: bool, x: int) -> str:
    """A valid NIK of the person's region and birth date that the register cannot hold."""
    return f"{nik[:6]}{nik_date(iso, female)}{1000 + x % 9000:04d}"


def fuzzy_cases(register: SyntheticRegister, rows: int, seed: int,
                positive_fraction: float = 0.4, background_fraction: float = 0.3
                ) -> Iterator[FuzzyCase]:
    """Stream ``rows`` labelled rows: positives, hard negatives and background, mixed.

    >>> cases = list(fuzzy_cases(SyntheticRegister(2000, seed=3), 200, seed=4))
    >>> sorted({c.expected_status for c in cases})
    ['KEMUNGKINAN_ASN', 'TIDAK_DITEMUKAN']
    >>> all(c.nik[12:] >= "1000" for c in cases if c.person >= 0)
    True
    """
    if not 0.0 <= positive_fraction + background_fraction <= 1.0 or len(register) == 0:
        raise ValueError("fractions must be between 0 and 1, and the register not empty")
    k_case = stream_key(seed, _P_FUZZY_CASE)
    k_person = stream_key(seed, _P_FUZZY_PERSON)
    positive_cut = round(positive_fraction * (1 << 32))
    background_cut = positive_cut + round(background_fraction * (1 << 32))
    background = kpm_batch(register, rows, seed=seed + 1, asn_fraction=0.0, invalid_fraction=0.0)
    for r in range(rows):
        ref = f"FZ-{r + 1:08d}"
        h = mix64(k_case + r * GOLDEN)
        u = h & 0xFFFFFFFF
        h >>= 32
        other = next(background)
        if positive_cut <= u < background_cut:
            yield FuzzyCase(ref, other.nik.strip(), other.nama, other.tanggal_lahir, NOT_FOUND,
                            "background", -1)
            continue
        base = mix64(k_person + r * GOLDEN)
        serial = base >> 48
        positive = u < positive_cut
        kinds = _POSITIVE_CUM if positive else _NEGATIVE_CUM
        names = POSITIVE_KINDS if positive else NEGATIVE_KINDS
        kind = names[bisect_right(kinds, h % kinds[-1])]
        x = h >> 8
        # the first of some register people (from a random one on) to whom the
        # kind applies: not every name has a Muhammad, a twin name or two parts
        for attempt in range(_ATTEMPTS):
            person_index = (base + attempt * _STEP) % len(register)
            person = register.row(person_index)
            dob = person.tanggal_lahir
            year = int(dob[:4])
            if positive:
                made = _positive(person.nama, kind, x, person.female, year)
            elif kind == "other_date":
                dob = _other_date(dob, x)
                made = _Variation.titles_removed(person.nama, x, person.female, year) or (
                    strip_titles(person.nama))
            else:
                made = _negative(person.nama, kind, x, person.female)
            if made is not None:
                break
        else:
            kind = "capitals_spaces" if positive else "other_date"
            if not positive:
                dob = _other_date(dob, x)
            made = _Variation.capitals_spaces(person.nama, x, person.female, year)
            assert made is not None
        nik = _outside_nik(person.nik, dob, person.female, serial)
        yield FuzzyCase(ref, nik, made, dob, FUZZY_STATUS if positive else NOT_FOUND, kind,
                        person_index)

