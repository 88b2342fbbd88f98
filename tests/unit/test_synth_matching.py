"""The generators for the functional-position flow and the fuzzy fallback (testing.synth)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from exchanged.flows.nip_compare import text_key
from exchanged.ids import nik as nik_id
from exchanged.ids import nip as nip_id
from exchanged.testing import synth
from exchanged.testing.synth.jabfung import FUNCTIONAL_COLUMNS, NO_POSITION
from exchanged.testing.synth.variants import NEGATIVE_KINDS, POSITIVE_KINDS, strip_titles

REGISTER = synth.SyntheticRegister(5000, seed=17)


def test_functional_positions_are_deterministic_and_plausible() -> None:
    positions = [synth.functional_position(REGISTER, i) for i in range(2000)]
    assert positions == [synth.functional_position(REGISTER, i) for i in range(2000)]
    holders = [p for p in positions if p is not NO_POSITION]
    assert 0.5 < len(holders) / len(positions) < 0.7
    for i, p in enumerate(positions):
        if p is NO_POSITION:
            continue
        start = nip_id.info(REGISTER.row(i).nip)
        assert p.tmt_jabatan >= f"{start.start_year:04d}" and p.tmt_jabatan <= "2025-10-01"
        assert all(p.fields())


def test_register_csv_with_functional_positions(tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    synth.write_register_csv(path, REGISTER, functional_positions=True)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert list(rows[0]) == [*synth.REGISTER_COLUMNS, *FUNCTIONAL_COLUMNS]
    assert len(rows) == len(REGISTER)
    assert rows[3]["nip"] == REGISTER.row(3).nip
    assert tuple(rows[3][c] for c in FUNCTIONAL_COLUMNS) == synth.functional_position(
        REGISTER, 3).fields()
    plain = tmp_path / "plain.csv"
    synth.write_register_csv(plain, REGISTER)
    assert plain.read_text().splitlines()[0] == ",".join(synth.REGISTER_COLUMNS)


def test_jabfung_batch_truth_agrees_with_the_register() -> None:
    by_nip = {REGISTER.row(i).nip: synth.functional_position(REGISTER, i)
              for i in range(len(REGISTER))}
    rows = list(synth.jabfung_batch(REGISTER, 1500, seed=4))
    assert rows == list(synth.jabfung_batch(REGISTER, 1500, seed=4))
    counts = Counter(r.expected_status for r in rows)
    assert set(counts) == {"SESUAI", "BERBEDA", "TIDAK_DITEMUKAN", "TIDAK_VALID"}
    for r in rows:
        sent = (r.jabatan, r.jenjang_jabatan, r.unit_kerja, r.tmt_jabatan)
        if r.expected_status == "TIDAK_VALID":
            continue
        assert nip_id.is_valid(r.nip)
        if r.expected_status == "TIDAK_DITEMUKAN":
            assert r.nip not in by_nip
            continue
        kept = by_nip[r.nip].fields()
        differ = [c for c, s, k in zip(FUNCTIONAL_COLUMNS, sent, kept, strict=True)
                  if (s != k if c == "tmt_jabatan" else text_key(s) != text_key(k))]
        assert ";".join(differ) == r.expected_berbeda, r
        assert (r.expected_status == "SESUAI") == (not differ)


def test_jabfung_csv_and_truth(tmp_path: Path) -> None:
    batch, truth = tmp_path / "jf.csv", tmp_path / "jf.truth.csv"
    n = synth.write_jabfung_csv(batch, synth.jabfung_batch(REGISTER, 50, seed=1), truth)
    assert n == 50
    assert batch.read_text().splitlines()[0] == ",".join(synth.JABFUNG_COLUMNS)
    assert truth.read_text().splitlines()[0] == ",".join(synth.JABFUNG_TRUTH_COLUMNS)
    assert len(truth.read_text().splitlines()) == 51


def test_fuzzy_cases_are_labelled_and_outside_the_register() -> None:
    cases = list(synth.fuzzy_cases(REGISTER, 1500, seed=9))
    assert cases == list(synth.fuzzy_cases(REGISTER, 1500, seed=9))
    niks = {REGISTER.row(i).nik for i in range(len(REGISTER))}
    kinds = Counter(c.kind for c in cases)
    assert set(POSITIVE_KINDS) <= set(kinds) and set(NEGATIVE_KINDS) <= set(kinds)
    for c in cases:
        assert nik_id.is_valid(c.nik) and c.nik not in niks
        if c.person < 0:
            assert c.kind == "background" and c.expected_status == "TIDAK_DITEMUKAN"
            continue
        person = REGISTER.row(c.person)
        if c.expected_status == synth.FUZZY_STATUS:
            assert c.kind in POSITIVE_KINDS and c.tanggal_lahir == person.tanggal_lahir
        else:
            assert c.kind in NEGATIVE_KINDS
            assert (c.tanggal_lahir != person.tanggal_lahir) == (c.kind == "other_date")
            if c.kind != "other_date":
                assert c.nama.lower() != strip_titles(person.nama).lower()


def test_fuzzy_csv(tmp_path: Path) -> None:
    batch, truth = tmp_path / "f.csv", tmp_path / "f.truth.csv"
    assert synth.write_fuzzy_csv(batch, synth.fuzzy_cases(REGISTER, 30, seed=2), truth) == 30
    assert batch.read_text().splitlines()[0] == "ref,nik,nama,tanggal_lahir"
    assert truth.read_text().splitlines()[0] == ",".join(synth.FUZZY_TRUTH_COLUMNS)
