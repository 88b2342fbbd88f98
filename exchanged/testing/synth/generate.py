"""Synthetic ASN register and KPM batches with ground truth.

Design constraints, and how they are met:

* **Deterministic from a seed, O(1) random access.**  Row ``i`` of a register
  is a pure function of ``(seed, i)``: a few 64-bit splitmix64 words of
  ``(seed, field group, i)`` decide everything that may repeat (region, name,
  job, titles).  No ``random.Random`` is built per row, and nothing depends on
  earlier rows, so a KPM batch can pick register people by index without
  holding the register.

* **Unique NIK and NIP by construction, not by remembering.**  The part of a
  person that must be unique, (birth date, gender, serial ``k``), is an
  *identity slot*.  Row ``i`` goes to slot ``(a*i + b) mod S`` with
  ``gcd(a, S) == 1`` (S odd, see ``_odd``): a bijection of ``[0, S)``, so
  distinct rows get distinct slots.  The NIK holds birth date, gender
  (day + 40) and serial ``k + 1``; the NIP holds birth date, gender and a
  serial that is a rotation of ``k`` inside the (date, gender) cell.  So two
  rows can share neither.  PNS and PPPK numbers cannot collide either: a PNS NIP has the
  CPNS month (01..12) in digits 13-14, a PPPK number the code 21.

* **Not-found NIKs provably outside the register.**  Register NIKs have a
  birth year in 1960..2003 *and* a serial of at most 999.  A not-found NIK
  either has a two-digit year that no register year has (born 1935..1959 or
  2004..2022), or a serial of 1000 or more.  Both parts are literal digits of
  the NIK, so no register NIK can equal one.

* **Streaming.**  Registers and batches are generators over indexes; the
  writers hand them to ``csv.writer.writerows`` row by row.  The only tables
  held are per-day and per-year constants (some tens of thousands of small
  tuples), whatever the number of rows.

Throughput: see ``SyntheticRegister`` and ``kpm_batch``.
"""

from __future__ import annotations

import csv
import datetime
import math
import os
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Final, TextIO

from exchanged.testing.synth.names import (
    INSTANSI_CENTRAL,
    INSTANSI_REGIONAL,
    STYLES,
    add_titles,
    compose_name,
    style_named,
)

__all__ = [
    "INVALID_KINDS",
    "KPM_COLUMNS",
    "KpmRow",
    "MAX_REGISTER_ROWS",
    "Person",
    "REGISTER_COLUMNS",
    "STATUS_ASN",
    "STATUS_INVALID",
    "STATUS_NOT_FOUND",
    "SyntheticRegister",
    "TRUTH_COLUMNS",
    "kpm_batch",
    "write_kpm_csv",
    "write_register_csv",
]

REGISTER_COLUMNS: Final = ("nip", "nik", "nama", "tanggal_lahir", "jenis_asn", "instansi")
KPM_COLUMNS: Final = ("ref", "nik", "nama", "tanggal_lahir")
TRUTH_COLUMNS: Final = (
    "ref",
    "nik",
    "expected_status",
    "expected_jenis_asn",
    "expected_instansi",
)

STATUS_ASN: Final = "ASN"
STATUS_NOT_FOUND: Final = "TIDAK_DITEMUKAN"
STATUS_INVALID: Final = "TIDAK_VALID"


@dataclass(frozen=True, slots=True)
class Person:
    """One civil servant of a synthetic register."""

    nik: str
    nip: str
    nama: str
    tanggal_lahir: str  # YYYY-MM-DD
    female: bool
    jenis_asn: str  # "PNS" or "PPPK"
    instansi: str


@dataclass(frozen=True, slots=True)
class KpmRow:
    """One row of a synthetic KPM batch with the answer it must get.

    ``nik`` is exactly what the sender wrote (possibly padded or broken);
    ``expected_jenis_asn`` and ``expected_instansi`` are empty unless
    ``expected_status`` is ``"ASN"``.
    """

    ref: str
    nik: str
    nama: str
    tanggal_lahir: str
    expected_status: str  # "ASN", "TIDAK_DITEMUKAN" or "TIDAK_VALID"
    expected_jenis_asn: str
    expected_instansi: str


# --------------------------------------------------------------------------
# Hashing.  splitmix64's finaliser is a bijection of 64-bit words with good
# avalanche, and costs three multiplications: cheap enough to call a few
# times per row in pure Python.
# --------------------------------------------------------------------------

_M64: Final = (1 << 64) - 1
_GOLDEN: Final = 0x9E3779B97F4A7C15
_MIX1: Final = 0xBF58476D1CE4E5B9
_MIX2: Final = 0x94D049BB133111EB


def _mix64(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * _MIX1) & _M64
    z = ((z ^ (z >> 27)) * _MIX2) & _M64
    return z ^ (z >> 31)


def _stream_key(seed: int, purpose: int) -> int:
    """A 64-bit key for one field group of one seed.

    The word for index ``i`` is then ``_mix64(key + i * _GOLDEN)``, which is
    splitmix64's ``i``-th output for that key: independent-looking per index.
    """
    return _mix64(_mix64(seed % (1 << 64)) + purpose * _GOLDEN)


