"""The streamed pipeline end to end: malformed rows in the middle of plain ones, mixed line
ends, and answers computed before the signature turned out bad (discarded, nothing kept)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from exchanged.csvio import CsvReader, CsvWriter
from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk
from tests.integration.support import HOST, Agency, Exchange

REGISTER_ROWS = 2000


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_register_with_mixed_line_ends_and_bad_rows(exchange: Exchange, bkn: Agency,
                                                    work: Path) -> None:
    register = synth.SyntheticRegister(REGISTER_ROWS, seed=41)
    path = work / "reg.csv"
    synth.write_register_csv(str(path), register)
    lines = path.read_bytes().split(b"\n")
    # CRLF on every third line, a quote left open in the middle, a row with a field too many
    lines = [line + b"\r" if i % 3 == 0 and line else line for i, line in enumerate(lines)]
    lines[700] = lines[700].replace(b",PNS,", b',"PNS,')
    lines[900] = lines[900] + b",extra"
    path.write_bytes(b"\n".join(lines))
    bkn.submit("asn-register", bkn.seal(path, "asn-mixed.csv.gpg"))
    summary = rows_of(bkn.outcome("asn-register", "asn-mixed.result.csv.gpg"))
    totals = {r["code"]: r["detail"] for r in summary if r["record"] == "summary"}
    invalid = [(r["line"], r["code"]) for r in summary if r["record"] == "invalid"]
    # the lines and codes the csv module gives, row by row
    unreadable = [(str(r.line), r.problem.code) for r in CsvReader(io.BytesIO(path.read_bytes()))
                  if r.problem is not None]
    assert {code for _, code in unreadable} == {"BAD_CSV", "WRONG_FIELD_COUNT"}
    assert invalid == unreadable
    assert int(totals["ROWS_LOADED"]) + int(totals["ROWS_INVALID"]) == int(totals["ROWS_READ"])


def test_a_malformed_row_in_the_middle_is_answered_and_the_rest_goes_on(
        exchange: Exchange, bkn: Agency, kemensos: Agency, work: Path) -> None:
    register = synth.SyntheticRegister(REGISTER_ROWS, seed=42)
    path = work / "reg.csv"
    synth.write_register_csv(str(path), register)
    bkn.submit("asn-register", bkn.seal(path, "asn-42.csv.gpg"))
    bkn.outcome("asn-register", "asn-42.result.csv.gpg")
    batch, truth = work / "kpm.csv", work / "kpm.truth.csv"
    rows = 120_000
    synth.write_kpm_csv(str(batch), synth.kpm_batch(register, rows, seed=5), truth_path=str(truth))
    lines = batch.read_bytes().split(b"\n")
    middle = rows // 2
    lines[middle] = lines[middle] + b",too,many"
    batch.write_bytes(b"\n".join(lines))
    kemensos.submit("kpm-verification", kemensos.seal(batch, "kpm-middle.csv.gpg"))
    answer = rows_of(kemensos.outcome("kpm-verification", "kpm-middle.result.csv.gpg",
                                      timeout=120))
    expected = list(csv.DictReader(truth.open(encoding="utf-8")))
    assert len(answer) == rows
    for i, (got, want) in enumerate(zip(answer, expected, strict=True)):
        if i == middle - 1:
            assert (got["ref"], got["nik"], got["status"]) == ("", "", "TIDAK_VALID")
            continue
        assert got["ref"] == want["ref"]
        assert got["status"] == want["expected_status"]
        assert got["instansi"] == want["expected_instansi"]


def test_an_answer_from_a_badly_signed_batch_is_discarded(
        exchange: Exchange, kemensos: Agency, bkn: Agency, work: Path,
        desks: dict[str, AgencyDesk]) -> None:
    register = synth.SyntheticRegister(REGISTER_ROWS, seed=43)
    path = work / "reg.csv"
    synth.write_register_csv(str(path), register)
    snapshots = exchange.home / "reference" / "asn-register"
    before = sorted(p.name for p in snapshots.iterdir())
    # a whole register, processed as it streams, then refused for its signer
    intruder = desks["intruder"]
    sealed = intruder.seal(path, work / "asn-intruder.csv.gpg", recipient=exchange.fingerprint)
    bkn.submit("asn-register", sealed)
    assert bkn.codes("asn-register", "asn-intruder") == ["WRONG_SIGNER"]
    assert sorted(p.name for p in snapshots.iterdir()) == before
    batch = work / "kpm.csv"
    synth.write_kpm_csv(str(batch), synth.kpm_batch(register, 50_000, seed=6))
    sealed = intruder.seal(batch, work / "kpm-intruder.csv.gpg", recipient=exchange.fingerprint)
    kemensos.submit("kpm-verification", sealed)
    assert kemensos.codes("kpm-verification", "kpm-intruder") == ["WRONG_SIGNER"]
    outbox = exchange.home / "drop" / "kemensos" / "outbox" / "kpm-verification"
    assert not (outbox / "kpm-intruder.result.csv.gpg").exists()
    assert not list((exchange.home / "spool").rglob(".outcome.tmp"))
    assert not any((exchange.home / "work").iterdir())
    kinds = [e["kind"] for e in exchange.ledger("--batch", "kpm-intruder")]
    assert "batch.opened" not in kinds and "batch.admitted" not in kinds


@pytest.mark.slow
def test_ten_million_rows_with_one_malformed_in_the_middle(
        exchange: Exchange, bkn: Agency, kemensos: Agency, work: Path) -> None:
    """The issue's case at its real size: 10 million rows, the 5,000,001st malformed. Rows
    repeat three people (an ASN, someone else, an invalid NIK), so the truth is row % 3."""
    register = synth.SyntheticRegister(REGISTER_ROWS, seed=44)
    path = work / "reg.csv"
    synth.write_register_csv(str(path), register)
    bkn.submit("asn-register", bkn.seal(path, "asn-44.csv.gpg"))
    bkn.outcome("asn-register", "asn-44.result.csv.gpg")
    asn = register.row(7)
    outsider = synth.SyntheticRegister(10, seed=45).row(3).nik
    cycle = [f"{asn.nik}\n".encode(), f"{outsider}\n".encode(), b"3171010000000000\n"]
    rows, middle = 10_000_000, 5_000_000
    batch = work / "kpm-10m.csv"
    block = b"".join(cycle) * 100_000  # 300,000 rows, starting with row 0 of the cycle
    with batch.open("wb") as f:
        f.write(b"nik\n")
        done = 0
        while done < rows:
            if done == middle:
                f.write(b"1,2,3\n")  # one row, too many fields wide
                done += 1
            n = min(300_000, (middle if done < middle else rows) - done)
            start = (done % 3) * len(cycle[0])  # every line of the cycle is 17 bytes
            f.write(block[start:start + n * len(cycle[0])])
            done += n
    kemensos.submit("kpm-verification", kemensos.seal(batch, "kpm-10m.csv.gpg"))
    batch.unlink()
    name = "kpm-10m.result.csv.gpg"
    kemensos.desk.wait_for(HOST, exchange.port, "/outbox/kpm-verification", name, timeout=600)
    sealed = kemensos.desk.download(HOST, exchange.port, f"/outbox/kpm-verification/{name}",
                                    work / name)
    answer = work / "answer.csv"
    kemensos.desk.gpg("--output", str(answer), "--decrypt", str(sealed))
    lines = io.BytesIO()
    writer = CsvWriter(lines, ["nik", "status", "jenis_asn", "instansi", "alasan"],
                       header_row=False)
    writer.write_many(
        [[asn.nik, "ASN", asn.jenis_asn, asn.instansi, ""],
         [outsider, "TIDAK_DITEMUKAN", "", "", ""],
         ["3171010000000000", "TIDAK_VALID", "", "", "NIK_BAD_DATE"],
         ["", "TIDAK_VALID", "", "", "WRONG_FIELD_COUNT"]])
    writer.close()
    *want, malformed = lines.getvalue().decode().splitlines()
    with answer.open(encoding="utf-8") as f:
        assert f.readline().rstrip("\r\n") == '"nik","status","jenis_asn","instansi","alasan"'
        count = 0
        for i, line in enumerate(f):
            got = line.rstrip("\r\n")
            if i == middle:
                assert got == malformed
            else:
                assert got == want[i % 3], i
            count += 1
    assert count == rows
    totals = exchange.ledger("--batch", "kpm-10m", "--kind", "batch.processed")
    assert totals and totals[0]["data"]["rows"] == rows  # type: ignore[index]
