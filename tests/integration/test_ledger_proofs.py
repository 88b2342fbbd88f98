"""Checkpoints, proofs and reports, as an agency and compliance staff use them."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk
from tests.integration.support import AGREEMENT, HOST, Agency, Exchange, exchanged, write_csv


def checkpoint(exchange: Exchange) -> Path:
    out = exchanged("ledger", "checkpoint", "--home", str(exchange.home)).stdout
    line = next(x for x in out.splitlines() if x.startswith("signed into "))
    return Path(line.split()[2].rstrip(";"))


def test_checkpoints_are_delivered_to_every_agency(exchange: Exchange, kemensos: Agency,
                                                   bkn: Agency, work: Path) -> None:
    # the daemon signed one at start-up
    assert exchange.ledger("--kind", "ledger.checkpoint")
    path = checkpoint(exchange)
    for agency in (kemensos, bkn):
        assert path.name in agency.desk.listing(HOST, exchange.port, "/outbox/ledger")
        local = agency.desk.download(HOST, exchange.port, f"/outbox/ledger/{path.name}",
                                     work / f"{agency.id}-{path.name}")
        opened = agency.desk.gpg("--status-fd", "2", "--decrypt", str(local))
        assert exchange.fingerprint in opened.stderr.decode()
        head = json.loads(opened.stdout)
        assert head["format"] == "exchanged/checkpoint-v1" and head["tree_size"] > 1


def test_an_agency_proves_an_entry_with_the_checkpoint_alone(exchange: Exchange,
                                                            kemensos: Agency,
                                                            work: Path) -> None:
    sealed = kemensos.seal(write_csv(work / "b.csv", "nik\n3171014101900001\n"), "proved.csv.gpg")
    kemensos.submit("kpm-verification", sealed)
    kemensos.rejection("kpm-verification", "proved")
    seq = exchange.ledger("--batch", "proved", "--kind", "batch.rejected")[0]["seq"]
    cp = checkpoint(exchange)
    proof = work / "proof.json"
    exchanged("ledger", "prove", "--home", str(exchange.home), "--seq", str(seq),
              "--checkpoint", str(cp), "--output", str(proof))
    # the agency's side: no home, only the exchange's public key
    r = exchanged("ledger", "check-proof", "--exchange-key", str(exchange.public_key),
                  "--proof", str(proof), "--checkpoint", str(cp))
    assert f"proven: entry {seq} (batch.rejected" in r.stdout
    forged = json.loads(proof.read_text())
    forged["entry"]["data"] = forged["entry"]["data"].replace("NO_REFERENCE_DATA", "X")
    (work / "forged.json").write_text(json.dumps(forged))
    r = exchanged("ledger", "check-proof", "--exchange-key", str(exchange.public_key),
                  "--proof", str(work / "forged.json"), "--checkpoint", str(cp), check=False)
    assert r.returncode == 1 and "NOT in the ledger" in r.stderr


def test_consistency_between_two_checkpoints(exchange: Exchange, work: Path) -> None:
    old = checkpoint(exchange)
    exchanged("policy", "force-majeure", "--home", str(exchange.home), AGREEMENT, "--party",
              "bkn", "--occurred", "2026-01-02", "--reference", "EXAMPLE")
    new = checkpoint(exchange)
    proof = work / "consistency.json"
    exchanged("ledger", "prove", "--home", str(exchange.home), "--from", str(old),
              "--checkpoint", str(new), "--output", str(proof))
    r = exchanged("ledger", "check-proof", "--exchange-key", str(exchange.public_key),
                  "--proof", str(proof), "--checkpoint", str(old), "--checkpoint", str(new))
    assert "nothing was rewritten" in r.stdout
    r = exchanged("ledger", "verify", "--home", str(exchange.home), "--against", str(old),
                  "--against", str(new))
    assert r.stdout.count("extends") == 2


def test_a_checkpoint_signed_by_another_key_is_refused(exchange: Exchange,
                                                       desks: dict[str, AgencyDesk],
                                                       work: Path) -> None:
    genuine = checkpoint(exchange)
    head = exchange_head = json.loads(
        desks["kemensos"].gpg("--decrypt", str(genuine)).stdout)
    forged_body = work / "forged.json"
    forged_body.write_text(json.dumps(head))
    intruder = desks["intruder"]
    forged = work / "forged.json.asc"
    intruder.gpg("--armor", "--sign", "--output", str(forged), str(forged_body))
    r = exchanged("ledger", "verify", "--home", str(exchange.home), "--against", str(forged),
                  check=False)
    assert r.returncode == 1 and "not signed by the exchange's key" in r.stderr
    assert exchange_head["ledger_id"]


def test_a_checkpoint_of_another_ledger_is_refused(exchange: Exchange, tmp_path: Path) -> None:
    other = tmp_path / "other"
    exchanged("init", "--home", str(other))
    cp = Path(exchanged("ledger", "checkpoint", "--home", str(other)).stdout.split(
        "signed into ")[1].split(";")[0])
    r = exchanged("ledger", "check-proof", "--exchange-key", str(exchange.public_key),
                  "--proof", str(cp), "--checkpoint", str(cp), check=False)
    assert r.returncode == 1  # signed by that other exchange's key, not this one's
    shutil.copy(cp, tmp_path / "foreign.asc")
    r = exchanged("ledger", "verify", "--home", str(exchange.home), "--against",
                  str(tmp_path / "foreign.asc"), check=False)
    assert r.returncode == 1


@pytest.fixture
def tampered(exchange: Exchange, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the home whose ledger is rewritten after a checkpoint."""
    cp = checkpoint(exchange)
    copy = tmp_path / "home"
    shutil.copytree(exchange.home, copy, ignore=shutil.ignore_patterns("S.*", "*.pid"))
    return copy, cp


