"""Synthetic KPM batches drawn from a synthetic register, with the answer each row must get.

* **Not-found NIKs provably outside the register.**  Register NIKs have a
  birth year in 1960..2003 *and* a serial of at most 999.  A not-found NIK
  either has a two-digit year that no register year has (born 1935..1959 or
  2004..2022), or a serial of 1000 or more.  Both parts are literal digits of
  the NIK, so no register NIK can equal one.

* **Streaming.**  A batch is a generator over row indexes: it holds a table of
  days and a few permutation constants, whatever the number of rows.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from exchanged.testing.synth.dates import iso_days, nik_date
from exchanged.testing.synth.invalid import INVALID_CUM, INVALID_KINDS, invalid_nik
from exchanged.testing.synth.mixing import GOLDEN, mix64, odd, stream_key, stride
from exchanged.testing.synth.regions import pick_region, province_name
from exchanged.testing.synth.register import (
    ASN_FIRST_YEAR,
    ASN_LAST_YEAR,
    ASN_MAX_SERIAL,
    SLOT_SLACK,
    SyntheticRegister,
)

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


# KPM people (family members of every age): born 1935..2022.
_KPM_FIRST_YEAR: Final = 1935
_KPM_LAST_YEAR: Final = 2022
# Not-found serials for people born in the register's years start here,
# above every register serial.
_NOT_FOUND_MIN_SERIAL: Final = ASN_MAX_SERIAL + 1
_NOT_FOUND_MAX_SPAN: Final = 9999 - ASN_MAX_SERIAL
_PADDED_PER_MILLE: Final = 4
_PADDINGS: Final = ((" ", ""), ("", " "), (" ", " "), ("  ", ""), ("", "   "))

_P_CATEGORY: Final = 11
_P_KPM_GEO: Final = 12
_P_KPM_NAME: Final = 13
_P_KPM_ASN: Final = 14
_P_KPM_NOT_FOUND: Final = 15


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
        self.k_cat = stream_key(seed, _P_CATEGORY)
        self.k_geo = stream_key(seed, _P_KPM_GEO)
        self.k_name = stream_key(seed, _P_KPM_NAME)
        # ASN rows walk a permutation of the register, so no register
        # person appears twice until the batch has used them all.
        asn_key = stream_key(seed, _P_KPM_ASN)
        self.asn_n = max(1, len(register))
        self.asn_modulus = odd(self.asn_n)
        self.asn_a = stride(self.asn_modulus, asn_key)
        self.asn_b = asn_key % self.asn_modulus
        # Not-found slots: (day, gender) cells times `span` serials, again
        # walked by a permutation, so not-found NIKs are unique too.
        self.days = iso_days(_KPM_FIRST_YEAR, _KPM_LAST_YEAR)
        cells = 2 * len(self.days)
        self.nf_span = max(20, math.ceil(rows * SLOT_SLACK / cells))
        if self.nf_span > _NOT_FOUND_MAX_SPAN:
            raise ValueError(f"a synthetic KPM batch of {rows:,} rows is too large")
        self.nf_slots = cells * self.nf_span
        self.nf_modulus = odd(self.nf_slots)
        nf_key = stream_key(seed, _P_KPM_NOT_FOUND)
        self.nf_a = stride(self.nf_modulus, nf_key)
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
            h = mix64(self.k_cat + r * GOLDEN)
            u = h & 0xFFFFFFFF
            h >>= 32
            if u < asn_cut:
                index = (self.asn_a * asn_count + self.asn_b) % self.asn_modulus
                while index >= self.asn_n:  # see odd
                    index = (self.asn_a * index + self.asn_b) % self.asn_modulus
                # Past the end of the register, start over.
                asn_count = (asn_count + 1) % self.asn_n
                nip, nik, nama, tanggal, jenis, instansi, _ = register.fields(index)
                if h % 1000 < _PADDED_PER_MILLE:
                    left, right = _PADDINGS[(h // 1000) % len(_PADDINGS)]
                    nik = left + nik + right
                yield KpmRow(ref, nik, nama, tanggal, STATUS_ASN, jenis, instansi)
                continue

            g = mix64(self.k_geo + r * GOLDEN)
            region, province, g = pick_region(g)
            if u < invalid_end:
                day = days[g % len(days)]
                g //= len(days)
                female = bool(g & 1)
                g >>= 1
                serial = 1 + g % 9999
                g //= 9999
                kind = INVALID_KINDS[bisect_right(INVALID_CUM, g % INVALID_CUM[-1])]
                g //= INVALID_CUM[-1]
                nik = invalid_nik(kind, region, day, female, serial, g)
                status = STATUS_INVALID
            else:
                s = (self.nf_a * not_found_count + self.nf_b) % self.nf_modulus
                while s >= self.nf_slots:  # see odd
                    s = (self.nf_a * s + self.nf_b) % self.nf_modulus
                not_found_count += 1
                cell, k = divmod(s, self.nf_span)
                day = days[cell >> 1]
                female = bool(cell & 1)
                year = int(day[:4])
                # The disjointness argument of the module docstring.
                if ASN_FIRST_YEAR <= year <= ASN_LAST_YEAR:
                    serial = _NOT_FOUND_MIN_SERIAL + k
                else:
                    serial = 1 + k
                nik = f"{region}{nik_date(day, female)}{serial:04d}"
                if h % 1000 < _PADDED_PER_MILLE:
                    left, right = _PADDINGS[(h // 1000) % len(_PADDINGS)]
                    nik = left + nik + right
                status = STATUS_NOT_FOUND
            nama, muslim = province_name(province, female, mix64(self.k_name + r * GOLDEN))
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