def _odd(n: int) -> int:
    """The modulus for a permutation of [0, n): n itself if odd, else n + 1.

    With an even modulus and an odd stride, ``(a*i + b) mod n`` has the
    parity of ``i + b``: every field decoded from the low bit (gender!)
    would simply alternate with the row index.  An odd modulus breaks that;
    the one extra value is skipped by cycle-walking (apply the map again),
    which keeps the map a bijection of [0, n).
    """
    return n | 1


def _stride(n: int, key: int) -> int:
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


# --------------------------------------------------------------------------
# Regions.  Province codes are the real Kemendagri codes used in NIKs;
# regencies are numbered 01.. and cities 71.., as on real KTPs, with about the
# real number of each; a district count of 8..30 is derived per regency.
# The weights are population in hundred-thousands (2020 census, rounded),
# the styles the naming traditions of the people living there.
# --------------------------------------------------------------------------

_ProvinceRow = tuple[int, int, int, int, tuple[tuple[str, int], ...]]

_PROVINCES: Final[tuple[_ProvinceRow, ...]] = (
    # code, weight, kabupaten, kota, naming styles (style, weight)
    (11, 53, 18, 5, (("muslim", 80), ("javanese", 12), ("minang", 4), ("batak", 4))),  # Aceh
    (12, 148, 25, 8, (("batak", 55), ("javanese", 20), ("muslim", 12), ("chinese", 8),
                      ("minang", 5))),  # Sumatera Utara
    (13, 55, 12, 7, (("minang", 85), ("batak", 5), ("javanese", 5), ("muslim", 5))),  # Sumbar
    (14, 64, 10, 2, (("muslim", 40), ("minang", 25), ("javanese", 20), ("batak", 10),
                     ("chinese", 5))),  # Riau
    (15, 35, 9, 2, (("muslim", 45), ("javanese", 30), ("minang", 20), ("batak", 5))),  # Jambi
    (16, 85, 13, 4, (("muslim", 60), ("javanese", 30), ("chinese", 5),
                     ("sundanese", 5))),  # Sumatera Selatan
    (17, 20, 9, 1, (("muslim", 60), ("javanese", 25), ("minang", 15))),  # Bengkulu
    (18, 90, 13, 2, (("javanese", 55), ("muslim", 25), ("sundanese", 10), ("balinese", 5),
                     ("chinese", 5))),  # Lampung
    (19, 15, 6, 1, (("muslim", 60), ("chinese", 30), ("javanese", 10))),  # Bangka Belitung
    (21, 21, 5, 2, (("muslim", 45), ("chinese", 20), ("batak", 15), ("javanese", 10),
                    ("minang", 10))),  # Kepulauan Riau
    (31, 106, 1, 5, (("javanese", 30), ("muslim", 25), ("sundanese", 15), ("batak", 10),
                     ("chinese", 10), ("christian", 5), ("minang", 5))),  # DKI Jakarta
    (32, 483, 18, 9, (("sundanese", 75), ("javanese", 15), ("muslim", 10))),  # Jawa Barat
    (33, 365, 29, 6, (("javanese", 90), ("muslim", 7), ("chinese", 3))),  # Jawa Tengah
    (34, 37, 4, 1, (("javanese", 90), ("muslim", 5), ("christian", 5))),  # DI Yogyakarta
    (35, 410, 29, 9, (("javanese", 80), ("muslim", 15), ("chinese", 5))),  # Jawa Timur
    (36, 119, 4, 4, (("sundanese", 50), ("muslim", 30), ("javanese", 20))),  # Banten
    (51, 43, 8, 1, (("balinese", 85), ("javanese", 10), ("muslim", 5))),  # Bali
    (52, 53, 8, 2, (("muslim", 85), ("balinese", 10), ("javanese", 5))),  # NTB
    (53, 53, 21, 1, (("christian", 85), ("muslim", 10), ("javanese", 5))),  # NTT
    (61, 54, 12, 2, (("muslim", 40), ("christian", 25), ("chinese", 20),
                     ("javanese", 15))),  # Kalimantan Barat
    (62, 27, 13, 1, (("muslim", 40), ("christian", 30), ("javanese", 30))),  # Kalteng
    (63, 41, 11, 2, (("muslim", 80), ("javanese", 20))),  # Kalimantan Selatan
    (64, 38, 7, 3, (("muslim", 35), ("javanese", 30), ("bugis", 25),
                    ("christian", 10))),  # Kalimantan Timur
    (65, 7, 4, 1, (("bugis", 35), ("muslim", 35), ("christian", 20),
                   ("javanese", 10))),  # Kalimantan Utara
    (71, 26, 11, 4, (("christian", 80), ("muslim", 15), ("chinese", 5))),  # Sulawesi Utara
    (72, 30, 12, 1, (("muslim", 50), ("bugis", 30), ("christian", 20))),  # Sulawesi Tengah
    (73, 91, 21, 3, (("bugis", 80), ("muslim", 10), ("christian", 10))),  # Sulawesi Selatan
    (74, 26, 15, 2, (("muslim", 50), ("bugis", 40), ("javanese", 10))),  # Sulawesi Tenggara
    (75, 12, 5, 1, (("muslim", 90), ("bugis", 10))),  # Gorontalo
    (76, 14, 6, 0, (("bugis", 60), ("muslim", 40))),  # Sulawesi Barat
    (81, 18, 9, 2, (("christian", 55), ("muslim", 45))),  # Maluku
    (82, 13, 8, 2, (("muslim", 75), ("christian", 25))),  # Maluku Utara
    # Papua: NIKs keep the code they were issued with, so the pre-2022 codes
    # (91 Papua Barat, 94 Papua) and the 2022 code 92 all occur.
    (91, 11, 12, 1, (("christian", 70), ("muslim", 15), ("javanese", 10), ("bugis", 5))),
    (92, 6, 7, 0, (("christian", 75), ("muslim", 15), ("bugis", 10))),
    (94, 43, 28, 1, (("christian", 80), ("javanese", 10), ("bugis", 5), ("muslim", 5))),
)


