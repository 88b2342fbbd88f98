"""The policy commands as an administrator and a compliance officer use them, and their effect
on a running exchange."""

from __future__ import annotations

import csv
import io
import json
import signal
import time
from pathlib import Path

import pytest

from exchanged.testing import synth
from tests.integration.support import AGREEMENT, Agency, Exchange, exchanged, write_csv


def test_explain_says_why(exchange: Exchange) -> None:
    out = exchanged("policy", "explain", "--home", str(exchange.home), "--agency", "kemensos",
                    "--flow", "kpm-verification", "--date", "2026-11-26",
                    "--columns", "ref,nik,alamat").stdout
    assert "decision: DENY" in out
    assert "refused by: kpm-verification.columns.listed" in out
    assert "en: Column alamat is not listed" in out and "id: Kolom alamat tidak tercantum" in out
    # the home holds an example extension: the agreement is in force
    assert "AGREEMENT_NOT_IN_FORCE" not in out
    data = json.loads(exchanged("policy", "explain", "--home", str(exchange.home), "--agency",
                                "bkn", "--flow", "asn-register", "--format", "json").stdout)
    assert data["allow"] is True and data["decided_by"] == ["asn-register.sender"]
    assert {r["rule"] for r in data["rules"]} >= {"agreement.validity", "asn-register.size"}


