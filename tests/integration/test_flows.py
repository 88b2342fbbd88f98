"""The two flows of the Kemensos–BKN agreement, end to end, checked row by row against
the generator's ground truth."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from exchanged.ledger.kinds import KINDS
from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import (
    Agency,
    Exchange,
    exchanged,
    free_port,
    make_exchange,
)

REGISTER_ROWS = 3000


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def load_register(bkn: Agency, work: Path, register: synth.SyntheticRegister, batch: str,
                  extra_lines: str = "") -> list[dict[str, str]]:
    path = work / f"{batch}.csv"
    synth.write_register_csv(str(path), register)
    if extra_lines:
        with path.open("a", encoding="utf-8") as f:
            f.write(extra_lines)
    bkn.submit("asn-register", bkn.seal(path, f"{batch}.csv.gpg"))
    return rows_of(bkn.outcome("asn-register", f"{batch}.result.csv.gpg"))


def verify_kpm(kemensos: Agency, work: Path, register: synth.SyntheticRegister, batch: str,
               rows: int, columns: tuple[str, ...] = ("ref", "nik")) -> list[dict[str, str]]:
    path, truth = work / f"{batch}.csv", work / f"{batch}.truth.csv"
    synth.write_kpm_csv(str(path), synth.kpm_batch(register, rows, seed=len(batch)),
                        columns=columns, truth_path=str(truth))
    kemensos.submit("kpm-verification", kemensos.seal(path, f"{batch}.csv.gpg"))
    answer = rows_of(kemensos.outcome("kpm-verification", f"{batch}.result.csv.gpg"))
    expected = list(csv.DictReader(truth.open(encoding="utf-8")))
    assert len(answer) == len(expected) == rows
    for got, want in zip(answer, expected, strict=True):
        if "ref" in columns:
            assert got["ref"] == want["ref"]
        assert got["status"] == want["expected_status"], (want["ref"], got["status"])
        assert got["jenis_asn"] == want["expected_jenis_asn"]
        assert got["instansi"] == want["expected_instansi"]
    return answer


def test_register_then_verification(exchange: Exchange, bkn: Agency, kemensos: Agency,
                                    work: Path) -> None:
    register = synth.SyntheticRegister(REGISTER_ROWS, seed=11)
    bad = ("199001012015031001,3171 014101900001,Nama Salah,1990-01-01,PNS,X\n"
           "199001012015031002,3171014101900009,Tanggal Salah,1990-02-30,PNS,X\n")
    first = register.row(0)
    dup = f"{first.nip[:-3]}999,{first.nik},Dup NIK,{first.tanggal_lahir},PNS,X\n"
    summary = load_register(bkn, work, register, "asn-1", bad + dup)
    totals = {r["code"]: r["detail"] for r in summary if r["record"] == "summary"}
    assert totals["ROWS_READ"] == str(REGISTER_ROWS + 3)
    assert totals["ROWS_LOADED"] == str(REGISTER_ROWS)
    assert totals["ROWS_INVALID"] == "3"
    invalid = [(r["line"], r["code"]) for r in summary if r["record"] == "invalid"]
    header_and_rows = REGISTER_ROWS + 1
    assert invalid == [
        (str(header_and_rows + 1), "INVALID_NIK"),
        (str(header_and_rows + 2), "BAD_DATE"),
        (str(header_and_rows + 3), "DUPLICATE_NIK"),
    ]
    answer = verify_kpm(kemensos, work, register, "kpm-1", 2000)
    assert list(answer[0]) == ["ref", "nik", "status", "jenis_asn", "instansi", "alasan"]
    assert all(bool(r["alasan"]) == (r["status"] == "TIDAK_VALID") for r in answer)
    statuses = {r["status"] for r in answer}
    assert statuses == {"ASN", "TIDAK_DITEMUKAN", "TIDAK_VALID"}
    processed = exchange.ledger("--batch", "kpm-1", "--kind", "batch.processed")[0]
    counts = processed["data"]["counts"]  # type: ignore[index]
    assert sum(counts.values()) == 2000  # type: ignore[union-attr]


def test_batch_without_ref_and_with_optional_columns(exchange: Exchange, kemensos: Agency,
                                                     work: Path) -> None:
    register = synth.SyntheticRegister(REGISTER_ROWS, seed=11)
    answer = verify_kpm(kemensos, work, register, "kpm-plain", 300, columns=("nik",))
    assert list(answer[0]) == ["nik", "status", "jenis_asn", "instansi", "alasan"]
    verify_kpm(kemensos, work, register, "kpm-full", 300,
               columns=("ref", "nik", "nama", "tanggal_lahir"))


def test_new_register_replaces_the_old_one(exchange: Exchange, bkn: Agency, kemensos: Agency,
                                           work: Path) -> None:
    new = synth.SyntheticRegister(REGISTER_ROWS, seed=99)
    load_register(bkn, work, new, "asn-2")
    verify_kpm(kemensos, work, new, "kpm-after-replace", 1000)
    # people of the old register are no longer found
    old = synth.SyntheticRegister(REGISTER_ROWS, seed=11)
    path = work / "old.csv"
    path.write_text("ref,nik\n" + "".join(f"O{i},{old.row(i).nik}\n" for i in range(50)))
    kemensos.submit("kpm-verification", kemensos.seal(path, "kpm-old-people.csv.gpg"))
    answer = rows_of(kemensos.outcome("kpm-verification", "kpm-old-people.result.csv.gpg"))
    assert {r["status"] for r in answer} == {"TIDAK_DITEMUKAN"}
    replaced = exchange.ledger("--kind", "dataset.replaced")
    assert len(replaced) == 2 and replaced[1]["data"]["previous"] == replaced[0]["data"]["snapshot"]  # type: ignore[index]
    snapshots = list((exchange.home / "reference" / "asn-register").glob("*.db"))
    assert len(snapshots) == 1


def test_invalid_register_keeps_the_previous_one(exchange: Exchange, bkn: Agency,
                                                 kemensos: Agency, work: Path) -> None:
    path = work / "all-bad.csv"
    path.write_text("nip,nik,nama,tanggal_lahir,jenis_asn,instansi\nx,y,z,1990-01-01,PNS,I\n")
    bkn.submit("asn-register", bkn.seal(path, "asn-bad.csv.gpg"))
    assert bkn.codes("asn-register", "asn-bad") == ["NO_VALID_ROWS"]
    verify_kpm(kemensos, work, synth.SyntheticRegister(REGISTER_ROWS, seed=99), "kpm-still", 200)


def test_answers_hold_no_more_than_the_policy_discloses(exchange: Exchange, kemensos: Agency,
                                                       work: Path) -> None:
    register = synth.SyntheticRegister(REGISTER_ROWS, seed=99)
    person = register.row(5)
    path = work / "one.csv"
    path.write_text(f"ref,nik\nR1,{person.nik}\n")
    kemensos.submit("kpm-verification", kemensos.seal(path, "kpm-one.csv.gpg"))
    data = kemensos.outcome("kpm-verification", "kpm-one.result.csv.gpg").decode()
    assert person.nip not in data and person.nama not in data
    assert person.tanggal_lahir not in data
    assert rows_of(data.encode())[0]["status"] == "ASN"


def test_no_plaintext_left_and_no_personal_data_in_ledger_or_log(exchange: Exchange) -> None:
    home = exchange.home
    assert not any((home / "work").iterdir())
    register = synth.SyntheticRegister(REGISTER_ROWS, seed=99)
    niks = [register.row(i).nik.encode() for i in range(0, REGISTER_ROWS, 7)]
    nips = [register.row(i).nip.encode() for i in range(0, REGISTER_ROWS, 7)]
    for path in [*home.rglob("*"), exchange.log]:
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            leaked = [n for n in niks + nips if n in data]
            assert not leaked, f"{path} holds identifiers in the clear"


def test_invalid_rows_say_why_in_the_last_column(exchange: Exchange, kemensos: Agency,
                                                 work: Path) -> None:
    """`alasan`: a short code for each TIDAK_VALID row (a contract addition, the last column)."""
    person = synth.SyntheticRegister(REGISTER_ROWS, seed=99).row(7)
    path = work / "why.csv"
    path.write_text("ref,nik,tanggal_lahir\n"
                    f"R1,{person.nik},\n"
                    "R2,3.17101E+15,\n"             # what Excel makes of a NIK
                    "R3,317101410190001,\n"         # a digit short
                    "R4,3171013102900001,\n"        # 31 February
                    "R5,3171 0141 0190 0001,\n"     # separators
                    "R6,,\n"
                    f"R7,{person.nik},1990-02-30\n"  # a valid NIK, another column wrong
                    "R8,3171014101900001\n"         # a field short
                    "R9,0071014101900001,\n")
    kemensos.submit("kpm-verification", kemensos.seal(path, "kpm-why.csv.gpg"))
    answer = rows_of(kemensos.outcome("kpm-verification", "kpm-why.result.csv.gpg"))
    assert list(answer[0])[-1] == "alasan"
    assert [(r["ref"], r["status"], r["alasan"]) for r in answer] == [
        ("R1", "ASN", ""),
        ("R2", "TIDAK_VALID", "NIK_SCIENTIFIC_NOTATION"),
        ("R3", "TIDAK_VALID", "NIK_WRONG_LENGTH"),
        ("R4", "TIDAK_VALID", "NIK_BAD_DATE"),
        ("R5", "TIDAK_VALID", "NIK_NOT_DIGITS"),
        ("R6", "TIDAK_VALID", "NIK_EMPTY"),
        ("R7", "TIDAK_VALID", "tanggal_lahir:BAD_DATE"),
        ("", "TIDAK_VALID", "WRONG_FIELD_COUNT"),
        ("R9", "TIDAK_VALID", "NIK_BAD_REGION"),
    ]
    processed = exchange.ledger("--batch", "kpm-why", "--kind", "batch.processed")[0]
    assert processed["data"]["invalid_reasons"] == {  # type: ignore[index]
        "NIK_BAD_DATE": 1, "NIK_BAD_REGION": 1, "NIK_EMPTY": 1, "NIK_NOT_DIGITS": 1,
        "NIK_SCIENTIFIC_NOTATION": 1, "NIK_WRONG_LENGTH": 1, "WRONG_FIELD_COUNT": 1,
        "tanggal_lahir:BAD_DATE": 1}


def test_ledger_batches_one_row_per_upload(exchange: Exchange) -> None:
    """`ledger batches` over this module's real batches: one row each, with its outcome."""
    home = str(exchange.home)
    out = exchanged("ledger", "batches", "--home", home, "--format", "json").stdout
    rows = {r["batch"]: r for r in map(json.loads, out.splitlines())}
    assert {"asn-1", "kpm-1", "asn-2", "asn-bad", "kpm-one"} <= set(rows)
    kpm = rows["kpm-1"]
    assert kpm["outcome"] == "result" and kpm["rows"] == 2000
    assert sum(kpm["counts"].values()) == 2000 and kpm["downloaded"] >= kpm["received"]
    assert rows["asn-bad"]["outcome"] == "rejected"
    assert rows["asn-bad"]["codes"] == ["NO_VALID_ROWS"] and rows["asn-bad"]["rows"] is None
    year = datetime.now(ZoneInfo("Asia/Jakarta")).strftime("%Y")
    refused = exchanged("ledger", "batches", "--home", home, "--agency", "bkn", "--flow",
                        "asn-register", "--period", year, "--outcome", "rejected",
                        "--format", "csv").stdout.splitlines()
    assert refused[0].startswith('"received","agency","flow","batch","uid","rows","outcome"')
    assert len(refused) == 2 and '"asn-bad"' in refused[1] and '"NO_VALID_ROWS"' in refused[1]
    table = exchanged("ledger", "batches", "--home", home, "--flow", "asn-register").stdout
    assert "asn-2" in table and "kpm-1" not in table and "NO_VALID_ROWS" in table
    # the exchange's uid of an upload, wherever --batch is taken
    uid = kpm["uid"]
    by_uid = exchanged("ledger", "batches", "--home", home, "--batch", uid,
                       "--format", "json").stdout.splitlines()
    assert [json.loads(r)["batch"] for r in by_uid] == ["kpm-1"]
    entries = exchange.ledger("--batch", uid)
    # (its download is in the session's entry, which names no one batch: see "downloaded")
    assert {e["kind"] for e in entries} >= {"batch.received", "batch.processed",
                                            "batch.answered"}
    assert all(e["batch"] == "kpm-1" for e in entries)
    stats = json.loads(exchanged("ledger", "stats", "--home", home, "--agency", "bkn",
                                 "--period", year, "--format", "json").stdout)
    assert set(stats["agency"]) == {"bkn"} and stats["reason"] == {"NO_VALID_ROWS": 1}


