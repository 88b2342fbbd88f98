"""Indonesian personal names reduced to comparable tokens (for the fuzzy fallback).

Two records of one person rarely spell the name alike: SIASN writes
``Drs. H. Mochammad Soeharto, M.Si.`` where DTKS has ``MUHAMAD SUHARTO``.
:func:`normalise_name` removes what is not the name and maps spelling
variants to one *key* per name part, so that such records compare equal
token by token:

1. Unicode compatibility forms and accents are folded, case is folded,
   apostrophes are dropped (``Ma'ruf`` is ``maruf``).
2. Titles go: before the name the academic, religious and courtesy ones
   (``Prof. Dr. Drs. Dra. Ir. dr. drg. H. Hj. K.H. Ny. Raden ...``), after it
   the degrees (``S.Pd. S.Pd.I. S.Sos. S.E. S.H. M.Si. M.M. A.Md. Sp.PD. ...``,
   also behind a comma as registers write them). A title is recognised only
   where titles stand, so ``St.`` at the start is Sitti (a Bugis
   abbreviation) while ``S.T.`` after the name is a degree.
3. Connectors that some records carry and others omit go: ``bin``,
   ``binti``, ``br.``/``boru`` (Batak "daughter of"), and a Balinese ``I`` /
   ``Ni`` before the name.
4. Each remaining part is spelled in one way: the pre-1972 spelling is
   converted (``dj`` to ``j``, ``tj`` to ``c``, ``oe`` to ``u``: ``Tjahjadi``
   is ``Cahyadi``) and ``j`` and ``y`` are one letter (``Jajat`` is the old
   spelling of ``Yayat``, ``Djoko`` of ``Joko``), Arabic transliteration
   variants are merged (``ch``/``kh``/``h``, ``dh``/``d``, ``dz``/``z``,
   ``th``/``t``, ``ph``/``f``, ``q``/``k``), doubled letters are single and a
   final ``y`` after a consonant is ``i`` (``Rizky``, ``Rizki``). Every form
   of Muhammad (``Muhamad Mohammad Mochammad Moh. Muh. Mhd.``, and ``M.`` as
   the first part) becomes one key, ``Abd.`` is ``Abdul`` and a fused
   ``Abdurrahman`` is ``Abdul Rahman``.

The tokens are spelling *keys*, not names to show anyone: Muhammad's key is
``muhamad``. A part of one letter is an initial (``A. Setiawan``); the
scorer treats it as such.

>>> normalise_name("Dr. H. Mochammad Soeharto, S.Pd., M.Si.")
('muhamad', 'suharto')
>>> normalise_name("MUHAMAD  SUHARTO")
('muhamad', 'suharto')
>>> normalise_name("M. Yusuf") == normalise_name("Mohammad Joesoef")
True
>>> normalise_name("Hj. Siti Noerhayati, S.E.")
('siti', 'nurhayati')
>>> normalise_name("Ny. Sitti Nurhayati")
('siti', 'nurhayati')
>>> normalise_name("Rosmawati br. Sitompul")
('rosmawati', 'sitompul')
>>> normalise_name("Abdurrahman Wahid") == normalise_name("Abd. Rahman Wachid")
True
>>> normalise_name("St. Aminah, S.T.")
('siti', 'aminah')
>>> normalise_name("I Wayan Sudarsana, S.Pd.")
('wayan', 'sudarsana')
>>> normalise_name("Achmad Rizky") == normalise_name("Akhmad Rizki")
True
>>> normalise_name("A. Setiawan")
('a', 'setiawan')
>>> normalise_name("Prof. Dr. Ir. H.")
()
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Final

__all__ = [
    "DEGREES",
    "PREFIX_TITLES",
    "NameNormaliser",
    "canonical_part",
    "joined_key",
    "normalise_name",
]

#: titles written before a name (compared without dots, lower case)
PREFIX_TITLES: Final = frozenset({
    # academic and professional
    "prof", "dr", "drs", "dra", "ir", "drg", "drh", "apt",
    # religious: hajj, kyai haji, ustadz
    "h", "hj", "haji", "hajah", "hajjah", "kh", "ust", "ustadz", "ustaz", "ustadzah",
    # courtesy, as welfare records write them
    "ny", "nyonya", "tn", "tuan", "sdr", "sdri", "bpk", "bapak", "ibu",
    # Javanese nobility (Raden, Raden Roro, Raden Ajeng, Raden Mas)
    "raden", "rd", "rr", "ra", "rm",
    # the deceased
    "alm", "almh", "almarhum", "almarhumah",
})

#: degrees written after a name (compared without dots, lower case)
DEGREES: Final = frozenset({
    # Sarjana (bachelor)
    "spd", "spdi", "spdsd", "ssos", "se", "sh", "shi", "skom", "st", "sag", "sip", "skep",
    "ssi", "sp", "sap", "sak", "skm", "ss", "ssn", "spsi", "sfarm", "skes", "shut", "spt",
    "spi", "sth", "sked", "sgz", "str", "stp", "sikom", "sei", "sthi", "sphysio", "sds",
    "sstp", "sst", "sos", "sm",
    # Diploma (Ahli Madya)
    "amd", "amdkep", "amdkeb", "amdkes", "amdfarm", "amdak", "amdgz", "amk", "amkeb", "ama",
    "amdpd",
    # Magister and doctorates
    "msi", "mm", "mpd", "mh", "mkes", "mt", "mag", "map", "mkom", "me", "msc", "mba", "ma",
    "mpdi", "mhum", "mtp", "mak", "mars", "mkm", "mpsi", "msos", "mse", "ms", "mth", "msm",
    "phd", "dea",
    # professional and medical
    "ners", "ns", "apt", "lc", "bsc", "ba", "spa", "sppd", "spog", "spb", "spkj", "sprad",
    "spm", "spthtkl", "spp", "spjp", "span", "spn", "spkk", "spot", "spu", "mked", "ak", "cpa",
})

#: degrees that look like no name part, so they count without dots too ("SPd", "MSi")
_DOTLESS_DEGREES: Final = frozenset({
    "spd", "spdi", "spdsd", "ssos", "skom", "sag", "skep", "skm", "spsi", "sfarm", "skes",
    "shut", "sked", "sthi", "sei", "sikom", "sstp", "amd", "amdkep", "amdkeb", "amdkes",
    "amk", "msi", "mpd", "mkes", "mkom", "mhum", "mpdi", "phd", "mba", "msc", "bsc", "sppd",
    "spog", "spkj", "ners",
    # short ones that are no Indonesian name part either: "Ahmad Fauzi SE, MM"
    "se", "sh", "st", "mm", "mh", "mt", "sp", "sip",
})

#: connectors some records carry and others leave out
_CONNECTORS: Final = frozenset({"bin", "binti", "bt", "br", "boru"})

#: every spelling of Muhammad, as keys after :func:`canonical_part`'s spelling rules
_MUHAMMAD: Final = frozenset({
    "muhamad", "mohamad", "muhamed", "mohamed", "muhamat", "mohamat", "mokhamad",
    "muh", "moh", "mhd", "mhmd", "muhd", "mohd", "md",
})
_MUHAMMAD_KEY: Final = "muhamad"
#: Bugis abbreviations kept as written in registers, when they are the first part
_FIRST_PART_ABBREVIATIONS: Final = {"m": _MUHAMMAD_KEY, "st": "siti"}

_APOSTROPHES_RE: Final = re.compile(r"['`\u2018\u2019\u02bc\u00b4]")
_WORD_SPLIT_RE: Final = re.compile(r"[^a-z0-9.]+")
_PIECE_SPLIT_RE: Final = re.compile(r"[^a-z0-9]+")
_DOUBLE_RE: Final = re.compile(r"([a-z])\1+")
_FINAL_Y_RE: Final = re.compile(r"(?<=[^aeiou])y$")
# "Abdurrahman", "Abdussalam", "Abdullatif": abd + the article assimilated to
# the next consonant (a doubled letter) + the rest of the name ...
_ABDU_ASSIMILATED_RE: Final = re.compile(r"abdu([a-z])\1([a-z]{2,})$")
# ... and "Abdulkadir", "Abdulrahman": the article written as it is
_ABDUL_GLUED_RE: Final = re.compile(r"abdul([a-z]{3,})$")
_SPELLING: Final = (
    ("kh", "h"), ("ch", "h"), ("dh", "d"), ("dz", "z"), ("th", "t"), ("ph", "f"),
    ("q", "k"), ("ou", "u"), ("x", "ks"),
)


def _fold(text: str) -> str:
    """Compatibility forms, accents and case folded; apostrophes dropped."""
    if text.isascii():
        # most names: nothing to decompose, and casefold is lower
        return text.replace("'", "").replace("`", "").lower()
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _APOSTROPHES_RE.sub("", bare).casefold()


def canonical_part(part: str) -> tuple[str, ...]:
    """The spelling keys of one name part (lower-case ASCII letters and digits).

    Usually one key; two for a fused ``Abdurrahman`` (``abdul``, ``rahman``).
    ``Abdullah`` (Abd Allah) stays one name.

    >>> canonical_part("soekarno"), canonical_part("djoko"), canonical_part("tjahjadi")
    (('sukarno',), ('yoko',), ('cahyadi',))
    >>> canonical_part("mochammad"), canonical_part("muhammad"), canonical_part("moh")
    (('muhamad',), ('muhamad',), ('muhamad',))
    >>> canonical_part("ramadhan"), canonical_part("hafidz"), canonical_part("rizky")
    (('ramadan',), ('hafiz',), ('rizki',))
    >>> canonical_part("noer"), canonical_part("nour"), canonical_part("sitti")
    (('nur',), ('nur',), ('siti',))
    >>> canonical_part("abdurrahman"), canonical_part("abdulkadir"), canonical_part("abdullah")
    (('abdul', 'rahman'), ('abdul', 'kadir'), ('abdulah',))
    """
    # The old spelling (before 1972) wrote dj, tj, oe and j for today's j, c, u
    # and y. Nothing in a part tells reliably which spelling it is in (Jajat is
    # Yayat, Jani may be Yani), so j and y are one letter in the keys: dj goes
    # to j first, then every j is a y.
    key = part.replace("dj", "j").replace("tj", "c").replace("oe", "u").replace("j", "y")
    for old, new in _SPELLING:
        key = key.replace(old, new)
    # split before doubled letters go: they tell the assimilated article
    split: tuple[str, ...] = (key,)
    if key.startswith("abd"):
        assimilated = _ABDU_ASSIMILATED_RE.match(key)
        glued = _ABDUL_GLUED_RE.match(key)
        if assimilated is not None and assimilated.group(2) != "ah":
            split = ("abdul", assimilated.group(1) + assimilated.group(2))
        elif glued is not None and glued.group(1) != "lah":
            split = ("abdul", glued.group(1))
        elif key == "abd":
            split = ("abdul",)
    return tuple(_spell(k) for k in split)


def joined_key(first: str, second: str) -> str:
    """The key of two parts written as one (``Nur Hayati`` as ``Nurhayati``).

    The spelling rules run again over the joint, as they would on the part
    written as one: ``tika`` + ``astuti`` is ``tikastuti``.

    >>> joined_key("tika", "astuti"), joined_key("ninik", "handayani")
    ('tikastuti', 'ninihandayani')
    """
    return "".join(canonical_part(first + second))


def _spell(key: str) -> str:
    key = _DOUBLE_RE.sub(r"\1", key)
    key = _FINAL_Y_RE.sub("i", key)
    return _MUHAMMAD_KEY if key in _MUHAMMAD else key


def _bare(word: str) -> str:
    return _PIECE_SPLIT_RE.sub("", word)


def _is_degree(word: str) -> bool:
    bare = _bare(word)
    return bare in DEGREES and ("." in word or bare in _DOTLESS_DEGREES)


def normalise_name(text: str) -> tuple[str, ...]:
    """The spelling keys of a name's parts, in order, without titles (see the module).

    An empty tuple when nothing of a name is left (empty, or titles only).

    >>> normalise_name("  siti   AMINAH ")
    ('siti', 'aminah')
    >>> normalise_name("SITI-AMINAH")
    ('siti', 'aminah')
    >>> normalise_name("Ahmad Fauzi SPd")
    ('ahmad', 'fauzi')
    """
    return _normalise(text, canonical_part)


def _normalise(text: str, canonical: Callable[[str], tuple[str, ...]]) -> tuple[str, ...]:
    folded = _fold(text)
    parts: list[str] = []
    for segment_no, segment in enumerate(folded.split(",")):
        for word in _WORD_SPLIT_RE.split(segment):
            if not word.strip("."):
                continue
            if parts or segment_no > 0:
                # degrees follow the name; after a comma, nothing but them is expected
                if _is_degree(word):
                    continue
            elif _bare(word) in PREFIX_TITLES and _bare(word) not in _FIRST_PART_ABBREVIATIONS:
                continue
            for piece in _PIECE_SPLIT_RE.split(word):
                if not piece:
                    continue
                if not parts:
                    # "Dr.H.Ahmad" written without spaces: its titles are pieces
                    if piece in PREFIX_TITLES and "." in word and piece not in ("m", "st"):
                        continue
                    if piece in _FIRST_PART_ABBREVIATIONS:
                        parts.append(_FIRST_PART_ABBREVIATIONS[piece])
                        continue
                    if piece in ("i", "ni") and "." not in word:
                        continue  # Balinese I / Ni
                if piece in _CONNECTORS:
                    continue
                parts.extend(canonical(piece))
    return tuple(parts)


class NameNormaliser:
    """:func:`normalise_name` with a cache of its own, for the many names of one batch.

    The cache belongs to the instance, so the names it holds go with it: a
    matcher keeps one for a batch and drops it with the batch, and no name
    outlives the work it was needed for.

    >>> normalise = NameNormaliser(max_entries=2)
    >>> normalise("Drs. Agus Setiawan"), normalise("Agus Setiawan, S.Pd.")
    (('agus', 'setiawan'), ('agus', 'setiawan'))
    """

    def __init__(self, max_entries: int = 1 << 16) -> None:
        self._max = max_entries
        self._cache: dict[str, tuple[str, ...]] = {}
        self._parts: dict[str, tuple[str, ...]] = {}

    def __call__(self, text: str) -> tuple[str, ...]:
        found = self._cache.get(text)
        if found is None:
            found = _normalise(text, self.part)
            if len(self._cache) >= self._max:
                # a batch's names repeat in runs, not forever: forgetting all at
                # once costs less than keeping an order of use
                self._cache.clear()
            self._cache[text] = found
        return found

    def part(self, piece: str) -> tuple[str, ...]:
        """:func:`canonical_part`, cached: parts repeat far more than whole names."""
        found = self._parts.get(piece)
        if found is None:
            found = canonical_part(piece)
            if len(self._parts) >= self._max:
                self._parts.clear()
            self._parts[piece] = found
        return found

    def joined(self, first: str, second: str) -> str:
        """:func:`joined_key`, cached."""
        return "".join(self.part(first + second))
