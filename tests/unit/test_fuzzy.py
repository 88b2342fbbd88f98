"""The fuzzy fallback's scorer and index (exchanged.matching.fuzzy)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from exchanged.matching import fuzzy
from exchanged.matching.fuzzy import (
    FuzzyFallback,
    FuzzyIndex,
    FuzzyIndexBuilder,
    FuzzyIndexError,
    FuzzyIndexMissing,
    FuzzyKeys,
    discard_index,
    index_path,
    name_score,
    shown_score,
)
from exchanged.matching.names import normalise_name
from exchanged.testing.synth import SyntheticRegister

SECRET = bytes(range(32))

REGISTER = [
    # (line, nama, tanggal_lahir)
    (2, "Drs. H. Mochammad Soeharto, M.Si.", "1965-03-02"),
    (3, "Siti Aminah", "1980-01-01"),
    (4, "Siti Aminah Putri", "1985-05-05"),
    (5, "Agus Setiawan, S.Pd.", "1979-12-31"),
    (6, "Sumarni", "1970-07-07"),
    (7, "Nur Hayati", "1990-02-14"),
    (8, "Sri Wahyuni", "1975-10-10"),
    (9, "Sri Wahyudi", "1975-10-10"),
    (10, "Hj. Wahyuni Lestari", "1988-08-08"),
    (11, "Wahyudi Lestari", "1961-01-01"),
    (12, "Putri Handayani", "1992-09-09"),
    (13, "Putra Handayani", "1960-06-06"),
    (14, "Iis", "1983-03-03"),
    # more people with these parts, so that the register knows them as names
    (15, "Putra Wijaya", "1971-01-01"),
    (16, "Putra Santoso", "1972-02-02"),
    (17, "Putri Ayu", "1973-03-03"),
    (18, "Wahyuni", "1974-04-04"),
    (19, "Wahyudi", "1976-06-06"),
]


@pytest.fixture
def index(tmp_path: Path) -> FuzzyIndex:
    work = tmp_path / "work"
    work.mkdir()
    builder = FuzzyIndexBuilder(index_path(tmp_path, "snap"), SECRET, work)
    for line, nama, dob in REGISTER:
        builder.add(line, nama, dob)
    builder.add(99, "", "1990-01-01")  # no name: not indexed
    builder.add(100, "Tanpa Tanggal", "1990-02-30")  # no real date: not indexed
    report = builder.finish()
    assert report.records == len(REGISTER) and report.skipped == 2
    assert not list(work.iterdir()), "temporary files left behind"
    return FuzzyIndex(index_path(tmp_path, "snap"), SECRET)


# -- the scorer ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "register"), [
    ("MUHAMAD SUHARTO", "Drs. H. Mochammad Soeharto, M.Si."),
    ("Agus Setiawan", "Agus Setiawan, S.Pd."),
    ("Hj. Siti Aminah, S.E.", "Siti Aminah"),
    ("Nurhayati", "Nur Hayati"),
    ("Nur Hayati", "Nurhayati"),
])
def test_same_person_written_otherwise_scores_high(query: str, register: str) -> None:
    assert name_score(query, register) >= 0.95


@pytest.mark.parametrize(("query", "register"), [
    ("Siti Aminha", "Siti Aminah"),  # two letters swapped
    ("Siti Amnah", "Siti Aminah"),  # a letter dropped
    ("Siti Aminnah", "Siti Aminah"),  # doubled letters are one: no edit at all
    ("Siti Amibah", "Siti Aminah"),  # a neighbouring key
    ("Agus Setiawn", "Agus Setiawan"),
    ("Suparmna", "Suparman"),
])
def test_one_typo_stays_above_the_default_threshold(query: str, register: str) -> None:
    assert name_score(query, register) >= 0.92


@pytest.mark.parametrize(("query", "register"), [
    ("Siti Aminah", "Siti Aminah Putri"),  # a part only one name has
    ("Siti Aminah Putri", "Siti Aminah"),
    ("Siti Aminah", "Siti Aisyah"),  # another part
    ("Hotman Simanjuntak", "Maruli Simanjuntak"),  # a brother
    ("Muhammad Rizki", "Muhammad Rizal"),
    ("Agus Setiawan", "Budi Setiawan"),
    ("Siti", "Siti Aminah"),  # too little left to say anything
    ("Ani", "Ana"),  # short parts are not compared for typos
    ("A. Setiawan", "Agus Setiawan"),  # an initial is weak evidence
])
def test_look_alikes_stay_below_the_default_threshold(query: str, register: str) -> None:
    assert name_score(query, register) < 0.92


def test_two_known_names_one_letter_apart_are_two_names() -> None:
    known = ["wahyuni", "wahyudi", "putra", "putri", "dewi", "dwi"]
    assert name_score("Sri Wahyuni", "Sri Wahyudi", known=known) < 0.92
    assert name_score("Putri Lestari", "Putra Lestari", known=known) < 0.92
    assert name_score("Dewi Lestari", "Dwi Lestari", known=known) < 0.92
    # a typo of a known name is still a typo
    assert name_score("Sri Wahyuhi", "Sri Wahyuni", known=known) >= 0.92


def test_scores_are_between_0_and_1_and_exact_is_1() -> None:
    for _, nama, _ in REGISTER:
        if sum(len(p) for p in normalise_name(nama)) >= 5:
            assert name_score(nama, nama) == 1.0
        else:  # four letters and a date are not enough
            assert name_score(nama, nama) == 0.0
    for (_, a, _), (_, b, _) in zip(REGISTER, REGISTER[1:], strict=False):
        assert 0.0 <= name_score(a, b) <= 1.0


def test_shown_score_never_rounds_up() -> None:
    assert shown_score(0.9199) == "0.91"
    assert shown_score(1.0) == "1.00"


# -- the index ----------------------------------------------------------------------------------

def test_index_finds_people_born_that_day_by_name(index: FuzzyIndex) -> None:
    assert index.best_score("Moh. Suharto", "1965-03-02") == 1.0
    assert index.best_score("Siti Aminha", "1980-01-01") >= 0.92
    assert index.best_score("Nurhayati", "1990-02-14") >= 0.92
    assert index.best_score("Sumarmi", "1970-07-07") >= 0.92  # one letter in a single name


def test_index_needs_the_same_birth_date(index: FuzzyIndex) -> None:
    assert index.best_score("Siti Aminah", "1980-01-02") == 0.0
    assert index.best_score("Siti Aminah", "1980-02-01") == 0.0
    assert index.best_score("Siti Aminah", "1981-01-01") == 0.0


def test_index_keeps_look_alikes_apart(index: FuzzyIndex) -> None:
    # Siti Aminah Putri is another person, born another day; Siti Aminah born that day is not her
    assert index.best_score("Siti Aminah Putri", "1980-01-01") < 0.92
    assert index.best_score("Siti Aminah", "1985-05-05") < 0.92
    # the register knows Wahyuni and Wahyudi, Putra and Putri as names: a twin is not a typo
    assert index.best_score("Wahyuni Lestari", "1961-01-01") < 0.92
    assert index.best_score("Putri Handayani", "1960-06-06") < 0.92
    assert index.best_score("Wahyuhi Lestari", "1961-01-01") >= 0.92
    # four letters and a date are not enough
    assert index.best_score("Iis", "1983-03-03") == 0.0


def test_index_ignores_rows_it_cannot_search(index: FuzzyIndex) -> None:
    assert index.best_score("", "1980-01-01") == 0.0
    assert index.best_score("Dr. H.", "1980-01-01") == 0.0
    assert index.best_score("Siti Aminah", "") == 0.0
    assert index.best_score("Siti Aminah", "1980-13-01") == 0.0
    assert index.best_score("Siti Aminah", "2020-01-01") == 0.0  # nobody born that year


def test_index_file_holds_no_name_date_or_part(tmp_path: Path, index: FuzzyIndex) -> None:
    data = index_path(tmp_path, "snap").read_bytes().lower()
    for _, nama, dob in REGISTER:
        assert dob.encode() not in data and dob.replace("-", "").encode() not in data
        for part in normalise_name(nama):
            if len(part) >= 3:
                assert part.encode() not in data, part
    assert not re.search(rb"[a-z]{5}", data[96:]), "text in the index"
    assert os.stat(index_path(tmp_path, "snap")).st_mode & 0o077 == 0


def test_equal_names_do_not_look_equal_in_the_file(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    builder = FuzzyIndexBuilder(tmp_path / "x.fuzzy", SECRET, work)
    for line in range(2, 12):
        builder.add(line, "Siti Aminah", "1980-01-01")
    builder.finish()
    data = (tmp_path / "x.fuzzy").read_bytes()
    filters = {data[96 + 32 * i : 96 + 32 * (i + 1)] for i in range(10)}
    assert len(filters) == 10


def test_another_key_finds_nothing(tmp_path: Path, index: FuzzyIndex) -> None:
    other = FuzzyIndex(index_path(tmp_path, "snap"), bytes(32))
    assert other.best_score("Siti Aminah", "1980-01-01") == 0.0
    other.close()


def test_dropped_lines_are_left_out(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    builder = FuzzyIndexBuilder(tmp_path / "x.fuzzy", SECRET, work)
    builder.add(2, "Siti Aminah", "1980-01-01")
    builder.add(3, "Agus Setiawan", "1979-12-31")  # a repeated NIK: the snapshot drops it
    report = builder.finish(dropped_lines=[3, 77])
    assert report.records == 1
    with FuzzyIndex(tmp_path / "x.fuzzy", SECRET) as found:
        assert found.best_score("Siti Aminah", "1980-01-01") == 1.0
        assert found.best_score("Agus Setiawan", "1979-12-31") == 0.0


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    builder = FuzzyIndexBuilder(tmp_path / "x.fuzzy", SECRET, work)
    builder.add(2, "Siti Aminah", "1980-01-01")
    builder.abort()
    assert not list(work.iterdir()) and not list(tmp_path.glob("*x.fuzzy*"))


def test_missing_truncated_and_foreign_files_are_refused(tmp_path: Path, index: FuzzyIndex
                                                        ) -> None:
    with pytest.raises(FuzzyIndexMissing):
        FuzzyIndex(tmp_path / "none.fuzzy", SECRET)
    good = index_path(tmp_path, "snap").read_bytes()
    (tmp_path / "short.fuzzy").write_bytes(good[:-8])
    with pytest.raises(FuzzyIndexError):
        FuzzyIndex(tmp_path / "short.fuzzy", SECRET)
    (tmp_path / "other.fuzzy").write_bytes(b"SQLite format 3\0" + bytes(200))
    with pytest.raises(FuzzyIndexError):
        FuzzyIndex(tmp_path / "other.fuzzy", SECRET)
    discard_index(tmp_path, "snap")
    discard_index(tmp_path, "snap")
    assert not index_path(tmp_path, "snap").exists()


def test_fallback_answers_only_at_or_above_min_score(tmp_path: Path, index: FuzzyIndex) -> None:
    index.close()
    fallback = FuzzyFallback.open(tmp_path, SECRET, "snap", 0.92)
    scores = fallback.scores([
        ("Moh. Suharto", "1965-03-02"),
        ("Siti Aminah Putri", "1980-01-01"),
        ("", "1980-01-01"),
        ("Siti Aminah", None),
        (None, None),
    ])
    fallback.close()
    assert scores[0] == 1.0 and scores[1:] == [None, None, None, None]


def test_keys_are_separate_from_each_other_and_from_the_secret() -> None:
    keys = FuzzyKeys.from_secret(SECRET)
    values = {keys.block, keys.bloom, keys.mask, keys.lexicon, SECRET}
    assert len(values) == 5


def test_a_synthetic_register_finds_its_people(tmp_path: Path) -> None:
    register = SyntheticRegister(3000, seed=5)
    work = tmp_path / "work"
    work.mkdir()
    builder = FuzzyIndexBuilder(tmp_path / "r.fuzzy", SECRET, work)
    for i in range(len(register)):
        person = register.row(i)
        builder.add(i + 2, person.nama, person.tanggal_lahir)
    builder.finish()
    with FuzzyIndex(tmp_path / "r.fuzzy", SECRET) as found:
        people = [register.row(i) for i in range(0, 3000, 37)]
        people = [p for p in people if sum(map(len, normalise_name(p.nama))) >= 5]
        scores = found.best_scores((p.nama.upper(), p.tanggal_lahir) for p in people)
    assert min(scores) == 1.0


def test_record_count_limit_is_explicit() -> None:
    assert fuzzy.MAX_RECORDS >= 10_000_000  # the asn-register flow's max_rows