def _cumulative(weights: Iterable[int]) -> tuple[int, ...]:
    total = 0
    out: list[int] = []
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)


_TWO_DIGITS: Final = tuple(f"{n:02d}" for n in range(100))
_PROV_CUM: Final = _cumulative(p[1] for p in _PROVINCES)
_PROV_TOTAL: Final = _PROV_CUM[-1]


def _regencies(code: int, kabupaten: int, kota: int) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for reg in [*range(1, kabupaten + 1), *range(71, 71 + kota)]:
        code4 = f"{code:02d}{reg:02d}"
        # Knuth's multiplicative hash: a fixed, varied district count per
        # regency without another table.
        districts = 8 + (int(code4) * 2654435761 >> 7) % 23
        out.append((code4, districts))
    return tuple(out)


_PROV_REGENCIES: Final = tuple(_regencies(p[0], p[2], p[3]) for p in _PROVINCES)
_PROV_STYLE_CUM: Final = tuple(_cumulative(w for _, w in p[4]) for p in _PROVINCES)
_PROV_STYLE_IDS: Final = tuple(tuple(style_named(s) for s, _ in p[4]) for p in _PROVINCES)


def _region(x: int) -> tuple[str, int, int]:
    """Pick (six-digit region code, province index, unused bits) from ``x``."""
    p = bisect_right(_PROV_CUM, x % _PROV_TOTAL)
    x //= _PROV_TOTAL
    regencies = _PROV_REGENCIES[p]
    code4, districts = regencies[x % len(regencies)]
    x //= len(regencies)
    district = 1 + x % districts
    return code4 + _TWO_DIGITS[district], p, x // districts


