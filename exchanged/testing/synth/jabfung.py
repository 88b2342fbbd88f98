"""Functional positions (jabatan fungsional) of register people, and jabfung-integration batches.

A register person holds a functional position or not (about 60% do:
teachers, nurses, social workers, analysts ...); the position is a pure
function of (seed, row), like everything else in the register, so the
register CSV can carry it (``write_register_csv(..., functional_positions=True)``)
and a batch can be checked against it without holding the register.

:func:`jabfung_batch` streams a batch of the ``jabfung-integration`` flow
with the answer each row must get:

* ``SESUAI``: a person's position as SIASN has it, written as another office
  writes it (capitals, spaces, hyphens, dots);
* ``BERBEDA``: one or two fields changed (a promotion to the next level, a
  move to another unit, another start date, another position), or a person
  SIASN holds no position for (every field differs); ``expected_berbeda``
  names them in the policy's order;
* ``TIDAK_DITEMUKAN``: a structurally valid NIP of nobody in the register
  (born before 1960: register people are born 1960..2003);
* ``TIDAK_VALID``: a malformed NIP, an impossible start date, or an empty
  required field.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from exchanged.testing.synth.mixing import GOLDEN, mix64, stream_key
from exchanged.testing.synth.register import SyntheticRegister

__all__ = [
    "FUNCTIONAL_COLUMNS",
    "JABFUNG_COLUMNS",
    "JABFUNG_TRUTH_COLUMNS",
    "FunctionalPosition",
    "JabfungRow",
    "functional_position",
    "jabfung_batch",
]

FUNCTIONAL_COLUMNS: Final = ("jabatan", "jenjang_jabatan", "unit_kerja", "tmt_jabatan")
JABFUNG_COLUMNS: Final = ("ref", "nip", "nama", *FUNCTIONAL_COLUMNS)
JABFUNG_TRUTH_COLUMNS: Final = ("ref", "nip", "expected_status", "expected_berbeda")

SESUAI: Final = "SESUAI"
BERBEDA: Final = "BERBEDA"
TIDAK_DITEMUKAN: Final = "TIDAK_DITEMUKAN"
TIDAK_VALID: Final = "TIDAK_VALID"

_EXPERT: Final = ("Ahli Pertama", "Ahli Muda", "Ahli Madya", "Ahli Utama")
_SKILLED: Final = ("Pemula", "Terampil", "Mahir", "Penyelia")
# (position, levels, units where it is held)
_POSITIONS: Final = (
    ("Guru", _EXPERT, ("SD Negeri 1", "SD Negeri 4", "SMP Negeri 2", "SMA Negeri 1",
                       "SMK Negeri 3", "Dinas Pendidikan")),
    ("Perawat", _EXPERT + _SKILLED, ("Puskesmas Kecamatan", "RSUD", "Dinas Kesehatan")),
    ("Bidan", _EXPERT + _SKILLED, ("Puskesmas Kecamatan", "RSUD")),
    ("Dokter", _EXPERT, ("Puskesmas Kecamatan", "RSUD", "Dinas Kesehatan")),
    ("Pekerja Sosial", _EXPERT + _SKILLED, ("Dinas Sosial", "Balai Rehabilitasi Sosial",
                                            "Direktorat Rehabilitasi Sosial")),
    ("Penyuluh Sosial", _EXPERT + _SKILLED, ("Dinas Sosial", "Pusat Penyuluhan Sosial")),
    ("Analis Kebijakan", _EXPERT, ("Sekretariat Daerah", "Biro Perencanaan",
                                   "Direktorat Jaminan Sosial")),
    ("Pranata Komputer", _EXPERT + _SKILLED, ("Pusat Data dan Informasi",
                                              "Dinas Komunikasi dan Informatika")),
    ("Arsiparis", _EXPERT + _SKILLED, ("Sekretariat Daerah", "Dinas Kearsipan")),
    ("Pustakawan", _EXPERT + _SKILLED, ("Dinas Perpustakaan", "Perpustakaan Daerah")),
    ("Auditor", _EXPERT, ("Inspektorat", "Inspektorat Jenderal")),
    ("Statistisi", _EXPERT + _SKILLED, ("Badan Pusat Statistik Kabupaten",
                                        "Dinas Komunikasi dan Informatika")),
    ("Penyuluh Pertanian", _EXPERT + _SKILLED, ("Dinas Pertanian", "Balai Penyuluhan Pertanian")),
    ("Widyaiswara", _EXPERT, ("Badan Pengembangan Sumber Daya Manusia", "Balai Diklat")),
)
_HOLDS_PERCENT: Final = 60
_LAST_TMT: Final = datetime.date(2025, 10, 1)
_P_JOBS: Final = 41
_P_JF_CASE: Final = 42
_P_JF_PERSON: Final = 43


@dataclass(frozen=True, slots=True)
class FunctionalPosition:
    """A register person's functional position; every field empty when there is none."""

    jabatan: str
    jenjang_jabatan: str
    unit_kerja: str
    tmt_jabatan: str  # YYYY-MM-DD or ""

    def fields(self) -> tuple[str, str, str, str]:
        return (self.jabatan, self.jenjang_jabatan, self.unit_kerja, self.tmt_jabatan)