def test_explain_needs_a_request(exchange: Exchange) -> None:
    r = exchanged("policy", "explain", "--home", str(exchange.home), check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_a_recorded_decision_replays_the_same(exchange: Exchange, kemensos: Agency,
                                              work: Path) -> None:
    sealed = kemensos.seal(write_csv(work / "b.csv", "ref,nik,alamat\nA,3171014101900001,x\n"),
                           "replay-me.csv.gpg")
    kemensos.submit("kpm-verification", sealed)
    assert kemensos.codes("kpm-verification", "replay-me") == ["COLUMN_NOT_ALLOWED"]
    entry = exchange.ledger("--batch", "replay-me", "--kind", "batch.rejected")[-1]
    assert entry["data"]["rules"] == ["kpm-verification.columns.listed"]  # type: ignore[index]
    assert entry["data"]["purpose"] == "verifikasi-kpm"  # type: ignore[index]
    r = exchanged("policy", "explain", "--home", str(exchange.home), "--seq", str(entry["seq"]))
    assert "replayed now: the same" in r.stdout
    # an entry that is no policy decision cannot be replayed
    first = exchange.ledger("--kind", "ledger.created")[0]
    r = exchanged("policy", "explain", "--home", str(exchange.home), "--seq", str(first["seq"]),
                  check=False)
    assert r.returncode == 2 and "not a policy decision" in r.stderr


def test_policy_test_passes_in_a_fresh_home(exchange: Exchange) -> None:
    out = exchanged("policy", "test", "--home", str(exchange.home)).stdout
    assert "48 case(s), 48 passed" in out and "rules exercised: 40 of 40" in out


def test_policy_test_fails_on_a_wrong_case(exchange: Exchange, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: exchanged/policy-tests-v1\ncases:\n  - name: wrong\n"
                   "    request: {agency: bkn, flow: asn-register, date: 2025-01-01}\n"
                   "    expect: {decision: deny}\n")
    r = exchanged("policy", "test", "--home", str(exchange.home), str(bad), check=False)
    assert r.returncode == 1
    assert "FAIL bad.yaml:3 wrong: expected deny, got allow" in r.stdout
    assert "rules no test exercised:" in r.stdout


def test_force_majeure_is_recorded(exchange: Exchange) -> None:
    out = exchanged("policy", "force-majeure", "--home", str(exchange.home), AGREEMENT,
                    "--party", "bkn", "--occurred", "2026-01-01", "--reference",
                    "EXAMPLE notice").stdout
    assert "late" in out
    entry = exchange.ledger("--kind", "agreement.force_majeure")[-1]
    assert entry["agency"] == "bkn" and entry["data"]["late"] is True  # type: ignore[index]
    assert entry["data"]["deadline"] == "2026-01-15"  # type: ignore[index]


def test_kpm_register_and_kpm_status(exchange: Exchange, kemensos: Agency, bkn: Agency,
                                     work: Path) -> None:
    """BKN's limited access to KPM data (Pasal 4 ayat (1) huruf a): only status and programme."""
    register = synth.SyntheticRegister(1000, seed=4)
    people = list(synth.kpm_batch(register, 300, seed=9))
    valid = [p for p in people if p.expected_status != "TIDAK_VALID"]
    kpm, asked = valid[:150], valid[100:250]
    lines = ["nik,program,nkk"] + [f"{p.nik.strip()},{'PKH' if i % 2 else 'BPNT'},"
                                   for i, p in enumerate(kpm)]
    sealed = kemensos.seal(write_csv(work / "kpm.csv", "\n".join(lines) + "\n"), "kpm-snap.csv.gpg")
    kemensos.submit("kpm-register", sealed)
    summary = kemensos.outcome("kpm-register", "kpm-snap.result.csv.gpg").decode()
    assert '"ROWS_LOADED","150"' in summary
    query = ["ref,nik"] + [f"Q{i},{p.nik.strip()}" for i, p in enumerate(asked)]
    sealed = bkn.seal(write_csv(work / "q.csv", "\n".join(query) + "\n"), "asn-check.csv.gpg")
    bkn.submit("kpm-status", sealed)
    answer = list(csv.reader(io.StringIO(
        bkn.outcome("kpm-status", "asn-check.result.csv.gpg").decode())))
    assert answer[0] == ["ref", "nik", "status", "program", "alasan"]
    statuses = [row[2] for row in answer[1:]]
    assert statuses == ["KPM"] * 50 + ["TIDAK_DITEMUKAN"] * 100
    assert {row[3] for row in answer[1:51]} == {"PKH", "BPNT"}


def test_functional_positions_need_a_register(exchange: Exchange, kemensos: Agency,
                                             work: Path) -> None:
    csv = ("nip,nama,jabatan,jenjang_jabatan,unit_kerja,tmt_jabatan\n"
           "199001012015031001,A,Pekerja Sosial,Ahli Pertama,Ditjen,2020-01-01\n")
    kemensos.submit("jabfung-integration", kemensos.seal(write_csv(work / "j.csv", csv),
                                                          "jf-1.csv.gpg"))
    assert kemensos.codes("jabfung-integration", "jf-1") == ["NO_REFERENCE_DATA"]


@pytest.mark.usefixtures("exchange")
def test_terminate_then_reload_refuses_batches(exchange: Exchange, kemensos: Agency,
                                               work: Path) -> None:
    assert exchange.proc is not None
    r = exchanged("policy", "terminate", "--home", str(exchange.home), AGREEMENT, "--on",
                  "2026-01-01", "--reference", "EXAMPLE termination", "--clause",
                  "Pasal 6 ayat (3)")
    assert "addendum" in r.stdout
    out = exchanged("policy", "check", "--home", str(exchange.home)).stdout
    assert "terminated on 2026-01-01" in out
    assert exchange.ledger("--kind", "policy.terminated")
    exchange.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        reloads = exchange.ledger("--kind", "policy.reloaded")
        if reloads:
            break
        time.sleep(0.2)
    sealed = kemensos.seal(write_csv(work / "b.csv", "nik\n3171014101900001\n"),
                           "after-end.csv.gpg")
    kemensos.submit("kpm-verification", sealed)
    body = kemensos.rejection("kpm-verification", "after-end")
    assert body["reasons"][0]["code"] == "AGREEMENT_TERMINATED"  # type: ignore[index]
    assert "Pasal 6 ayat (3)" in body["reasons"][0]["message"]  # type: ignore[index]
    r = exchanged("policy", "terminate", "--home", str(exchange.home), AGREEMENT, "--on",
                  "2026-02-01", "--reference", "again", check=False)
    assert r.returncode == 2 and "already terminated" in r.stderr
