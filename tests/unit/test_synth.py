"""Tests of the synthetic data generator (exchanged.testing.synth)."""

from __future__ import annotations

import calendar
import csv
import dataclasses
import datetime
import itertools
import os
import stat
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exchanged.testing.synth import (
    INSTANSI,
    KPM_COLUMNS,
    MAX_REGISTER_ROWS,
    REGISTER_COLUMNS,
    STATUS_ASN,
    STATUS_INVALID,
    STATUS_NOT_FOUND,
    TRUTH_COLUMNS,
    KpmRow,
    Person,
    SyntheticRegister,
    kpm_batch,
    write_kpm_csv,
    write_register_csv,
)
from exchanged.testing.synth.dates import iso_days
from exchanged.testing.synth.invalid import INVALID_KINDS, invalid_nik
from exchanged.testing.synth.mixing import mix64
from exchanged.testing.synth.names import BATAK_MARGA, STYLES, compose_name
from exchanged.testing.synth.regions import pick_region
from exchanged.testing.synth.titles import add_titles

# The project's validators are written in parallel; use them when present,
# and always the local checkers below, which follow DOMAIN.md directly.
try:
    from exchanged.ids import nik as ids_nik
    from exchanged.ids import nip as ids_nip
except ImportError:  # pragma: no cover - depends on the state of the tree
    ids_nik = None  # type: ignore[assignment]
    ids_nip = None  # type: ignore[assignment]

PROVINCES = {
    "11", "12", "13", "14", "15", "16", "17", "18", "19", "21", "31", "32", "33", "34", "35",
    "36", "51", "52", "53", "61", "62", "63", "64", "65", "71", "72", "73", "74", "75", "76",
    "81", "82", "91", "92", "94",
}


# --------------------------------------------------------------------------
# Local structural checkers
# --------------------------------------------------------------------------