NO_POSITION: Final = FunctionalPosition("", "", "", "")


def _service_start(nip: str) -> datetime.date:
    month = int(nip[12:14])
    return datetime.date(int(nip[8:12]), month if 1 <= month <= 12 else 1, 1)


def functional_position(register: SyntheticRegister, i: int) -> FunctionalPosition:
    """The functional position of register row ``i`` (deterministic, NO_POSITION for about 40%).

    >>> register = SyntheticRegister(100, seed=1)
    >>> functional_position(register, 7) == functional_position(register, 7)
    True
    >>> positions = [functional_position(register, i) for i in range(100)]
    >>> all(len(p.tmt_jabatan) in (0, 10) for p in positions)
    True
    """
    person = register.row(i)
    x = mix64(stream_key(register.seed, _P_JOBS) + i * GOLDEN)
    if x % 100 >= _HOLDS_PERCENT:
        return NO_POSITION
    x //= 100
    jabatan, levels, units = _POSITIONS[x % len(_POSITIONS)]
    x //= len(_POSITIONS)
    level = levels[x % len(levels)]
    x //= len(levels)
    unit = units[x % len(units)]
    x //= len(units)
    place = person.instansi.replace("Pemerintah ", "").replace("Kementerian ", "")
    start = _service_start(person.nip)
    span = max(1, (_LAST_TMT - start).days)
    tmt = start + datetime.timedelta(days=x % span)
    return FunctionalPosition(f"{jabatan}", level, f"{unit} {place}", tmt.isoformat())


@dataclass(frozen=True, slots=True)
class JabfungRow:
    """One row of a jabfung-integration batch, with the answer it must get."""

    ref: str
    nip: str
    nama: str
    jabatan: str
    jenjang_jabatan: str
    unit_kerja: str
    tmt_jabatan: str
    expected_status: str
    expected_berbeda: str  # "jabatan;tmt_jabatan" for BERBEDA, else ""


def _restyled(text: str, x: int) -> str:
    """The same text as another office types it (what a normalised comparison must forgive)."""
    kind = x % 5
    if kind == 0:
        return text.upper()
    if kind == 1:
        return "  " + text.lower().replace(" ", "  ") + " "
    if kind == 2:
        return text.replace(" ", "-", 1)
    if kind == 3:
        return text.replace(" ", ". ", 1)
    return text


def _changed(field: str, value: FunctionalPosition, x: int) -> str:
    """Another value for one field, one that really differs."""
    if field == "jenjang_jabatan":
        levels = _EXPERT if value.jenjang_jabatan in _EXPERT else _SKILLED
        i = levels.index(value.jenjang_jabatan)
        return levels[(i + 1) % len(levels)]
    if field == "jabatan":
        others = [p[0] for p in _POSITIONS if p[0] != value.jabatan]
        return others[x % len(others)]
    if field == "unit_kerja":
        return "Dinas Sosial Kota Contoh" if "Dinas Sosial" not in value.unit_kerja else (
            "Sekretariat Daerah Kota Contoh")
    day = datetime.date.fromisoformat(value.tmt_jabatan)
    return (day + datetime.timedelta(days=1 + x % 700) * (1 if x & 1024 else -1)).isoformat()


def _outside_nip(x: int) -> str:
    """A valid PNS NIP of somebody born 1950..1959: no register person is."""
    born = datetime.date(1950, 1, 1) + datetime.timedelta(days=x % 3652)
    start = born.year + 19 + x % 10
    return f"{born:%Y%m%d}{start}{1 + x % 12:02d}{1 + (x >> 8) % 2}{1 + (x >> 12) % 999:03d}"