def test_a_removed_tail_is_caught_only_by_a_checkpoint(tampered: tuple[Path, Path]) -> None:
    copy, cp = tampered
    conn = sqlite3.connect(copy / "ledger.db")
    conn.execute("DROP TRIGGER ledger_no_delete")
    conn.execute("DELETE FROM ledger WHERE seq > (SELECT MAX(seq) - 3 FROM ledger)")
    conn.execute("CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger\n"
                 "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: DELETE refused'); END")
    conn.commit()
    conn.close()
    assert exchanged("ledger", "verify", "--home", str(copy)).returncode == 0
    r = exchanged("ledger", "verify", "--home", str(copy), "--against", str(cp), check=False)
    assert r.returncode == 1 and "entries were removed" in r.stderr


def test_a_rewritten_history_fails_against_the_checkpoint(tampered: tuple[Path, Path]) -> None:
    """Even a rewrite that recomputes every hash of the chain."""
    copy, cp = tampered
    import hashlib

    from exchanged.ledger.merkle import leaf_hash
    from exchanged.ledger.store import GENESIS, entry_bytes

    conn = sqlite3.connect(copy / "ledger.db")
    conn.execute("DROP TRIGGER ledger_no_update")
    rows = conn.execute("SELECT seq, ts, kind, agency, flow, batch, actor, data FROM ledger "
                        "ORDER BY seq").fetchall()
    prev = GENESIS
    for seq, ts, kind, agency, flow, batch, actor, data in rows:
        if seq == 3:
            actor = "someone-else"
        leaf = leaf_hash(entry_bytes(seq, ts, kind, agency, flow, batch, actor, data))
        digest = hashlib.sha256(bytes.fromhex(prev) + leaf).hexdigest()
        conn.execute("UPDATE ledger SET actor = ?, prev = ?, leaf = ?, hash = ? WHERE seq = ?",
                     (actor, prev, leaf.hex(), digest, seq))
        prev = digest
    conn.execute("CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger\n"
                 "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE refused'); END")
    conn.commit()
    conn.close()
    assert exchanged("ledger", "verify", "--home", str(copy)).returncode == 0  # chain is "fine"
    r = exchanged("ledger", "verify", "--home", str(copy), "--against", str(cp), check=False)
    assert r.returncode == 1 and "does NOT extend" in r.stderr


def test_stats(exchange: Exchange) -> None:
    data = json.loads(exchanged("ledger", "stats", "--home", str(exchange.home), "--format",
                                "json").stdout)
    assert data["entries"] > 10 and "batch.received" in data["kind"]
    assert "kemensos" in data["agency"] and "rejected" in data["outcome"]
    table = exchanged("ledger", "stats", "--home", str(exchange.home)).stdout
    assert "by reason:" in table and "by month:" in table


def test_follow_prints_new_entries(exchange: Exchange) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "exchanged", "ledger", "query", "--home", str(exchange.home),
         "--follow", "--kind", "agreement.force_majeure", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        exchanged("policy", "force-majeure", "--home", str(exchange.home), AGREEMENT,
                  "--party", "kemensos", "--occurred", "2026-11-20", "--reference", "FOLLOW")
        time.sleep(2.5)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    assert "FOLLOW" in out