def _real_date(year: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def nik_structurally_valid(value: str) -> bool:
    """DOMAIN.md's rule: 16 ASCII digits once spaces are trimmed, real date, serial not 0000."""
    s = value.strip(" ")
    if len(s) != 16 or not (s.isascii() and s.isdigit()):
        return False
    if "00" in (s[0:2], s[2:4], s[4:6]):
        return False
    day, month, yy = int(s[6:8]), int(s[8:10]), int(s[10:12])
    if day > 40:
        day -= 40
    if not (_real_date(1900 + yy, month, day) or _real_date(2000 + yy, month, day)):
        return False
    return s[12:16] != "0000"


def nip_structurally_valid(s: str) -> bool:
    if len(s) != 18 or not (s.isascii() and s.isdigit()):
        return False
    year, month, day = int(s[0:4]), int(s[4:6]), int(s[6:8])
    if not _real_date(year, month, day):
        return False
    start = int(s[8:12])
    if s[12:14] == "21":  # PPPK: appointment year, code 21
        if not 2019 <= start <= 2025:
            return False
    elif not 1 <= int(s[12:14]) <= 12:
        return False
    return s[14] in "12" and s[15:18] != "000"


def assert_register_person_consistent(p: Person) -> None:
    """Everything DOMAIN.md and the brief say must agree for one person."""
    assert nik_structurally_valid(p.nik), p
    assert nip_structurally_valid(p.nip), p
    if ids_nik is not None:
        assert ids_nik.is_valid(p.nik), p
        assert ids_nip.is_valid(p.nip), p
        assert ids_nip.kind(p.nip) == p.jenis_asn, p
    # Region codes.
    assert p.nik[0:2] in PROVINCES, p
    regency, district = int(p.nik[2:4]), int(p.nik[4:6])
    assert 1 <= regency <= 30 or 71 <= regency <= 79, p
    assert 1 <= district <= 30, p
    # Birth date and gender agree between NIK, NIP and the row.
    born = datetime.date.fromisoformat(p.tanggal_lahir)
    assert 1960 <= born.year <= 2003, p
    nik_day = int(p.nik[6:8])
    assert (nik_day > 40) == p.female, p
    assert nik_day - (40 if p.female else 0) == born.day, p
    assert p.nik[8:12] == f"{born.month:02d}{born.year % 100:02d}", p
    assert p.nip[0:8] == born.strftime("%Y%m%d"), p
    assert p.nip[14] == ("2" if p.female else "1"), p
    # Service start at 18 or older.
    start_year = int(p.nip[8:12])
    if p.jenis_asn == "PPPK":
        assert p.nip[12:14] == "21", p
        assert 2019 <= start_year <= 2025, p
        assert start_year - born.year >= 19, p  # >= 18 on any day of that year
    else:
        assert p.jenis_asn == "PNS", p
        start_month = int(p.nip[12:14])
        eighteenth = datetime.date(born.year + 18, born.month, min(born.day, 28))
        assert datetime.date(start_year, start_month, 1) > eighteenth, p
        assert (start_year, start_month) <= (2025, 12), p
    assert p.instansi in INSTANSI, p
    assert p.nama and p.nama == p.nama.strip() and "  " not in p.nama, p


def trimmed(nik: str) -> str:
    return nik.strip(" ")


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def register_200k() -> SyntheticRegister:
    return SyntheticRegister(200_000, seed=20230403)


@pytest.fixture(scope="module")
def register_200k_people(register_200k: SyntheticRegister) -> list[Person]:
    return list(register_200k)


@pytest.fixture(scope="module")
def batch_200k(register_200k: SyntheticRegister) -> list[KpmRow]:
    return list(kpm_batch(register_200k, 200_000, seed=99, asn_fraction=0.05,
                          invalid_fraction=0.02))


# --------------------------------------------------------------------------
# Register
# --------------------------------------------------------------------------


def test_register_is_deterministic() -> None:
    a = SyntheticRegister(5000, seed=7)
    b = SyntheticRegister(5000, seed=7)
    assert list(a) == list(b)
    assert a.row(4321) == b.row(4321)


def test_different_seeds_give_different_registers() -> None:
    a = list(SyntheticRegister(2000, seed=1))
    b = list(SyntheticRegister(2000, seed=2))
    same = sum(x == y for x, y in zip(a, b))
    assert same == 0
    assert {p.nik for p in a} != {p.nik for p in b}


def test_row_random_access_matches_iteration() -> None:
    register = SyntheticRegister(3000, seed=5)
    people = list(register)
    assert len(people) == len(register) == register.rows == 3000
    for i in (0, 1, 17, 1499, 2999):
        assert register.row(i) == people[i]
    # Reverse order gives the same rows: nothing depends on earlier calls.
    assert [register.row(i) for i in reversed(range(3000))] == people[::-1]


def test_row_index_out_of_range() -> None:
    register = SyntheticRegister(10, seed=1)
    with pytest.raises(IndexError):
        register.row(10)
    with pytest.raises(IndexError):
        register.row(-1)


def test_register_size_limits() -> None:
    assert len(SyntheticRegister(0, seed=1)) == 0
    assert list(SyntheticRegister(0, seed=1)) == []
    with pytest.raises(ValueError):
        SyntheticRegister(-1, seed=1)
    assert MAX_REGISTER_ROWS >= 6_000_000
    with pytest.raises(ValueError):
        SyntheticRegister(MAX_REGISTER_ROWS + 1, seed=1)


def test_values_are_frozen() -> None:
    person = SyntheticRegister(1, seed=1).row(0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        person.nik = "x"  # type: ignore[misc]


def test_register_nik_and_nip_unique_over_200k(register_200k_people: list[Person]) -> None:
    people = register_200k_people
    assert len({p.nik for p in people}) == len(people) == 200_000
    assert len({p.nip for p in people}) == len(people)


def test_register_unique_in_a_six_million_register_sample() -> None:
    # Rows far apart in a full-size register: uniqueness must not rely on
    # the register being small.
    register = SyntheticRegister(6_000_000, seed=3)
    indexes = range(0, 6_000_000, 60)  # 100,000 rows
    people = [register.row(i) for i in indexes]
    assert len({p.nik for p in people}) == len(people)
    assert len({p.nip for p in people}) == len(people)
    for p in people[:5000]:
        assert_register_person_consistent(p)
    assert_register_person_consistent(register.row(5_999_999))


def test_every_register_row_valid_and_consistent(register_200k_people: list[Person]) -> None:
    for p in register_200k_people:
        assert_register_person_consistent(p)


def test_register_proportions(register_200k_people: list[Person]) -> None:
    people = register_200k_people
    n = len(people)
    pppk = sum(p.jenis_asn == "PPPK" for p in people) / n
    assert 0.11 < pppk < 0.13
    female = sum(p.female for p in people) / n
    assert 0.47 < female < 0.53
    titled = sum(_has_title(p.nama) for p in people) / n
    assert 0.27 < titled < 0.33
    mononyms = sum(" " not in p.nama and not _has_title(p.nama) for p in people) / n
    assert mononyms > 0.05
    # The age pyramid: more people born in the 1980s than in the early 1960s.
    years = Counter(p.tanggal_lahir[:4] for p in people)
    assert years["1985"] > 5 * years["1961"] > 0
    # Every province occurs.
    assert {p.nik[:2] for p in people} == PROVINCES
    # Serials stay small, as in real registers.
    assert max(int(p.nik[12:]) for p in people) <= 999
    assert len(Counter(p.instansi for p in people)) > 50


def _has_title(nama: str) -> bool:
    return "," in nama or nama.split(" ")[0] in {
        "Prof.", "Dr.", "Ir.", "Drs.", "Dra.", "dr.", "drg.", "H.", "Hj."
    }


def test_fields_do_not_follow_the_row_index() -> None:
    # A permutation with an even modulus would make gender alternate with
    # the index; sampling every other row must still give both genders,
    # in registers of any size and among not-found people.
    for rows in (40, 1000, 6_000_000):
        register = SyntheticRegister(rows, seed=rows)
        even = [register.row(i) for i in range(0, min(rows, 20_000), 2)]
        assert 0.35 < sum(p.female for p in even) / len(even) < 0.65, rows
    batch = list(kpm_batch(SyntheticRegister(10, seed=1), 20_000, seed=1, asn_fraction=0.0,
                           invalid_fraction=0.0))
    even_rows = batch[::2]
    assert 0.45 < sum(int(r.nik.strip()[6:8]) > 40 for r in even_rows) / len(even_rows) < 0.55


def test_titles_are_placed_realistically() -> None:
    name = add_titles("Ahmad Fauzi", female=False, muslim=True, birth_year=1970, bits=0)
    assert "Ahmad Fauzi" in name
    seen = {add_titles("Ahmad Fauzi", False, True, 1965, b) for b in range(0, 10**9, 7919 * 131)}
    assert any(s.startswith("Drs. ") for s in seen)
    assert any(s.startswith("H. ") or " H. " in s for s in seen)
    assert any(s.endswith(".") and ", " in s for s in seen)
    for s in seen:
        before, _, after = s.partition("Ahmad Fauzi")
        assert all(t.endswith(".") for t in before.split())
        assert after == "" or after.startswith(", ")
    assert not any("H. " in add_titles("Yohanes Lake", False, False, 1965, b)
                   for b in range(0, 10**8, 99991))


def test_names_by_tradition() -> None:
    styles = {s.key: s for s in STYLES}
    bits = [mix64(n) for n in range(1000)]
    bali = [compose_name(styles["balinese"], False, b)[0] for b in bits]
    assert sum(n.startswith("I ") for n in bali) > len(bali) * 0.8
    assert any(n.split(" ")[1] in ("Wayan", "Made", "Nyoman", "Ketut") for n in bali)
    bali_f = [compose_name(styles["balinese"], True, b)[0] for b in bits]
    assert sum(n.startswith("Ni ") for n in bali_f) > len(bali_f) * 0.8
    batak = [compose_name(styles["batak"], True, b)[0] for b in bits]
    assert all(n.split(" ")[-1] in BATAK_MARGA for n in batak)
    assert any(" br. " in n for n in batak)
    javanese = [compose_name(styles["javanese"], False, b)[0] for b in bits]
    assert 0.2 < sum(" " not in n for n in javanese) / len(javanese) < 0.4


# --------------------------------------------------------------------------
# KPM batches
# --------------------------------------------------------------------------


def test_kpm_batch_deterministic(register_200k: SyntheticRegister) -> None:
    a = list(kpm_batch(register_200k, 3000, seed=11))
    b = list(kpm_batch(register_200k, 3000, seed=11))
    c = list(kpm_batch(register_200k, 3000, seed=12))
    assert a == b
    assert sum(x.nik == y.nik for x, y in zip(a, c)) < 30


def test_kpm_refs(batch_200k: list[KpmRow]) -> None:
    assert batch_200k[0].ref == "KPM-000000001"
    assert batch_200k[-1].ref == "KPM-000200000"
    assert len({r.ref for r in batch_200k}) == len(batch_200k)


def test_kpm_fractions(batch_200k: list[KpmRow]) -> None:
    counts = Counter(r.expected_status for r in batch_200k)
    n = len(batch_200k)
    assert set(counts) == {STATUS_ASN, STATUS_NOT_FOUND, STATUS_INVALID}
    assert abs(counts[STATUS_ASN] / n - 0.05) < 0.003
    assert abs(counts[STATUS_INVALID] / n - 0.02) < 0.002


def test_kpm_default_fractions(register_200k: SyntheticRegister) -> None:
    counts = Counter(r.expected_status for r in kpm_batch(register_200k, 100_000, seed=4))
    assert abs(counts[STATUS_ASN] / 100_000 - 0.03) < 0.003
    assert abs(counts[STATUS_INVALID] / 100_000 - 0.01) < 0.002


def test_kpm_asn_rows_are_register_people(
    register_200k_people: list[Person], batch_200k: list[KpmRow]
) -> None:
    by_nik = {p.nik: p for p in register_200k_people}
    asn = [r for r in batch_200k if r.expected_status == STATUS_ASN]
    for row in asn:
        person = by_nik[trimmed(row.nik)]
        assert row.nama == person.nama
        assert row.tanggal_lahir == person.tanggal_lahir
        assert row.expected_jenis_asn == person.jenis_asn
        assert row.expected_instansi == person.instansi
    # Distinct people while the register lasts.
    assert len({trimmed(r.nik) for r in asn}) == len(asn)


def test_kpm_not_found_never_in_register(
    register_200k_people: list[Person], batch_200k: list[KpmRow]
) -> None:
    register_niks = {p.nik for p in register_200k_people}
    not_found = [r for r in batch_200k if r.expected_status == STATUS_NOT_FOUND]
    assert len(not_found) > 180_000
    for row in not_found:
        assert nik_structurally_valid(row.nik), row
        assert trimmed(row.nik) not in register_niks, row
        assert row.expected_jenis_asn == row.expected_instansi == ""
    assert len({trimmed(r.nik) for r in not_found}) == len(not_found)


def test_not_found_disjoint_by_structure() -> None:
    # The argument that holds for any register size: register NIKs have a
    # birth year 1960..2003 and serial <= 999; a not-found NIK has either a
    # two-digit year outside those years or a serial >= 1000.
    register_yy = {f"{y % 100:02d}" for y in range(1960, 2004)}
    big = SyntheticRegister(6_000_000, seed=8)
    for i in range(0, 6_000_000, 6007):
        nik = big.row(i).nik
        assert nik[10:12] in register_yy and int(nik[12:]) <= 999
    for row in kpm_batch(big, 50_000, seed=8, asn_fraction=0.0, invalid_fraction=0.0):
        nik = trimmed(row.nik)
        assert nik[10:12] not in register_yy or int(nik[12:]) >= 1000, row


def test_kpm_invalid_rows_really_invalid(batch_200k: list[KpmRow]) -> None:
    invalid = [r for r in batch_200k if r.expected_status == STATUS_INVALID]
    assert len(invalid) > 3000
    for row in invalid:
        assert not nik_structurally_valid(row.nik), row
        if ids_nik is not None:
            assert not ids_nik.is_valid(row.nik), row
        assert row.expected_jenis_asn == row.expected_instansi == ""
    # Variety: empties, separators, wrong lengths, non-ASCII digits, letters.
    niks = [r.nik for r in invalid]
    assert any(n == "" for n in niks)
    assert any(" " in n.strip(" ") for n in niks)
    assert any("-" in n for n in niks)
    assert any(len(n) == 15 and n.isdigit() for n in niks)
    assert any(len(n) == 17 and n.isdigit() for n in niks)
    assert any(not n.isascii() for n in niks)
    assert any("O" in n for n in niks)
    assert any(len(n) == 16 and n.isdigit() and n[8:10] == "02" for n in niks)


def test_every_kind_of_invalid_nik_is_invalid() -> None:
    days = iso_days(1935, 2022)
    for kind in INVALID_KINDS:
        for n in range(300):
            x = mix64(n * 1_000_003 + len(kind))
            region, _, x = pick_region(x)
            day = days[x % len(days)]
            nik = invalid_nik(kind, region, day, bool(n & 1), 1 + x % 9999, x)
            assert not nik_structurally_valid(nik), (kind, nik)
            if ids_nik is not None:
                assert not ids_nik.is_valid(nik), (kind, nik)


def test_padded_niks_keep_their_status(batch_200k: list[KpmRow]) -> None:
    padded = [r for r in batch_200k if r.nik and r.nik != trimmed(r.nik)
              and r.expected_status != STATUS_INVALID]
    assert len(padded) > 100
    assert {r.expected_status for r in padded} == {STATUS_ASN, STATUS_NOT_FOUND}
    for row in padded:
        assert nik_structurally_valid(row.nik)
        if ids_nik is not None:
            assert ids_nik.is_valid(row.nik)


def test_valid_rows_are_valid(batch_200k: list[KpmRow]) -> None:
    for row in batch_200k:
        if row.expected_status != STATUS_INVALID:
            assert nik_structurally_valid(row.nik), row
            datetime.date.fromisoformat(row.tanggal_lahir)
            assert row.nama


def test_kpm_argument_checks(register_200k: SyntheticRegister) -> None:
    with pytest.raises(ValueError):
        kpm_batch(register_200k, -1, seed=1)
    with pytest.raises(ValueError):
        kpm_batch(register_200k, 10, seed=1, asn_fraction=0.7, invalid_fraction=0.4)
    with pytest.raises(ValueError):
        kpm_batch(register_200k, 10, seed=1, asn_fraction=-0.1)
    with pytest.raises(ValueError):
        kpm_batch(SyntheticRegister(0, seed=1), 10, seed=1)
    rows = list(kpm_batch(SyntheticRegister(0, seed=1), 10, seed=1, asn_fraction=0.0))
    assert len(rows) == 10 and all(r.expected_status != STATUS_ASN for r in rows)


def test_asn_rows_wrap_around_a_small_register() -> None:
    register = SyntheticRegister(7, seed=1)
    rows = list(kpm_batch(register, 100, seed=1, asn_fraction=1.0, invalid_fraction=0.0))
    niks = [trimmed(r.nik) for r in rows]
    assert set(niks) == {p.nik for p in register}
    assert len(set(niks[:7])) == 7


def _peak_while(consume: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_kpm_batch_memory_does_not_grow() -> None:
    # Quick version of the test below: the peak after 60,000 rows is the
    # peak after 6,000 rows, give or take noise.
    register = SyntheticRegister(6_000_000, seed=1)

    def run(n: int) -> Callable[[], None]:
        def consume() -> None:
            for _ in kpm_batch(register, n, seed=2):
                pass
        return consume

    small, large = _peak_while(run(6_000)), _peak_while(run(60_000))
    assert large - small < 256 * 1024, (small, large)


# tracemalloc traces every allocation (about 100 times slower), so this runs
# 200,000 rows of a national-size register rather than millions.
def test_kpm_batch_streams_in_constant_memory() -> None:
    register = SyntheticRegister(6_000_000, seed=1)

    def consume() -> None:
        count = 0
        for _ in kpm_batch(register, 200_000, seed=2):
            count += 1
        assert count == 200_000

    peak = _peak_while(consume)
    assert peak < 20 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


def test_writers_stream_in_constant_memory(tmp_path: Path) -> None:
    # The writers' peak must not depend on the number of rows: they hold
    # neither the rows nor the files.
    register = SyntheticRegister(20_000, seed=1)

    def write_register(n: int) -> Callable[[], None]:
        def write() -> None:
            write_register_csv(tmp_path / "r.csv", SyntheticRegister(n, seed=1))
        return write

    def write_batch(n: int) -> Callable[[], None]:
        def write() -> None:
            write_kpm_csv(tmp_path / "k.csv", kpm_batch(register, n, seed=1),
                          columns=KPM_COLUMNS, truth_path=tmp_path / "t.csv")
        return write

    small, large = _peak_while(write_register(2_000)), _peak_while(write_register(20_000))
    assert large - small < 512 * 1024, (small, large)
    assert (tmp_path / "r.csv").stat().st_size > 1_500_000
    small, large = _peak_while(write_batch(2_000)), _peak_while(write_batch(20_000))
    assert large - small < 512 * 1024, (small, large)
    assert large < 10 * 1024 * 1024, large


# --------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_register_csv(tmp_path: Path) -> None:
    register = SyntheticRegister(2000, seed=9)
    path = tmp_path / "register.csv"
    assert write_register_csv(path, register) == 2000
    assert _mode(path) == 0o600
    data = path.read_bytes()
    assert b"\r" not in data and data.endswith(b"\n")
    rows = _read_csv(path)
    assert tuple(rows[0]) == REGISTER_COLUMNS
    assert len(rows) == 2001
    for i, row in enumerate(rows[1:]):
        p = register.row(i)
        assert row == [p.nip, p.nik, p.nama, p.tanggal_lahir, p.jenis_asn, p.instansi]
    # Titled names contain commas: they must have been quoted.
    assert any("," in r[2] for r in rows[1:])


def test_write_kpm_csv_with_truth(tmp_path: Path) -> None:
    register = SyntheticRegister(1000, seed=9)
    batch = list(kpm_batch(register, 5000, seed=3, asn_fraction=0.2, invalid_fraction=0.1))
    path, truth = tmp_path / "kpm.csv", tmp_path / "truth.csv"
    columns = ("nik", "tanggal_lahir", "ref", "nama")
    assert write_kpm_csv(path, iter(batch), columns=columns, truth_path=truth) == 5000
    assert _mode(path) == _mode(truth) == 0o600
    rows, truths = _read_csv(path), _read_csv(truth)
    assert tuple(rows[0]) == columns
    assert tuple(truths[0]) == TRUTH_COLUMNS
    for k, row, t in zip(batch, rows[1:], truths[1:], strict=True):
        assert row == [k.nik, k.tanggal_lahir, k.ref, k.nama]
        assert t == [k.ref, k.nik, k.expected_status, k.expected_jenis_asn, k.expected_instansi]
    assert b"\r" not in path.read_bytes()
    # Non-ASCII NIKs (full-width digits, NBSP) are written as UTF-8.
    unusual = [k.nik for k in batch if not k.nik.isascii()]
    assert unusual
    data = path.read_bytes()
    assert all(n.encode("utf-8") in data for n in unusual)


def test_write_kpm_csv_default_columns_and_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "kpm.csv"
    path.write_text("old content that is longer than the new one\n" * 100)
    path.chmod(0o644)
    batch = kpm_batch(SyntheticRegister(10, seed=1), 3, seed=1)
    assert write_kpm_csv(path, batch) == 3
    assert _mode(path) == 0o600
    rows = _read_csv(path)
    assert rows[0] == ["ref", "nik"] and len(rows) == 4


@pytest.mark.parametrize(
    "columns", [(), ("ref", "nip"), ("nik", "nik"), ("expected_status",)]
)
def test_write_kpm_csv_rejects_bad_columns(tmp_path: Path, columns: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        write_kpm_csv(tmp_path / "x.csv", iter(()), columns=columns)
    assert not (tmp_path / "x.csv").exists()


def test_public_api_shape() -> None:
    assert REGISTER_COLUMNS == ("nip", "nik", "nama", "tanggal_lahir", "jenis_asn", "instansi")
    assert [f.name for f in dataclasses.fields(Person)] == [
        "nik", "nip", "nama", "tanggal_lahir", "female", "jenis_asn", "instansi"
    ]
    assert [f.name for f in dataclasses.fields(KpmRow)] == [
        "ref", "nik", "nama", "tanggal_lahir", "expected_status", "expected_jenis_asn",
        "expected_instansi",
    ]
    assert 50 <= len(INSTANSI) <= 80
    it: Iterator[KpmRow] = kpm_batch(SyntheticRegister(5, seed=1), 0, seed=1)
    assert list(itertools.islice(it, 1)) == []