def _invalid(nip: str, fields: list[str], x: int) -> tuple[str, list[str]]:
    kind = x % 5
    if kind == 0:
        return nip[:9] + " " + nip[9:], fields  # a space inside
    if kind == 1:
        return nip[:-1], fields  # a digit lost
    if kind == 2:
        return nip[:4] + "13" + nip[6:], fields  # month 13
    if kind == 3:
        return nip, fields[:3] + ["2021-02-30"]  # an impossible start date
    return nip, ["", *fields[1:]]  # a required field left empty


def _row(ref: str, nip: str, nama: str, sent: Sequence[str], status: str, differ: str
         ) -> JabfungRow:
    return JabfungRow(ref, nip, nama, sent[0], sent[1], sent[2], sent[3], status, differ)


def _draw(register: SyntheticRegister, base: int, wants_position: bool, used: set[int]
          ) -> tuple[int, FunctionalPosition]:
    """A register person not drawn yet, holding a position or not as wanted: a few random
    tries, then the first such person after ``base``."""
    n = len(register)
    tries = [(base + attempt * 7919) % n for attempt in range(64)]
    for index in tries + [(base + step) % n for step in range(n)]:
        if -1 - index in used:
            continue
        position = functional_position(register, index)
        if (position is not NO_POSITION) == wants_position:
            used.add(-1 - index)  # register rows as negative numbers, NIPs as positive
            return index, position
    raise ValueError("the register is too small to draw distinct employees from")


def jabfung_batch(register: SyntheticRegister, rows: int, seed: int) -> Iterator[JabfungRow]:
    """Stream ``rows`` jabfung-integration rows with their expected answers.

    About half SESUAI, a quarter BERBEDA, and the rest TIDAK_DITEMUKAN and
    TIDAK_VALID. Each employee appears once (the exchange refuses a batch that
    repeats a NIP), so a batch can have at most as many rows as the register
    has people, and a few more from outside it.

    >>> rows = list(jabfung_batch(SyntheticRegister(500, seed=2), 400, seed=3))
    >>> sorted({r.expected_status for r in rows})
    ['BERBEDA', 'SESUAI', 'TIDAK_DITEMUKAN', 'TIDAK_VALID']
    >>> len({r.nip.strip().replace(" ", "")[:17] for r in rows}) == len(rows)
    True
    """
    if len(register) == 0:
        raise ValueError("an empty register has nobody to compare")
    k_case = stream_key(seed, _P_JF_CASE)
    k_person = stream_key(seed, _P_JF_PERSON)
    used: set[int] = set()  # register rows and outside NIPs drawn so far
    for r in range(rows):
        ref = f"JF-{r + 1:07d}"
        x = mix64(k_case + r * GOLDEN)
        pick = x % 100
        x //= 100
        base = mix64(k_person + r * GOLDEN)
        if 75 <= pick < 88:
            nip = _outside_nip(x)
            while int(nip) in used:
                x += 1
                nip = _outside_nip(x)
            used.add(int(nip))
            made = FunctionalPosition("Pekerja Sosial", "Ahli Muda", "Dinas Sosial Kota Contoh",
                                      "2019-01-01")
            yield _row(ref, nip, "Nama Contoh", made.fields(), TIDAK_DITEMUKAN, "")
            continue
        # a person who holds a position, but for "no position in SIASN" rows
        wants_position = not (70 <= pick < 75)
        index, position = _draw(register, base, wants_position, used)
        person = register.row(index)
        fields = list(position.fields())
        if pick < 50:
            sent = [_restyled(v, x >> (4 * n)) if n < 3 else v for n, v in enumerate(fields)]
            yield _row(ref, person.nip, person.nama, sent, SESUAI, "")
        elif pick < 70:
            count = 1 + x % 2
            chosen = sorted({(x >> (3 + 5 * n)) % 4 for n in range(count)})
            sent = list(fields)
            for n in chosen:
                sent[n] = _changed(FUNCTIONAL_COLUMNS[n], position, x >> 20)
            differ = ";".join(FUNCTIONAL_COLUMNS[n] for n in chosen)
            yield _row(ref, person.nip, person.nama, sent, BERBEDA, differ)
        elif pick < 75:
            # SIASN holds no position for this person: everything sent differs
            sent = ["Pekerja Sosial", "Ahli Pertama", "Dinas Sosial Kota Contoh", "2020-01-02"]
            yield _row(ref, person.nip, person.nama, sent, BERBEDA, ";".join(FUNCTIONAL_COLUMNS))
        else:
            nip, sent = _invalid(person.nip, fields, x)
            yield _row(ref, nip, person.nama, sent, TIDAK_VALID, "")