@pytest.mark.parametrize("command", [
    ("ledger", "query", "--agency", "nosuch"),
    ("ledger", "query", "--flow", "nosuch"),
    ("ledger", "batches", "--agency", "nosuch"),
    ("ledger", "batches", "--flow", "nosuch"),
    ("ledger", "stats", "--agency", "nosuch"),
    ("policy", "explain", "--agency", "nosuch", "--flow", "kpm-verification"),
    ("policy", "explain", "--agency", "kemensos", "--flow", "nosuch"),
])
def test_an_unknown_agency_or_flow_is_an_error_that_lists_the_known_ones(
        exchange: Exchange, command: tuple[str, ...]) -> None:
    r = exchanged(*command[:2], "--home", str(exchange.home), *command[2:], check=False)
    assert r.returncode == 2 and not r.stdout
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    known = ("bkn, kemensos" if "--agency" in command and command[command.index("--agency") + 1]
             == "nosuch" else "asn-register, jabfung-integration, kpm-register")
    assert "'nosuch'" in r.stderr and known in r.stderr, r.stderr


def chromium(url: str, profile: Path) -> str:
    """The DOM of ``url`` as the system's headless Chromium renders it."""
    r = subprocess.run(
        ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def http(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_ledger_browse_in_a_real_browser_reads_and_never_writes(exchange: Exchange,
                                                                tmp_path: Path) -> None:
    home, port = str(exchange.home), free_port()
    refused = exchanged("ledger", "browse", "--home", home, "--host", "0.0.0.0", check=False)
    assert refused.returncode == 2 and "127.0.0.1 only" in refused.stderr
    entries_before = len(exchange.ledger())
    received = exchange.ledger("--batch", "kpm-1", "--kind", "batch.received")[0]["ts"]
    month = datetime.fromisoformat(str(received).replace("Z", "+00:00")).astimezone(
        ZoneInfo("Asia/Jakarta")).strftime("%Y-%m")
    proc = subprocess.Popen([sys.executable, "-m", "exchanged", "ledger", "browse", "--home",
                             home, "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while http_ready(base) is False:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "ledger browse did not listen"
            time.sleep(0.2)
        dom = chromium(f"{base}/ledger/batches_by_month?month={month}", tmp_path / "p1")
        assert "Batches of a month by agency and outcome" in dom
        for batch in ("asn-1", "asn-2", "asn-bad", "kpm-1", "kpm-one"):
            assert batch in dom, batch
        dom = chromium(f"{base}/ledger/refusals_by_reason", tmp_path / "p2")
        assert "NO_VALID_ROWS" in dom and "asn-bad" in dom and "tidak ada baris yang sah" in dom
        status, body = http(f"{base}/ledger/who_downloaded_what.json?_shape=array")
        downloads = json.loads(body)
        assert status == 200 and {"kpm-1", "asn-bad"} <= {d["batch"] for d in downloads}
        status, body = http(f"{base}/ledger/decisions_under_addendum.json?_shape=array&"
                            "addendum=addendum-001")
        assert status == 200 and "kpm-1" in {d["batch"] for d in json.loads(body)}
        # every entry kind and table is described, from the code's own list
        status, body = http(f"{base}/-/metadata.json")
        described = json.dumps(json.loads(body))
        assert all(f"<code>{kind}</code>" in described for kind in KINDS)
        status, body = http(f"{base}/ledger.json")
        tables = {t["name"] for t in json.loads(body)["tables"]}
        assert tables == {"ledger", "ledger_meta", "policy_sets", "uploads", "entry_kinds",
                          "reason_codes"}  # never the daemon's tables (keyed NIPs)
        # nothing can be written, nothing downloaded whole, no plugin, no administration
        sql = urllib.parse.quote("delete from ledger_meta")
        assert http(f"{base}/ledger.json?sql={sql}")[0] == 400
        sql = urllib.parse.quote("insert into uploads (uid) values ('x') returning uid")
        assert http(f"{base}/ledger.json?sql={sql}")[0] == 400
        assert http(f"{base}/ledger", data=b"sql=delete+from+ledger")[0] in (403, 405)
        assert http(f"{base}/ledger.db")[0] == 403
        assert json.loads(http(f"{base}/-/plugins.json")[1]) == []
        assert http(f"{base}/-/permissions")[0] == 403
    finally:
        proc.terminate()
        proc.wait(30)
    assert len(exchange.ledger()) == entries_before
    exchange.verify()


def http_ready(base: str) -> bool:
    try:
        return http(f"{base}/-/versions.json")[0] == 200
    except OSError:
        return False


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
          ) -> Iterator[Exchange]:
    ex = make_exchange(tmp_path_factory.mktemp("restart"), desks)
    ex.start()
    yield ex
    if ex.alive():
        ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_a_killed_daemon_resumes_and_answers_exactly_once(
    fresh: Exchange, desks: dict[str, AgencyDesk], work: Path
) -> None:
    bkn, kemensos = Agency(desks["bkn"], fresh), Agency(desks["kemensos"], fresh)
    register = synth.SyntheticRegister(20_000, seed=5)
    load_register(bkn, work, register, "asn-r")
    path, truth = work / "big.csv", work / "big.truth.csv"
    synth.write_kpm_csv(str(path), synth.kpm_batch(register, 200_000, seed=3),
                        truth_path=str(truth))
    sealed = kemensos.seal(path, "big.csv.gpg")
    batches = fresh.home / "spool" / "batches"
    before = set(batches.iterdir()) if batches.exists() else set()
    kemensos.submit("kpm-verification", sealed)
    # the batch streams through in well under a second once received: watch the spool
    # itself (a ledger query costs a Python start-up) and pull the cord at once
    deadline = time.monotonic() + 30
    while not set(batches.iterdir()) - before:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    fresh.stop(signal.SIGKILL)  # the power cord, mid-processing
    assert not fresh.ledger("--batch", "big", "--kind", "batch.answered")
    fresh.start()
    answer = rows_of(kemensos.outcome("kpm-verification", "big.result.csv.gpg", timeout=120))
    assert len(answer) == 200_000
    assert len(fresh.ledger("--batch", "big", "--kind", "batch.answered")) == 1
    assert fresh.ledger("--batch", "big", "--kind", "batch.resumed")
    outbox = kemensos.desk.listing("127.0.0.1", fresh.port, "/outbox/kpm-verification")
    assert [n for n in outbox if n.startswith("big.")] == ["big.result.csv.gpg"]
    assert not any((fresh.home / "work").iterdir())
    fresh.verify()


def test_loads_follow_the_order_they_were_received_and_old_ones_cannot_roll_back(
    fresh: Exchange, desks: dict[str, AgencyDesk], work: Path
) -> None:
    bkn, kemensos = Agency(desks["bkn"], fresh), Agency(desks["kemensos"], fresh)
    older, newer = synth.SyntheticRegister(40_000, seed=21), synth.SyntheticRegister(500, seed=22)
    old_csv, new_csv = work / "old.csv", work / "new.csv"
    synth.write_register_csv(str(old_csv), older)
    synth.write_register_csv(str(new_csv), newer)
    old_sealed = bkn.seal(old_csv, "reg-old.csv.gpg")
    time.sleep(1.1)  # signatures carry whole seconds
    new_sealed = bkn.seal(new_csv, "reg-new.csv.gpg")
    # the big older one first, the small newer one right after: both workers busy at once
    bkn.submit("asn-register", old_sealed)
    bkn.submit("asn-register", new_sealed)
    assert '"ROWS_LOADED","40000"' in bkn.outcome("asn-register", "reg-old.result.csv.gpg").decode()
    assert '"ROWS_LOADED","500"' in bkn.outcome("asn-register", "reg-new.result.csv.gpg").decode()
    verify_kpm(kemensos, work, newer, "kpm-newest", 300)
    # the older upload sent again under a new name cannot become current again
    bkn.submit("asn-register", old_sealed, remote_name="reg-old-again.csv.gpg")
    assert bkn.codes("asn-register", "reg-old-again") == ["STALE_REFERENCE"]
    verify_kpm(kemensos, work, newer, "kpm-still-newest", 300)
