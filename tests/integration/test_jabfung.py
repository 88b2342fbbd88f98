"""The functional-position flow (jabfung-integration) end to end, checked row by row against
the generator's ground truth: BKN loads a register that carries functional positions, Kemensos
sends positions and learns, per employee, SESUAI, BERBEDA (naming the fields), TIDAK_DITEMUKAN
or TIDAK_VALID — never SIASN's values."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from exchanged.testing import synth
from tests.integration.support import Agency, Exchange

REGISTER_ROWS = 2000


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_functional_positions_compared_row_by_row(exchange: Exchange, bkn: Agency,
                                                   kemensos: Agency, work: Path) -> None:
    register = synth.SyntheticRegister(REGISTER_ROWS, seed=31)
    reg_csv = work / "asn-jf.csv"
    synth.write_register_csv(reg_csv, register, functional_positions=True)
    bkn.submit("asn-register", bkn.seal(reg_csv, "asn-jf.csv.gpg"))
    summary = rows_of(bkn.outcome("asn-register", "asn-jf.result.csv.gpg"))
    assert {r["code"]: r["detail"] for r in summary}["ROWS_LOADED"] == str(REGISTER_ROWS)

    batch, truth = work / "jf.csv", work / "jf.truth.csv"
    synth.write_jabfung_csv(batch, synth.jabfung_batch(register, 800, seed=32), truth)
    kemensos.submit("jabfung-integration", kemensos.seal(batch, "jf-2026-11.csv.gpg"))
    answer = rows_of(kemensos.outcome("jabfung-integration", "jf-2026-11.result.csv.gpg"))
    expected = list(csv.DictReader(truth.open(encoding="utf-8")))
    assert len(answer) == len(expected) == 800
    assert list(answer[0]) == ["ref", "nip", "status", "berbeda"]
    for got, want in zip(answer, expected, strict=True):
        assert got["ref"] == want["ref"]
        assert got["nip"] == want["nip"].strip()
        assert (got["status"], got["berbeda"]) == (want["expected_status"],
                                                   want["expected_berbeda"]), want["ref"]
    statuses = {r["status"] for r in answer}
    assert statuses == {"SESUAI", "BERBEDA", "TIDAK_DITEMUKAN", "TIDAK_VALID"}

    # the answer names fields, never SIASN's values
    data = "\n".join(",".join(r.values()) for r in answer)
    for i in range(REGISTER_ROWS):
        position = synth.functional_position(register, i)
        if position.unit_kerja:
            assert position.unit_kerja not in data
    processed = exchange.ledger("--batch", "jf-2026-11", "--kind", "batch.processed")[0]
    counts = processed["data"]["counts"]  # type: ignore[index]
    assert sum(counts.values()) == 800  # type: ignore[union-attr]
    assert counts["BERBEDA"] == sum(1 for r in answer if r["status"] == "BERBEDA")  # type: ignore[index]
    exchange.verify()


def test_positions_against_a_register_that_holds_none(exchange: Exchange, bkn: Agency,
                                                      kemensos: Agency, work: Path) -> None:
    register = synth.SyntheticRegister(300, seed=33)
    reg_csv = work / "asn-plain.csv"
    synth.write_register_csv(reg_csv, register)
    bkn.submit("asn-register", bkn.seal(reg_csv, "asn-plain.csv.gpg"))
    bkn.outcome("asn-register", "asn-plain.result.csv.gpg")
    person = register.row(7)
    path = work / "one.csv"
    path.write_text("nip,nama,jabatan,jenjang_jabatan,unit_kerja,tmt_jabatan\n"
                    f"{person.nip},{person.nama.split(',')[0]},Pekerja Sosial,Ahli Pertama,"
                    "Dinas Sosial,2020-01-01\n")
    kemensos.submit("jabfung-integration", kemensos.seal(path, "jf-plain.csv.gpg"))
    answer = rows_of(kemensos.outcome("jabfung-integration", "jf-plain.result.csv.gpg"))
    assert answer == [{"nip": person.nip, "status": "BERBEDA",
                       "berbeda": "jabatan;jenjang_jabatan;unit_kerja;tmt_jabatan"}]
