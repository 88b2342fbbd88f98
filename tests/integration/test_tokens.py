"""Matching on keyed tokens end to end: Kemensos makes a token key and hands BKN a copy, an
addendum names its fingerprint for asn-register and kpm-verification, BKN loads its register
with 'submit --tokenize', Kemensos sends a KPM batch the same way and gets the right ASN /
TIDAK_DITEMUKAN / TIDAK_VALID answers with its own NIKs back, while the exchange saw only tokens.
A raw NIK sent over OpenSSH sftp into the token flow is refused; so is a token in a NIK flow."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchanged.ids import nik as nik_id
from exchanged.ids import token as tk
from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import AGREEMENT, HOST, Agency, Exchange, exchanged, make_exchange


def addendum(fingerprint: str) -> str:
    tokens = (f"tokens: {{key_fingerprint: '{fingerprint}', clause: Pasal 9 ayat (9), "
              "reference: EXAMPLE ONLY - Adendum token test}")
    return f"""format: exchanged/addendum-v1
addendum:
  agreement: {AGREEMENT}
  number: 2
  reference: EXAMPLE ONLY - matching on keyed tokens, for a test
  recorded: '2026-01-01'
  clause: Pasal 9 ayat (9); Pasal 12 ayat (2)
  example: true
  amend_flows:
    asn-register:
      {tokens}
    kpm-verification:
      {tokens}
"""


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Kemensos makes the key; BKN gets a copy by hand (here: a file copy), never by the
    exchange."""
    folder = tmp_path_factory.mktemp("token-keys")
    mine = folder / "kemensos.key"
    out = exchanged("client", "token-key", "new", "--output", str(mine)).stdout
    theirs = folder / "bkn.key"
    shutil.copyfile(mine, theirs)
    theirs.chmod(0o600)
    fingerprint = out.split("fingerprint ", 1)[1].split()[0]
    assert exchanged("client", "token-key", "fingerprint", str(theirs)).stdout.strip() == \
        fingerprint
    other = folder / "other.key"
    exchanged("client", "token-key", "new", "--output", str(other))
    return {"kemensos": mine, "bkn": theirs, "other": other}


@pytest.fixture(scope="module")
def token_exchange(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk],
                   keys: dict[str, Path]) -> Iterator[Exchange]:
    ex = make_exchange(tmp_path_factory.mktemp("tokens"), desks)
    fingerprint = exchanged("client", "token-key", "fingerprint", str(keys["kemensos"])).stdout
    (ex.home / "policies" / f"{AGREEMENT}.addendum-002.yaml").write_text(
        addendum(fingerprint.strip()))
    assert "in force" in exchanged("policy", "check", "--home", str(ex.home)).stdout
    ex.start()
    yield ex
    if ex.alive():
        ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")