def test_berita_acara_counts_what_happened(exchange: Exchange, kemensos: Agency, bkn: Agency,
                                          work: Path) -> None:
    register = synth.SyntheticRegister(1000, seed=31)
    reg = work / "reg.csv"
    synth.write_register_csv(str(reg), register)
    bkn.submit("asn-register", bkn.seal(reg, "ba-reg.csv.gpg"))
    bkn.outcome("asn-register", "ba-reg.result.csv.gpg")
    batch, truth = work / "k.csv", work / "t.csv"
    synth.write_kpm_csv(str(batch), synth.kpm_batch(register, 400, seed=5), truth_path=str(truth))
    kemensos.submit("kpm-verification", kemensos.seal(batch, "ba-kpm.csv.gpg"))
    kemensos.outcome("kpm-verification", "ba-kpm.result.csv.gpg")
    expected = [row.split(",")[2] for row in truth.read_text().splitlines()[1:]]
    out = work / "ba.json"
    period = time.strftime("%Y") + ("-H1" if int(time.strftime("%m")) <= 6 else "-H2")
    exchanged("report", "berita-acara", "--home", str(exchange.home), "--agreement", AGREEMENT,
              "--period", period, "--format", "json", "--output", str(out))
    doc = json.loads(out.read_text())
    flows = doc["figures"]["flows"]
    statuses = flows["kpm-verification"]["statuses"]
    assert statuses["ASN"] >= expected.count("ASN")
    assert flows["asn-register"]["loads"] >= 1
    assert {s["party"] for s in doc["signatures"]} == {"Kementerian Sosial Republik Indonesia",
                                                      "Badan Kepegawaian Negara"}
    assert any("Pasal 8" in str(t) for t in doc["sections"][0]["tables"])
    recorded = exchange.ledger("--kind", "report.generated")[-1]["data"]
    assert recorded["tree_size"] == doc["figures"]["tree_size"]
    # anyone holding the checkpoint gets the same figures again
    cp = sorted((exchange.home / "checkpoints").glob("*.asc"))[-1]
    again = json.loads(exchanged("report", "berita-acara", "--home", str(exchange.home),
                                 "--agreement", AGREEMENT, "--period", period, "--format",
                                 "json", "--checkpoint", str(cp)).stdout)
    assert again["figures"] == doc["figures"]
    # every format from one run: one checkpoint, one ledger entry citing each file
    stem = work / f"berita-acara-{period}"
    out_text = exchanged("report", "berita-acara", "--home", str(exchange.home), "--agreement",
                         AGREEMENT, "--period", period, "--format", "html,md,json,pdf",
                         "--output", str(stem)).stdout
    files = {fmt: stem.with_name(f"{stem.name}.{fmt}") for fmt in ("html", "md", "json", "pdf")}
    assert all(f.exists() for f in files.values()), out_text
    entry = exchange.ledger("--kind", "report.generated")[-1]["data"]
    assert entry["formats"] == ["html", "md", "json", "pdf"]  # type: ignore[index]
    assert json.loads(files["json"].read_text())["figures"]["tree_size"] == entry["tree_size"]  # type: ignore[index]
    assert files["pdf"].read_bytes().startswith(b"%PDF")
    pdf_text = subprocess.run(["pdftotext", str(files["pdf"]), "-"], capture_output=True,
                              text=True, check=True).stdout
    assert "BERITA ACARA HASIL PEMADANAN DATA" in pdf_text.upper()
    assert "SEMENTARA" in pdf_text  # this half-year has not ended
    html = files["html"].read_text()
    assert "<h1>Berita Acara Hasil Pemadanan Data</h1>" in html and "@page" in html
    assert "data:image/svg+xml;base64," in html
    # no personal data in the report
    person = register.row(0)
    assert person.nik not in html and person.nama not in html


def test_evaluasi(exchange: Exchange) -> None:
    period = time.strftime("%Y")
    md = exchanged("report", "evaluasi", "--home", str(exchange.home), "--agreement", AGREEMENT,
                   "--period", period, "--format", "md").stdout
    assert "# Laporan Pemantauan dan Evaluasi" in md
    assert "Login SFTP gagal" in md and "Integritas ledger" in md and "utuh" in md
    r = exchanged("report", "evaluasi", "--home", str(exchange.home), "--agreement", AGREEMENT,
                  "--period", "2026-H3", check=False)
    assert r.returncode == 2
