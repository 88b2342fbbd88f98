"""The functional-position flow (jabfung-integration) end to end, checked row by row against
the generator's ground truth: BKN loads a register that carries functional positions, Kemensos
sends positions and learns, per employee, SESUAI, BERBEDA (naming the fields), TIDAK_DITEMUKAN
or TIDAK_VALID — never SIASN's values."""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path

import pytest

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


# -- the functional-position flow is no oracle (issue 11) --------------------------------------

JF_HEADER = ["ref", "nip", "nama", "jabatan", "jenjang_jabatan", "unit_kerja", "tmt_jabatan"]


@pytest.fixture(scope="module")
def positions(exchange: Exchange, bkn: Agency, tmp_path_factory: pytest.TempPathFactory
              ) -> synth.SyntheticRegister:
    """A small register with functional positions, loaded by BKN."""
    register = synth.SyntheticRegister(100, seed=35)
    reg_csv = tmp_path_factory.mktemp("jf-oracle") / "asn-oracle.csv"
    synth.write_register_csv(reg_csv, register, functional_positions=True)
    bkn.submit("asn-register", bkn.seal(reg_csv, "asn-oracle.csv.gpg"))
    bkn.outcome("asn-register", "asn-oracle.result.csv.gpg")
    return register


def holders(register: synth.SyntheticRegister, count: int
            ) -> list[tuple[str, synth.FunctionalPosition]]:
    """The NIPs and positions of the first ``count`` register people holding a position."""
    found = [(register.row(i).nip, synth.functional_position(register, i))
             for i in range(len(register))]
    return [(nip, position) for nip, position in found if position.jabatan][:count]


def jf_csv(path: Path, rows: list[tuple[str, str, synth.FunctionalPosition, str | None]]
           ) -> Path:
    """A jabfung-integration batch: (ref, nip, position, tmt_jabatan sent instead)."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(JF_HEADER)
        for ref, nip, position, tmt in rows:
            writer.writerow([ref, nip, "Nama", position.jabatan, position.jenjang_jabatan,
                             position.unit_kerja, tmt or position.tmt_jabatan])
    return path


def test_one_nip_on_128_lines_is_refused_by_line(exchange: Exchange,
                                                 positions: synth.SyntheticRegister,
                                                 kemensos: Agency, work: Path) -> None:
    """The oracle of issue 11: one NIP on 128 lines, each with another tmt_jabatan, read
    SIASN's date off the one SESUAI. Now the batch is refused, naming lines, never the NIP,
    nothing compared and nothing counted."""
    [(nip, position)] = holders(positions, 1)
    start = datetime.date(2019, 1, 1)
    path = jf_csv(work / "oracle.csv", [
        (f"T{d}", nip, position, (start + datetime.timedelta(days=d)).isoformat())
        for d in range(128)])
    kemensos.submit("jabfung-integration", kemensos.seal(path, "jf-oracle.csv.gpg"))
    reasons = kemensos.rejection("jabfung-integration", "jf-oracle")["reasons"]
    assert isinstance(reasons, list) and [r["code"] for r in reasons] == ["REPEATED_NIP"]
    assert "127 line(s) repeat the NIP of an earlier line; the first: 3 (2), 4 (2)," \
        in reasons[0]["message"]
    assert nip not in reasons[0]["message"]
    entries = {e["kind"]: e for e in exchange.ledger("--batch", "jf-oracle")}
    assert "batch.processed" not in entries
    assert entries["batch.rejected"]["data"]["codes"] == ["REPEATED_NIP"]  # type: ignore[index]


def test_a_nip_is_compared_at_most_three_times_in_thirty_days(
        exchange: Exchange, positions: synth.SyntheticRegister, kemensos: Agency,
        work: Path) -> None:
    """Three comparisons of a NIP in 30 days (the shipped bound, its refused batch above
    counting none): the fourth row of it is TIDAK_DIPERIKSA, not compared, and the batch goes
    on; the ledger counts rows, ledger.db and the log never hold the NIP."""
    (nip, position), (other, other_position) = holders(positions, 2)
    wrong = "2001-01-01" if position.tmt_jabatan != "2001-01-01" else "2001-01-02"
    answers = []
    for n in range(4):
        rows = [("X", nip, position, wrong if n == 1 else None)]
        if n == 3:
            rows.append(("Y", other, other_position, None))
        path = jf_csv(work / f"jf-bound-{n}.csv", rows)
        kemensos.submit("jabfung-integration", kemensos.seal(path, f"jf-bound-{n}.csv.gpg"))
        answers.append(rows_of(kemensos.outcome("jabfung-integration",
                                                f"jf-bound-{n}.result.csv.gpg")))
    assert [[(r["ref"], r["status"], r["berbeda"]) for r in a] for a in answers] == [
        [("X", "SESUAI", "")], [("X", "BERBEDA", "tmt_jabatan")], [("X", "SESUAI", "")],
        [("X", "TIDAK_DIPERIKSA", ""), ("Y", "SESUAI", "")]]
    last = exchange.ledger("--batch", "jf-bound-3", "--kind", "batch.processed")[0]["data"]
    assert last["counts"]["TIDAK_DIPERIKSA"] == 1  # type: ignore[index]
    assert last["comparisons"] == {"compared": 1, "not_compared": 1, "bound": 3,  # type: ignore[index]
                                   "days": 30}
    raw = b"".join(p.read_bytes() for p in exchange.home.glob("ledger.db*"))
    assert nip.encode() not in raw and other.encode() not in raw
    assert nip not in exchange.log.read_text(errors="replace")