def _name(province: int, female: bool, x: int) -> tuple[str, bool]:
    """A name typical of the province; also whether the person is Muslim."""
    cum = _PROV_STYLE_CUM[province]
    s = bisect_right(cum, x % cum[-1])
    return compose_name(STYLES[_PROV_STYLE_IDS[province][s]], female, x // cum[-1])


# --------------------------------------------------------------------------
# Birth dates.
# --------------------------------------------------------------------------

# (ISO date, YYYYMMDD, NIK DDMMYY for a man, for a woman, year, month)
_Day = tuple[str, str, str, str, int, int]


def _day_table(first_year: int, last_year: int) -> tuple[tuple[_Day, ...], tuple[int, ...]]:
    """Every day of the years, preformatted; and the index of each 1 January.

    Preformatting once (some 30,000 days) saves a date object and several
    string formats per generated row.
    """
    days: list[_Day] = []
    year_base: list[int] = []
    d = datetime.date(first_year, 1, 1)
    one = datetime.timedelta(days=1)
    while d.year <= last_year:
        if d.month == 1 and d.day == 1:
            year_base.append(len(days))
        mmyy = f"{d.month:02d}{d.year % 100:02d}"
        days.append(
            (
                d.isoformat(),
                f"{d.year:04d}{d.month:02d}{d.day:02d}",
                f"{d.day:02d}{mmyy}",
                f"{d.day + 40:02d}{mmyy}",
                d.year,
                d.month,
            )
        )
        d += one
    return tuple(days), tuple(year_base)


def _iso_days(first_year: int, last_year: int) -> tuple[str, ...]:
    """Every day of the years as YYYY-MM-DD: the lean table for KPM batches.

    One short string per day (about 2 MB for 88 years) rather than the
    register's preformatted tuples (three times that): KPM people span twice
    as many years, and a batch should stay small next to the rows it streams.
    """
    first = datetime.date(first_year, 1, 1).toordinal()
    last = datetime.date(last_year, 12, 31).toordinal()
    return tuple(datetime.date.fromordinal(n).isoformat() for n in range(first, last + 1))


def _nik_date(iso: str, female: bool) -> str:
    """The NIK's DDMMYY for a YYYY-MM-DD birth date, with 40 added for women."""
    day = _TWO_DIGITS[int(iso[8:10]) + 40] if female else iso[8:10]
    return day + iso[5:7] + iso[2:4]


def _days_in_year(year: int) -> int:
    return 366 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 365


# ASN are born 1960..2003.  The weights follow the age pyramid of the civil
# service: few left from the early 1960s (retirement age 58-60), a broad
# middle born 1970-1990, thinning again for the newest recruits.
_ASN_FIRST_YEAR: Final = 1960
_ASN_LAST_YEAR: Final = 2003
_ASN_YEAR_WEIGHTS: Final = (
    2, 3, 5, 8, 12, 18, 24, 30, 36, 40,  # 1960-1969
    44, 46, 48, 50, 52, 54, 56, 58, 60, 62,  # 1970-1979
    64, 66, 68, 70, 72, 74, 74, 72, 70, 66,  # 1980-1989
    62, 58, 54, 50, 46, 42, 36, 30, 24, 18,  # 1990-1999
    12, 8, 5, 3,  # 2000-2003
)
assert len(_ASN_YEAR_WEIGHTS) == _ASN_LAST_YEAR - _ASN_FIRST_YEAR + 1
# Register serials stay at or below this; the not-found space uses the rest.
_ASN_MAX_SERIAL: Final = 999
# Identity slots per row: room to spare keeps serials small but varied.
_SLOT_SLACK: Final = 1.15
_ASN_WEIGHTED_CELLS: Final = sum(
    w * 2 * _days_in_year(y)
    for y, w in zip(range(_ASN_FIRST_YEAR, _ASN_LAST_YEAR + 1), _ASN_YEAR_WEIGHTS, strict=True)
)
MAX_REGISTER_ROWS: Final = int(
    _ASN_MAX_SERIAL / max(_ASN_YEAR_WEIGHTS) * _ASN_WEIGHTED_CELLS / _SLOT_SLACK
)

# Age at the start of CPNS service, 19..40 (school leavers to late recruits).
_ENTRY_AGES: Final = tuple(range(19, 41))
_ENTRY_AGE_CUM: Final = _cumulative(
    (2, 3, 5, 7, 9, 10, 10, 10, 9, 8, 7, 6, 5, 5, 4, 3, 3, 2, 2, 2, 1, 1)
)
# CPNS appointments cluster in a few months (TMT 1 January, 1 March, ...).
_TMT_MONTHS: Final = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
_TMT_MONTH_CUM: Final = _cumulative((30, 6, 20, 8, 4, 6, 5, 4, 4, 5, 4, 4))
# The latest CPNS start month a register row may have (October 2025).
_LAST_START_YM: Final = 2025 * 12 + 9
# PPPK appointments by year: the first intake of 2019, then the large
# teacher and health-worker intakes of 2021-2024.
_PPPK_YEARS: Final = (2019, 2020, 2021, 2022, 2023, 2024, 2025)
_PPPK_YEAR_CUM: Final = _cumulative((5, 3, 20, 25, 20, 15, 12))
_PPPK_PERCENT: Final = 12
_TITLED_PER_MILLE: Final = 300

# Regional instansi by province index (empty where none is listed).
_REGIONAL_BY_PROVINCE: Final = tuple(
    tuple(name for code, name in INSTANSI_REGIONAL if code == p[0]) for p in _PROVINCES
)

_P_GEO: Final = 1
_P_NAME: Final = 2
_P_JOB: Final = 3
_P_PERM: Final = 4


class SyntheticRegister:
    """A deterministic synthetic ASN register of ``rows`` people.

    ``row(i)`` costs the same for any ``i``; nothing is stored per row.  NIKs
    are unique, and NIPs are unique, across the whole register (see the
    module docstring for why).  About 88% are PNS and 12% PPPK; about 30% of
    names carry titles.

    Measured on the development machine (CPython 3.11, one core): about
    135,000 rows/s generated and written to CSV by :func:`write_register_csv`,
    so 1,000,000 rows in about 7.5 s and 6,000,000 in about 45 s, in a
    process of 24 MiB.

    >>> register = SyntheticRegister(1000, seed=7)
    >>> len(register)
    1000
    >>> register.row(12) == SyntheticRegister(1000, seed=7).row(12)
    True
    >>> len(register.row(12).nik), len(register.row(12).nip)
    (16, 18)
    """

    __slots__ = (
        "_rows", "_seed", "_k_geo", "_k_name", "_k_job", "_a", "_b", "_slots", "_modulus",
        "_starts", "_ends", "_caps", "_year_base", "_days",
    )

    def __init__(self, rows: int, seed: int) -> None:
        if rows < 0:
            raise ValueError("rows must not be negative")
        if rows > MAX_REGISTER_ROWS:
            raise ValueError(
                f"a synthetic register holds at most {MAX_REGISTER_ROWS:,} rows "
                f"(NIP serials have three digits), not {rows:,}"
            )
        self._rows = rows
        self._seed = seed
        self._k_geo = _stream_key(seed, _P_GEO)
        self._k_name = _stream_key(seed, _P_NAME)
        self._k_job = _stream_key(seed, _P_JOB)

        # Slot space: per birth year, one cell per (day, gender), each with
        # room for `cap` serials; cap grows with the year's weight so birth
        # years follow the age pyramid.
        scale = rows * _SLOT_SLACK / _ASN_WEIGHTED_CELLS
        years = range(_ASN_FIRST_YEAR, _ASN_LAST_YEAR + 1)
        self._caps = tuple(max(1, math.ceil(w * scale)) for w in _ASN_YEAR_WEIGHTS)
        cells = (2 * _days_in_year(y) for y in years)
        self._ends = _cumulative(c * k for c, k in zip(cells, self._caps, strict=True))
        self._starts = (0, *self._ends[:-1])
        self._slots = self._ends[-1]
        self._modulus = _odd(self._slots)
        perm_key = _stream_key(seed, _P_PERM)
        self._a = _stride(self._modulus, perm_key)
        self._b = perm_key % self._modulus
        self._days, self._year_base = _day_table(_ASN_FIRST_YEAR, _ASN_LAST_YEAR)

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def seed(self) -> int:
        return self._seed

    def __len__(self) -> int:
        return self._rows

    def __repr__(self) -> str:
        return f"SyntheticRegister(rows={self._rows}, seed={self._seed})"

    def __iter__(self) -> Iterator[Person]:
        for i in range(self._rows):
            yield self.row(i)

    def row(self, i: int) -> Person:
        """The person at index ``i`` (0 <= i < rows)."""
        if not 0 <= i < self._rows:
            raise IndexError(f"row {i} is outside 0..{self._rows - 1}")
        nip, nik, nama, tanggal_lahir, jenis, instansi, female = self._fields(i)
        return Person(nik, nip, nama, tanggal_lahir, female, jenis, instansi)

    def _fields(self, i: int) -> tuple[str, str, str, str, str, str, bool]:
        """Row ``i`` in REGISTER_COLUMNS order, then the gender.

        A tuple rather than a Person so that the CSV writer skips building
        (and freezing) a dataclass per row.
        """
        # Identity slot -> birth year, (day, gender) cell and serial k.
        a, b, modulus = self._a, self._b, self._modulus
        s = (a * i + b) % modulus
        while s >= self._slots:  # at most the one padding value: see _odd
            s = (a * s + b) % modulus
        y = bisect_right(self._ends, s)
        cap = self._caps[y]
        # The cell comes from the high part of the offset, k from the low
        # part: neighbouring slots then share a birth date, not a serial.
        cell, k = divmod(s - self._starts[y], cap)
        female = bool(cell & 1)
        iso, ymd8, nik_male, nik_female, year, month = self._days[self._year_base[y] + (cell >> 1)]
        # The NIP serial is k rotated by a per-cell offset: still one-to-one
        # within the cell, but not simply the NIK serial again.
        nip_serial = (k + cell * 7919) % cap + 1

        g = _mix64(self._k_geo + i * _GOLDEN)
        region, province, g = _region(g)
        nik = f"{region}{nik_female if female else nik_male}{k + 1:04d}"

        gender_digit = "2" if female else "1"
        if g % 100 < _PPPK_PERCENT:
            g //= 100
            jenis = "PPPK"
            appointed = _PPPK_YEARS[bisect_right(_PPPK_YEAR_CUM, g % _PPPK_YEAR_CUM[-1])]
            g //= _PPPK_YEAR_CUM[-1]
            # At least 19 in the calendar year of appointment, hence 18 or
            # more on any day of it.
            earliest = max(_PPPK_YEARS[0], year + 19)
            if appointed < earliest:
                appointed = earliest + g % (_PPPK_YEARS[-1] + 1 - earliest)
            nip = f"{ymd8}{appointed}21{gender_digit}{nip_serial:03d}"
        else:
            g //= 100
            jenis = "PNS"
            age = _ENTRY_AGES[bisect_right(_ENTRY_AGE_CUM, g % _ENTRY_AGE_CUM[-1])]
            g //= _ENTRY_AGE_CUM[-1]
            tmt = _TMT_MONTHS[bisect_right(_TMT_MONTH_CUM, g % _TMT_MONTH_CUM[-1])]
            g //= _TMT_MONTH_CUM[-1]
            start = (year + age) * 12 + tmt - 1
            # Months counted from year 0; the month after the 18th birthday
            # month is the earliest start that is certainly at age 18.
            earliest = year * 12 + month - 1 + 18 * 12 + 1
            if start < earliest:
                start = earliest + g % 12
            elif start > _LAST_START_YM:
                start = earliest + g % (_LAST_START_YM - earliest + 1)
            nip = f"{ymd8}{start // 12:04d}{start % 12 + 1:02d}{gender_digit}{nip_serial:03d}"

        nama, muslim = _name(province, female, _mix64(self._k_name + i * _GOLDEN))

        j = _mix64(self._k_job + i * _GOLDEN)
        if j % 1000 < _TITLED_PER_MILLE:
            nama = add_titles(nama, female, muslim, year, j // 1000)
        j >>= 40  # add_titles used the low bits
        pick = j % 100
        j //= 100
        regional = _REGIONAL_BY_PROVINCE[province]
        # About three quarters of ASN work for regional governments, mostly
        # in their own province.
        if pick < 65 and regional:
            instansi = regional[j % len(regional)]
        elif pick < 75:
            instansi = INSTANSI_REGIONAL[j % len(INSTANSI_REGIONAL)][1]
        else:
            instansi = INSTANSI_CENTRAL[j % len(INSTANSI_CENTRAL)]
        return nip, nik, nama, iso, jenis, instansi, female


# --------------------------------------------------------------------------
# KPM batches.
# --------------------------------------------------------------------------

# KPM people (family members of every age): born 1935..2022.
_KPM_FIRST_YEAR: Final = 1935
_KPM_LAST_YEAR: Final = 2022
# Not-found serials for people born in the register's years start here,
# above every register serial.
_NOT_FOUND_MIN_SERIAL: Final = _ASN_MAX_SERIAL + 1
_NOT_FOUND_MAX_SPAN: Final = 9999 - _ASN_MAX_SERIAL
_PADDED_PER_MILLE: Final = 4
_PADDINGS: Final = ((" ", ""), ("", " "), (" ", " "), ("  ", ""), ("", "   "))

# Mistakes found in real submissions, with relative frequencies.
_INVALID_KINDS: Final = (
    ("space_inside", 8),
    ("grouped_spaces", 3),
    ("dash_inside", 6),
    ("dot_inside", 5),
    ("nbsp_inside", 2),
    ("digits_15", 8),
    ("digits_17", 8),
    ("letter_o_for_0", 6),
    ("letter_l_for_1", 3),
    ("fullwidth_digit", 5),
    ("february_31", 4),
    ("february_30", 4),
    ("february_29_not_leap", 4),
    ("day_72", 4),
    ("day_32", 2),
    ("day_00", 2),
    ("month_13", 3),
    ("month_00", 2),
    ("serial_0000", 4),
    ("district_00", 4),
    ("regency_00", 1),
    ("empty", 5),
    ("blank", 2),
    ("excel_scientific", 3),
    ("excel_float", 2),
    ("excel_apostrophe", 2),
)
INVALID_KINDS: Final = tuple(kind for kind, _ in _INVALID_KINDS)
_INVALID_CUM: Final = _cumulative(w for _, w in _INVALID_KINDS)

_P_CATEGORY: Final = 11
_P_KPM_GEO: Final = 12
_P_KPM_NAME: Final = 13
_P_KPM_ASN: Final = 14
_P_KPM_NOT_FOUND: Final = 15


def _invalid_nik(kind: str, region: str, iso: str, female: bool, serial: int, x: int) -> str:
    """A NIK with one realistic mistake of the given kind; never valid.

    Each branch says why the result cannot pass the structural check.
    """
    date = _nik_date(iso, female)
    valid = f"{region}{date}{serial:04d}"
    pos = 1 + x % 15  # an inner position: never at either end
    x //= 15
    if kind == "space_inside":  # a non-digit inside
        return valid[:pos] + " " + valid[pos:]
    if kind == "grouped_spaces":  # as printed on some forms
        return " ".join(valid[n : n + 4] for n in range(0, 16, 4))
    if kind == "dash_inside":
        return valid[:pos] + "-" + valid[pos:]
    if kind == "dot_inside":
        return valid[:pos] + "." + valid[pos:]
    if kind == "nbsp_inside":  # copied from a web page or a word processor
        return valid[:pos] + "\u00a0" + valid[pos:]
    if kind == "digits_15":  # a digit lost
        return valid[:pos] + valid[pos + 1 :]
    if kind == "digits_17":  # a digit typed twice
        return valid[:pos] + valid[pos] + valid[pos:]
    if kind in ("letter_o_for_0", "letter_l_for_1"):
        # The month (01..12) always holds a 0 or a 1, so one of the two
        # replacements always applies.
        order = (("0", "O"), ("1", "l")) if kind == "letter_o_for_0" else (("1", "l"), ("0", "O"))
        for digit, letter in order:
            at = valid.find(digit, pos)
            if at < 0:
                at = valid.find(digit)
            if at >= 0:
                return valid[:at] + letter + valid[at + 1 :]
        raise AssertionError("unreachable: a NIK month holds a 0 or a 1")
    if kind == "fullwidth_digit":  # IME input: looks like a digit, is not ASCII
        if x % 10 == 0:
            return "".join(chr(0xFF10 + int(c)) for c in valid)
        return valid[:pos] + chr(0xFF10 + int(valid[pos])) + valid[pos + 1 :]
    yy = iso[2:4]
    mm = iso[5:7]
    day_offset = 40 if female else 0
    if kind == "february_31":
        return f"{region}{31 + day_offset}02{yy}{serial:04d}"
    if kind == "february_30":
        return f"{region}{30 + day_offset}02{yy}{serial:04d}"
    if kind == "february_29_not_leap":
        # YY not divisible by 4: neither 19YY nor 20YY is a leap year.
        year2 = int(yy)
        if year2 % 4 == 0:
            year2 = (year2 + 1) % 100
        return f"{region}{29 + day_offset}02{year2:02d}{serial:04d}"
    if kind == "day_72":  # a woman's day 32: +40 applied to a wrong day
        return f"{region}72{mm}{yy}{serial:04d}"
    if kind == "day_32":
        return f"{region}32{mm}{yy}{serial:04d}"
    if kind == "day_00":  # day 0, or day 0 + 40 for a woman
        return f"{region}{day_offset:02d}{mm}{yy}{serial:04d}"
    if kind == "month_13":
        return f"{region}{date[:2]}13{yy}{serial:04d}"
    if kind == "month_00":
        return f"{region}{date[:2]}00{yy}{serial:04d}"
    if kind == "serial_0000":
        return f"{region}{date}0000"
    if kind == "district_00":
        return f"{region[:4]}00{date}{serial:04d}"
    if kind == "regency_00":
        return f"{region[:2]}00{region[4:]}{date}{serial:04d}"
    if kind == "empty":
        return ""
    if kind == "blank":  # only spaces: empty once trimmed
        return " " * (1 + x % 3)
    if kind == "excel_scientific":  # a spreadsheet turned it into a number
        return f"{float(valid):.5E}"
    if kind == "excel_float":  # ... or a float written back as text
        return valid + ".0"
    if kind == "excel_apostrophe":  # the text marker typed into the cell
        return "'" + valid
    raise ValueError(f"unknown kind of invalid NIK: {kind}")


class _KpmPlan:
    """Everything a batch needs that does not depend on the row."""

    __slots__ = (
        "register", "rows", "asn_cut", "invalid_cut", "k_cat", "k_geo", "k_name",
        "asn_a", "asn_b", "asn_n", "asn_modulus", "nf_a", "nf_b", "nf_slots", "nf_modulus",
        "nf_span", "days",
    )

    def __init__(
        self,
        register: SyntheticRegister,
        rows: int,
        seed: int,
        asn_fraction: float,
        invalid_fraction: float,
    ) -> None:
        self.register = register
        self.rows = rows
        self.asn_cut = round(asn_fraction * (1 << 32))
        self.invalid_cut = round(invalid_fraction * (1 << 32))
        self.k_cat = _stream_key(seed, _P_CATEGORY)
        self.k_geo = _stream_key(seed, _P_KPM_GEO)
        self.k_name = _stream_key(seed, _P_KPM_NAME)
        # ASN rows walk a permutation of the register, so no register
        # person appears twice until the batch has used them all.
        asn_key = _stream_key(seed, _P_KPM_ASN)
        self.asn_n = max(1, len(register))
        self.asn_modulus = _odd(self.asn_n)
        self.asn_a = _stride(self.asn_modulus, asn_key)
        self.asn_b = asn_key % self.asn_modulus
        # Not-found slots: (day, gender) cells times `span` serials, again
        # walked by a permutation, so not-found NIKs are unique too.
        self.days = _iso_days(_KPM_FIRST_YEAR, _KPM_LAST_YEAR)
        cells = 2 * len(self.days)
        self.nf_span = max(20, math.ceil(rows * _SLOT_SLACK / cells))
        if self.nf_span > _NOT_FOUND_MAX_SPAN:
            raise ValueError(f"a synthetic KPM batch of {rows:,} rows is too large")
        self.nf_slots = cells * self.nf_span
        self.nf_modulus = _odd(self.nf_slots)
        nf_key = _stream_key(seed, _P_KPM_NOT_FOUND)
        self.nf_a = _stride(self.nf_modulus, nf_key)
        self.nf_b = nf_key % self.nf_modulus

    def generate(self) -> Iterator[KpmRow]:
        register = self.register
        days = self.days
        asn_count = 0
        not_found_count = 0
        asn_cut = self.asn_cut
        invalid_end = self.asn_cut + self.invalid_cut
        for r in range(self.rows):
            ref = f"KPM-{r + 1:09d}"
            h = _mix64(self.k_cat + r * _GOLDEN)
            u = h & 0xFFFFFFFF
            h >>= 32
            if u < asn_cut:
                index = (self.asn_a * asn_count + self.asn_b) % self.asn_modulus
                while index >= self.asn_n:  # see _odd
                    index = (self.asn_a * index + self.asn_b) % self.asn_modulus
                # Past the end of the register, start over.
                asn_count = (asn_count + 1) % self.asn_n
                nip, nik, nama, tanggal, jenis, instansi, _ = register._fields(index)
                if h % 1000 < _PADDED_PER_MILLE:
                    left, right = _PADDINGS[(h // 1000) % len(_PADDINGS)]
                    nik = left + nik + right
                yield KpmRow(ref, nik, nama, tanggal, STATUS_ASN, jenis, instansi)
                continue

            g = _mix64(self.k_geo + r * _GOLDEN)
            region, province, g = _region(g)
            if u < invalid_end:
                day = days[g % len(days)]
                g //= len(days)
                female = bool(g & 1)
                g >>= 1
                serial = 1 + g % 9999
                g //= 9999
                kind = INVALID_KINDS[bisect_right(_INVALID_CUM, g % _INVALID_CUM[-1])]
                g //= _INVALID_CUM[-1]
                nik = _invalid_nik(kind, region, day, female, serial, g)
                status = STATUS_INVALID
            else:
                s = (self.nf_a * not_found_count + self.nf_b) % self.nf_modulus
                while s >= self.nf_slots:  # see _odd
                    s = (self.nf_a * s + self.nf_b) % self.nf_modulus
                not_found_count += 1
                cell, k = divmod(s, self.nf_span)
                day = days[cell >> 1]
                female = bool(cell & 1)
                year = int(day[:4])
                # The disjointness argument of the module docstring.
                if _ASN_FIRST_YEAR <= year <= _ASN_LAST_YEAR:
                    serial = _NOT_FOUND_MIN_SERIAL + k
                else:
                    serial = 1 + k
                nik = f"{region}{_nik_date(day, female)}{serial:04d}"
                if h % 1000 < _PADDED_PER_MILLE:
                    left, right = _PADDINGS[(h // 1000) % len(_PADDINGS)]
                    nik = left + nik + right
                status = STATUS_NOT_FOUND
            nama, muslim = _name(province, female, _mix64(self.k_name + r * _GOLDEN))
            # Hajj titles are common in villages too; degrees much less so.
            if muslim and day < "1975" and (h >> 20) % 100 < 4:
                nama = ("Hj. " if female else "H. ") + nama
            yield KpmRow(ref, nik, nama, day, status, "", "")


def kpm_batch(
    register: SyntheticRegister,
    rows: int,
    seed: int,
    asn_fraction: float = 0.03,
    invalid_fraction: float = 0.01,
) -> Iterator[KpmRow]:
    """Stream a synthetic KPM batch of ``rows`` rows with its ground truth.

    Each row is, independently and at random, an ASN from ``register`` (with
    probability ``asn_fraction``; its own nama and tanggal_lahir), a row
    with an invalid NIK (``invalid_fraction``), or a person who is not in
    the register.  ASN rows take distinct register people until all are
    used.  A few ASN and not-found NIKs have spaces around them: still
    valid, their status is that of the trimmed NIK.

    Measured on the development machine (CPython 3.11, one core): about
    120,000 rows/s generated and written with the truth file by
    :func:`write_kpm_csv` (about 145,000 rows/s without it).

    >>> rows = list(kpm_batch(SyntheticRegister(100, seed=1), 5, seed=2))
    >>> [row.ref for row in rows]
    ['KPM-000000001', 'KPM-000000002', 'KPM-000000003', 'KPM-000000004', 'KPM-000000005']
    """
    if rows < 0:
        raise ValueError("rows must not be negative")
    if not (0.0 <= asn_fraction <= 1.0 and 0.0 <= invalid_fraction <= 1.0):
        raise ValueError("asn_fraction and invalid_fraction must be between 0 and 1")
    if asn_fraction + invalid_fraction > 1.0:
        raise ValueError("asn_fraction + invalid_fraction must not exceed 1")
    if asn_fraction > 0.0 and len(register) == 0:
        raise ValueError("an empty register cannot provide ASN rows")
    # Built here, not inside the generator, so that bad arguments fail at
    # the call rather than at the first next().
    return _KpmPlan(register, rows, seed, asn_fraction, invalid_fraction).generate()


# --------------------------------------------------------------------------
# Writers.
# --------------------------------------------------------------------------

StrPath = str | os.PathLike[str]


def _open_private(path: StrPath) -> TextIO:
    """Open for writing a file only its owner can read: synthetic data is
    handled like the real thing, so tests exercise the same file modes."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        # O_CREAT's mode does not apply to a file that already existed.
        os.fchmod(fd, 0o600)
        return open(fd, "w", encoding="utf-8", newline="", buffering=1 << 20)
    except BaseException:
        os.close(fd)
        raise


def write_register_csv(path: StrPath, register: SyntheticRegister, *,
                       functional_positions: bool = False) -> int:
    """Write the register as CSV (REGISTER_COLUMNS); return the row count.

    With ``functional_positions`` the rows also carry each person's
    functional position (``jabatan, jenjang_jabatan, unit_kerja,
    tmt_jabatan``, empty for those who hold none; see
    :mod:`exchanged.testing.synth.jabfung`), as the register of the
    jabfung-integration flow needs.
    """
    with _open_private(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        fields = register._fields
        if not functional_positions:
            writer.writerow(REGISTER_COLUMNS)
            writer.writerows(fields(i)[:6] for i in range(len(register)))
            return len(register)
        # imported here: jabfung builds on this module
        from exchanged.testing.synth.jabfung import FUNCTIONAL_COLUMNS, functional_position

        writer.writerow(REGISTER_COLUMNS + FUNCTIONAL_COLUMNS)
        writer.writerows(fields(i)[:6] + functional_position(register, i).fields()
                         for i in range(len(register)))
    return len(register)


def write_kpm_csv(
    path: StrPath,
    rows: Iterable[KpmRow],
    columns: Sequence[str] = ("ref", "nik"),
    truth_path: StrPath | None = None,
) -> int:
    """Write a KPM batch as CSV and, if asked, its ground truth beside it.

    ``columns`` is any non-empty subset of KPM_COLUMNS in any order.  The
    truth file has TRUTH_COLUMNS, row for row in the same order.  Returns
    the number of rows written (the header not counted).
    """
    columns = tuple(columns)
    unknown = [c for c in columns if c not in KPM_COLUMNS]
    if not columns or unknown or len(set(columns)) != len(columns):
        raise ValueError(
            f"columns must be distinct names from {', '.join(KPM_COLUMNS)}; got {columns!r}"
        )
    getters = [attrgetter(c) for c in columns]
    truth_get = attrgetter(*TRUTH_COLUMNS)
    count = 0
    with _open_private(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        if truth_path is None:
            for row in rows:
                writer.writerow([get(row) for get in getters])
                count += 1
            return count
        with _open_private(truth_path) as truth_stream:
            truth = csv.writer(truth_stream, lineterminator="\n")
            truth.writerow(TRUTH_COLUMNS)
            for row in rows:
                writer.writerow([get(row) for get in getters])
                truth.writerow(truth_get(row))
                count += 1
    return count