def submit(ex: Exchange, desk: AgencyDesk, state: Path, *args: str, check: bool = True
           ) -> tuple[int, str]:
    r = exchanged("submit", "--server", f"{HOST}:{ex.port}", "--agency", desk.agency,
                  "--ssh-key", str(desk.ssh_key), "--gnupghome", str(desk.gnupg),
                  "--state", str(state), "--quiet", "--exchange-key", str(ex.public_key),
                  *args, check=check)
    return r.returncode, r.stdout + r.stderr


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_a_tokenized_register_then_a_tokenized_kpm_batch(
        token_exchange: Exchange, desks: dict[str, AgencyDesk], keys: dict[str, Path],
        work: Path) -> None:
    ex = token_exchange
    register = synth.SyntheticRegister(800, seed=61)
    reg_csv = work / "asn.csv"
    synth.write_register_csv(reg_csv, register)
    # one register line with a NIK that is not structurally valid: found on BKN's machine
    with reg_csv.open("a", encoding="utf-8") as f:
        f.write("199001012015031001,31710100000000,Contoh Salah,1990-01-01,PNS,Kementerian X\n")
    code, out = submit(ex, desks["bkn"], work / "bkn-state", "--flow", "asn-register",
                       "--batch-id", "asn-tok", "--tokenize", "--token-key", str(keys["bkn"]),
                       "--output", str(work / "asn.result.csv"), str(reg_csv))
    assert code == 0, out
    assert "1 NIK(s) found invalid here" in out
    summary = list(csv.reader((work / "asn.result.csv").open()))
    assert ["summary", "", "ROWS_LOADED", "800"] in summary
    assert ["invalid", "802", "INVALID_NIK", "nik is not a structurally valid NIK"] in summary

    batch, truth = work / "kpm.csv", work / "kpm.truth.csv"
    rows = list(synth.kpm_batch(register, 600, seed=62, asn_fraction=0.2, invalid_fraction=0.05))
    synth.write_kpm_csv(batch, rows, truth_path=truth)
    answer_file = work / "kpm.result.csv"
    code, out = submit(ex, desks["kemensos"], work / "kemensos-state", "--flow",
                       "kpm-verification", "--batch-id", "kpm-tok", "--tokenize", "--token-key",
                       str(keys["kemensos"]), "--output", str(answer_file), str(batch))
    assert code == 0, out
    answer = rows_of(answer_file.read_bytes())
    assert list(answer[0]) == ["ref", "nik", "status", "jenis_asn", "instansi", "alasan"]
    assert {r.expected_status for r in rows} == {"ASN", "TIDAK_DITEMUKAN", "TIDAK_VALID"}
    for got, row in zip(answer, rows, strict=True):
        assert (got["ref"], got["status"], got["jenis_asn"], got["instansi"]) == (
            row.ref, row.expected_status, row.expected_jenis_asn, row.expected_instansi)
        try:
            assert got["nik"] == nik_id.validate(row.nik)
        except ValueError:
            assert got["nik"] == row.nik.strip()
        # why a NIK is invalid was found on the agency's machine and is said the same way
        assert got["alasan"] == (nik_id.problem(row.nik) or "" if row.expected_status
                                 == "TIDAK_VALID" else "")

    # what the exchange itself answered, fetched with OpenSSH sftp: tokens, never a NIK
    kemensos = Agency(desks["kemensos"], ex)
    seen = rows_of(kemensos.outcome("kpm-verification", "kpm-tok.result.csv.gpg"))
    assert all(s["nik"] == "" or tk.looks_like_token(s["nik"]) for s in seen)
    assert [s["status"] for s in seen] == [r.expected_status for r in rows]
    processed = [e["data"] for e in ex.ledger("--kind", "batch.processed")]
    assert [d["matching"] for d in processed] == ["tokens", "tokens"]  # type: ignore[index]
    fingerprint = exchanged("client", "token-key", "fingerprint", str(keys["bkn"])).stdout.strip()
    assert {d["token_key"] for d in processed} == {fingerprint}  # type: ignore[index]


def test_raw_niks_into_a_token_flow_and_tokens_into_a_nik_flow_are_refused(
        token_exchange: Exchange, desks: dict[str, AgencyDesk], keys: dict[str, Path],
        work: Path) -> None:
    ex = token_exchange
    kemensos = Agency(desks["kemensos"], ex)
    plain = work / "plain.csv"
    plain.write_text("ref,nik\nr1,3171014101900001\n")
    plain.chmod(0o600)
    kemensos.submit("kpm-verification", kemensos.seal(plain, "raw-nik.csv.gpg"))
    rejection = kemensos.rejection("kpm-verification", "raw-nik")
    assert [r["code"] for r in rejection["reasons"]] == ["NIK_NOT_TOKENIZED"]  # type: ignore[index,union-attr]
    assert "3171014101900001" not in str(rejection)
    # the same file through the client without --tokenize: refused, said in one line
    code, out = submit(ex, desks["kemensos"], work / "s1", "--flow", "kpm-verification", str(plain),
                       check=False)
    assert code == 1 and "NIK_NOT_TOKENIZED" in out
    # a token made with another key
    code, out = submit(ex, desks["kemensos"], work / "s2", "--flow", "kpm-verification",
                       "--tokenize", "--token-key", str(keys["other"]), str(plain), check=False)
    assert code == 1 and "TOKEN_KEY_MISMATCH" in out
    # tokens into kpm-register, which the addendum left on NIKs
    kpm_register = work / "kpmreg.csv"
    kpm_register.write_text("nik,program\n3171014101900001,PKH\n")
    kpm_register.chmod(0o600)
    code, out = submit(ex, desks["kemensos"], work / "s3", "--flow", "kpm-register",
                       "--tokenize", "--token-key", str(keys["kemensos"]), str(kpm_register),
                       check=False)
    assert code == 1 and "TOKEN_IN_PLAIN_FLOW" in out
    rejected = [e["data"] for e in ex.ledger("--kind", "batch.rejected")]
    assert [r["rules"] for r in rejected] == [  # type: ignore[index]
        ["kpm-verification.tokens"]] * 3 + [["kpm-register.tokens"]]
    assert all("3171014101900001" not in str(e) for e in ex.ledger())
