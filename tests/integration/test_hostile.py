"""The hostile-input catalogue: what a hostile agency (or its stolen key) can send, each case
against the running daemon with the real ``sftp`` and ``gpg``.

test_bad_input.py covers the first list (unsigned, wrong keys, random bytes, truncation,
empty, replay, columns, names); this one goes further: compression bombs, uploads over
their limit, CSV built to break parsers, formula injection, file names built to confuse,
links planted in the drop folders, and agency keys that expired, were revoked or changed.
Every case ends the same way: exactly one outcome (or none, for an upload that never
completed), nothing processed that should not be, and a daemon that keeps serving.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.hostile import (
    FolderWatch,
    GiB,
    OpenSession,
    csv_cells,
    head_seq,
    paramiko_sftp,
    peak_rss,
    received_since,
    seal_bomb,
    unsafe_cells,
)
from tests.integration.support import (
    AGREEMENT,
    HOST,
    Agency,
    Exchange,
    exchanged,
    make_exchange,
)

FLOW = "kpm-verification"
#: kpm-verification's limit in this module's exchange (an addendum lowers it)
LIMIT = 1 << 20
LIMITS_ADDENDUM = f"""\
format: exchanged/addendum-v1
addendum:
  agreement: {AGREEMENT}
  number: 2
  reference: EXAMPLE ONLY - lower limits for the hostile-input tests
  recorded: "2026-01-01"
  clause: Pasal 12 ayat (3)
  example: true
  amend_flows:
    kpm-verification:
      limits: {{clause: Pasal 12 ayat (3), max_bytes: {LIMIT}, max_rows: 100000}}
"""
REGISTER = synth.SyntheticRegister(300, seed=41)
#: the hostile exchange's deadline for the SSH banner and key exchange (seconds)
HANDSHAKE = 3


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
            ) -> Iterator[Exchange]:
    """An exchange with kpm-verification limited to 1 MiB, an ASN register and a KPM register."""
    ex = make_exchange(tmp_path_factory.mktemp("hostile"), desks)
    (ex.home / "policies" / f"{AGREEMENT}.addendum-002.yaml").write_text(LIMITS_ADDENDUM)
    with open(ex.home / "config.yaml", "a", encoding="utf-8") as f:
        # silent connections are closed (and scored) after 3 s instead of 10
        f.write(f"sftp_handshake_seconds: {HANDSHAKE}\n")
    ex.start()
    work = tmp_path_factory.mktemp("hostile-setup")
    bkn, kemensos = Agency(desks["bkn"], ex), Agency(desks["kemensos"], ex)
    register = work / "register.csv"
    synth.write_register_csv(str(register), REGISTER)
    bkn.submit("asn-register", bkn.seal(register, "asn-h.csv.gpg"))
    assert b'"ROWS_LOADED","300"' in bkn.outcome("asn-register", "asn-h.result.csv.gpg")
    kpm = work / "kpm.csv"
    kpm.write_text("nik,program\n" + "".join(f"{REGISTER.row(i).nik},PKH\n" for i in range(20)))
    kemensos.submit("kpm-register", kemensos.seal(kpm, "kpm-reg-h.csv.gpg"))
    kemensos.outcome("kpm-register", "kpm-reg-h.result.csv.gpg")
    yield ex
    if ex.alive():
        ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")


def bound(desk: AgencyDesk, exchange: Exchange) -> Agency:
    """The desk, trusting this exchange's host key again (another exchange made by a test in
    between has the desk trust its own)."""
    desk.trust_host(HOST, exchange.port, exchange.home / "keys" / "ssh_host_ed25519_key.pub")
    return Agency(desk, exchange)


@pytest.fixture
def kemensos(hostile: Exchange, desks: dict[str, AgencyDesk]) -> Agency:
    return bound(desks["kemensos"], hostile)


@pytest.fixture
def bkn(hostile: Exchange, desks: dict[str, AgencyDesk]) -> Agency:
    return bound(desks["bkn"], hostile)


def sealed(agency: Agency, work: Path, batch: str, data: bytes) -> Path:
    plain = work / f"{batch}.csv"
    plain.write_bytes(data)
    return agency.seal(plain, f"{batch}.csv.gpg")


def answer(agency: Agency, work: Path, batch: str, data: bytes, flow: str = FLOW) -> bytes:
    agency.submit(flow, sealed(agency, work, batch, data))
    return agency.outcome(flow, f"{batch}.result.csv.gpg")


def refusal(agency: Agency, work: Path, batch: str, data: bytes, flow: str = FLOW) -> list[str]:
    agency.submit(flow, sealed(agency, work, batch, data))
    return agency.codes(flow, batch)


def statuses(data: bytes) -> list[str]:
    rows = csv_cells(data)
    at = rows[0].index("status")
    return [r[at] for r in rows[1:]]


def nik(i: int) -> str:
    return REGISTER.row(i).nik


# -- compression bombs and uploads over their limit --------------------------------------------


def test_a_compression_bomb_stops_at_the_flow_limit(hostile: Exchange, kemensos: Agency,
                                                    work: Path) -> None:
    """A 7 KB message that decrypts to 3 GiB: gpg stops writing at the flow's limit, the
    work area never holds more, the batch is refused, the daemon keeps serving."""
    bomb = seal_bomb(kemensos, 3 * GiB, work / "bomb.csv.gpg")
    assert bomb.stat().st_size < 64 * 1024
    assert hostile.proc is not None
    rss_before = peak_rss(hostile.proc.pid)
    with FolderWatch(hostile.home / "work") as watch:
        kemensos.submit(FLOW, bomb)
        body = kemensos.rejection(FLOW, "bomb", timeout=120)
    assert body["reasons"]
    assert watch.most <= LIMIT + 1, f"the work area held {watch.most} bytes"
    assert peak_rss(hostile.proc.pid) - rss_before < 256 * 1024 * 1024
    assert not any((hostile.home / "work").iterdir())
    assert not hostile.ledger("--batch", "bomb", "--kind", "batch.admitted")
    assert hostile.alive()


def test_a_compression_bomb_is_refused_as_too_large(hostile: Exchange, kemensos: Agency,
                                                    work: Path) -> None:
    kemensos.submit(FLOW, seal_bomb(kemensos, 1 * GiB, work / "bomb-code.csv.gpg"))
    assert kemensos.codes(FLOW, "bomb-code") == ["TOO_LARGE_DECRYPTED"]


@pytest.mark.slow
def test_a_compression_bomb_costs_no_more_than_its_limit(
        tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk], work: Path
) -> None:
    ex = make_exchange(tmp_path_factory.mktemp("bomb-time"), desks)
    (ex.home / "policies" / f"{AGREEMENT}.addendum-002.yaml").write_text(LIMITS_ADDENDUM)
    ex.start()
    kemensos = Agency(desks["kemensos"], ex)
    try:
        # 16 GiB: half a minute of gpg's time on this machine if it decompresses all of it,
        # a fraction of a second if it stops at the limit
        kemensos.submit(FLOW, seal_bomb(kemensos, 16 * GiB, work / "slow-bomb.csv.gpg"))
        started = time.monotonic()
        kemensos.rejection(FLOW, "slow-bomb", timeout=10)
        assert time.monotonic() - started < 10
    finally:
        assert ex.proc is not None
        children = Path(f"/proc/{ex.proc.pid}/task/{ex.proc.pid}/children")
        pids = [int(p) for p in children.read_text().split()] if children.exists() else []
        ex.stop(signal.SIGKILL)
        for pid in pids:  # the daemon's gpg, left decompressing
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stop_gpg_agent(ex.home / "keys" / "gnupg")


@pytest.mark.slow
def test_a_bomb_made_by_gpg_itself(hostile: Exchange, kemensos: Agency, work: Path) -> None:
    """The README's own command, fed half a GiB of zeros: signed, encrypted, compressed by gpg
    (bzip2, whose ratio on zeros is far beyond deflate's)."""
    out = work / "gpg-bomb.csv.gpg"
    gpg = ["gpg", "--homedir", str(kemensos.desk.gnupg), "--batch", "--yes", "--pinentry-mode",
           "loopback", "--passphrase", "", "--compress-algo", "bzip2", "--compress-level", "9",
           "--sign", "--local-user", kemensos.desk.fingerprint, "--encrypt", "--recipient",
           hostile.fingerprint, "--output", str(out)]
    zeros = subprocess.Popen(["head", "-c", str(GiB // 2), "/dev/zero"], stdout=subprocess.PIPE)
    subprocess.run(gpg, stdin=zeros.stdout, check=True, capture_output=True, timeout=600)
    zeros.wait()
    assert out.stat().st_size < 64 * 1024
    with FolderWatch(hostile.home / "work") as watch:
        kemensos.submit(FLOW, out)
        assert kemensos.rejection(FLOW, "gpg-bomb", timeout=300)["reasons"]
    assert watch.most <= LIMIT + 1
    assert hostile.alive()


def test_an_upload_over_the_limit_fails_at_the_limit(hostile: Exchange, kemensos: Agency,
                                                     work: Path) -> None:
    """The SFTP write that passes the flow's limit fails: the client sees its upload fail, the
    exchange never stored more than the limit and never received it."""
    big = work / "oversized.csv.gpg"
    big.write_bytes(os.urandom(3 * LIMIT))
    before = head_seq(hostile)
    r = kemensos.sftp(f'put "{big}" /inbox/{FLOW}/oversized.csv.gpg', check=False)
    assert r.returncode != 0
    time.sleep(0.5)
    interrupted = [e for e in hostile.ledger("--kind", "upload.interrupted", "--agency", "kemensos")
                   if int(str(e["seq"])) > before]
    assert len(interrupted) == 1
    data = interrupted[0]["data"]
    assert isinstance(data, dict)
    assert data["bytes"] <= LIMIT and f"limit of {LIMIT} bytes" in data["why"]
    assert not hostile.ledger("--batch", "oversized")
    assert not any((hostile.home / "spool" / "uploads").iterdir())
    assert "oversized.result.csv.gpg" not in kemensos.desk.listing(HOST, hostile.port,
                                                                   f"/outbox/{FLOW}")
    assert hostile.alive()


def test_an_agencys_inbox_quota_from_the_configuration(
        tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk], work: Path
) -> None:
    ex = make_exchange(tmp_path_factory.mktemp("quota"), desks)
    with (ex.home / "config.yaml").open("a") as f:
        f.write("sftp_quota_bytes: 1048576\nsftp_quota_files: 2\n")
    ex.start()
    try:
        kemensos = Agency(desks["kemensos"], ex)
        part = work / "part"
        part.write_bytes(os.urandom(700_000))
        kemensos.sftp(f'put "{part}" /inbox/{FLOW}/a.csv.gpg.filepart')
        assert kemensos.sftp(f'put "{part}" /inbox/{FLOW}/b.csv.gpg.filepart',
                             check=False).returncode != 0
    finally:
        ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")


# -- CSV built to break a parser -----------------------------------------------------------------


def test_an_enormous_field_fails_its_row_only(kemensos: Agency, work: Path) -> None:
    big = "A" * 300_000
    data = f"ref,nik\nR1,{nik(0)}\n{big},{nik(1)}\nR3,{nik(2)}\n".encode()
    got = statuses(answer(kemensos, work, "huge-field", data))
    assert got == ["ASN", "TIDAK_VALID", "ASN"]


def test_deeply_quoted_fields(kemensos: Agency, work: Path) -> None:
    quotes = '"' + '""' * 70_000 + '"'  # 70,000 escaped quotes: over the 64 KiB field limit
    nested = '"' + 'a""' * 1000 + '"'  # a long run of doubled quotes, within the limit
    data = (f"ref,nik\nR1,{nik(0)}\n{quotes},{nik(1)}\n{nested},{nik(2)}\n"
            f'R4,"{nik(3)}"\nR5,31710"14101900001\n').encode()
    got = statuses(answer(kemensos, work, "quoted", data))
    assert got == ["ASN", "TIDAK_VALID", "TIDAK_VALID", "ASN", "TIDAK_VALID"]


def test_a_quote_left_open_swallows_no_more_than_it_must(kemensos: Agency, work: Path) -> None:
    data = f'ref,nik\nR1,{nik(0)}\n"R2,{nik(1)}\nR3,{nik(2)}\n'.encode()
    result = answer(kemensos, work, "open-quote", data)
    got = statuses(result)
    assert got[0] == "ASN" and set(got[1:]) == {"TIDAK_VALID"}


def test_nul_bytes(kemensos: Agency, work: Path) -> None:
    data = f"ref,nik\nR1,{nik(0)}\nR\0 2,{nik(1)}\nR3,{nik(2)}\0\nR4,{nik(3)}\n".encode()
    assert statuses(answer(kemensos, work, "nul-rows", data)) == [
        "ASN", "TIDAK_VALID", "TIDAK_VALID", "ASN"]
    codes = refusal(kemensos, work, "nul-header", f"ref,n\0ik\nR1,{nik(0)}\n".encode())
    assert codes == ["BAD_HEADER"]


def test_invalid_utf8(kemensos: Agency, work: Path) -> None:
    data = f"ref,nik\nR1,{nik(0)}\n".encode() + b"R\xff\xfe2," + nik(1).encode() + \
        f"\nR3,{nik(2)}\n".encode()
    assert statuses(answer(kemensos, work, "bad-utf8-row", data)) == [
        "ASN", "TIDAK_VALID", "ASN"]
    assert refusal(kemensos, work, "bad-utf8-head", b"r\xe9f,nik\nR1,1\n") == ["BAD_ENCODING"]
    utf16 = f"ref,nik\nR1,{nik(0)}\n".encode("utf-16")
    assert refusal(kemensos, work, "utf16", utf16)[0] in ("BAD_ENCODING", "BAD_HEADER")


def test_a_repeated_header(kemensos: Agency, work: Path) -> None:
    assert refusal(kemensos, work, "dup-col", f"nik,ref,NIK\n{nik(0)},R1,{nik(0)}\n".encode()) \
        == ["DUPLICATE_COLUMN"]
    assert refusal(kemensos, work, "dup-col-2", f" nik ,Nik\n{nik(0)},{nik(0)}\n".encode()) \
        == ["DUPLICATE_COLUMN"]
    # two files glued together: the second header is a row like any other, and invalid
    glued = f"ref,nik\nR1,{nik(0)}\nref,nik\nR2,{nik(1)}\n".encode()
    assert statuses(answer(kemensos, work, "glued", glued)) == ["ASN", "TIDAK_VALID", "ASN"]


def test_header_names_the_flow_does_not_list_reach_no_ledger_and_no_log(
        hostile: Exchange, kemensos: Agency, work: Path) -> None:
    """A batch sent without its header row names its columns with its first row (a name and a
    sex), another names a column like a NIK: the rejection the agency decrypts names the
    column (its own data, sealed to it); the ledger records the position, the log nothing."""
    names = ["budi_santoso", "laki_laki", "nik_3171_0141_0190_0001"]
    kemensos.submit(FLOW, sealed(kemensos, work, "no-header",
                                 b"budi_santoso,laki_laki\nsiti_aminah,perempuan\n"))
    kemensos.submit(FLOW, sealed(kemensos, work, "nik-column",
                                 f"nik,{names[2]}\n{nik(0)},x\n".encode()))
    for batch, codes, named in (("no-header", ["MISSING_COLUMN", "COLUMN_NOT_ALLOWED"], names[0]),
                                ("nik-column", ["COLUMN_NOT_ALLOWED"], names[2])):
        reasons = kemensos.rejection(FLOW, batch)["reasons"]
        assert isinstance(reasons, list) and [r["code"] for r in reasons] == codes
        assert f"Column {named} is not listed" in reasons[-1]["message"]
    out = exchanged("ledger", "query", "--home", str(hostile.home), "--format", "json").stdout
    assert not [name for name in names if name in out]
    log = hostile.log.read_text(errors="replace")
    assert not [name for name in names if name in log]
    rejected = {e["batch"]: e["data"] for e in map(json.loads, out.splitlines())
                if e["kind"] == "batch.rejected"}
    assert rejected["no-header"]["columns"] == ["#1", "#2"]
    assert rejected["no-header"]["unlisted_columns"] == [1, 2]
    assert rejected["nik-column"]["columns"] == ["nik", "#2"]


FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1+1)", "-2+3", "@SUM(A1)", "=HYPERLINK(\"http://x\")",
            "\t=1+1", "\r=1+1"]
#: formulas behind a ';': Excel in an Indonesian locale splits a line there
SEMICOLON_FORMULAS = ["Kementerian Sosial;=2+3", "Dinas Sosial;+SUM(1+1);Kab. Bogor",
                      'Badan;"=1+1', "Kantor; -2+3", "x;@SUM(A1)"]


def test_formulas_are_neutralised_in_a_verification_answer(kemensos: Agency, work: Path) -> None:
    lines = ["ref,nik"]
    for i, formula in enumerate(FORMULAS):
        quoted = '"' + formula.replace('"', '""') + '"'
        lines.append(f"{quoted},{nik(i)}")       # echoed in ref
        lines.append(f"R{i},{quoted}")           # echoed as the invalid NIK
    result = answer(kemensos, work, "formulas", ("\n".join(lines) + "\n").encode())
    assert not unsafe_cells(result), unsafe_cells(result)
    cells = [c for row in csv_cells(result) for c in row]
    assert "'=cmd|' /C calc'!A0" in cells and "'-2+3" in cells


def test_formulas_in_a_register_never_reach_another_agency(
        hostile: Exchange, bkn: Agency, kemensos: Agency, work: Path) -> None:
    """BKN's register carries formulas in fields it keeps and discloses, some behind a ';'
    (``Kementerian Sosial;=2+3``); Kemensos's answer quotes every field and neutralises every
    part, and so does BKN's own load summary."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["nip", "nik", "nama", "tanggal_lahir", "jenis_asn", "instansi", "jabatan"])
    for i in range(REGISTER.rows):  # the whole register again, so later tests still find it
        p = REGISTER.row(i)
        formula = 200 <= i < 210
        instansi = (FORMULAS[i % 5] if formula else SEMICOLON_FORMULAS[i - 210]
                    if 210 <= i < 215 else p.instansi)
        writer.writerow([p.nip, p.nik, p.nama, p.tanggal_lahir, p.jenis_asn, instansi,
                         "=1+1" if formula else ""])
    writer.writerow(["x", "=1", "@a", "-1", "PNS", "+1", "=2"])
    summary = answer(bkn, work, "asn-formulas", out.getvalue().encode(), flow="asn-register")
    assert not unsafe_cells(summary), unsafe_cells(summary)
    asked = "".join(f"F{i},{REGISTER.row(i).nik}\n" for i in (200, *range(210, 215)))
    result = answer(kemensos, work, "after-formulas", f"ref,nik\n{asked}".encode())
    assert statuses(result) == ["ASN"] * 6
    assert not unsafe_cells(result), unsafe_cells(result)
    cells = [c for row in csv_cells(result) for c in row]
    assert "'=cmd|' /C calc'!A0" in cells
    # instansi, before the answer's last column (alasan, empty for these valid rows)
    assert [row[-2] for row in csv_cells(result)[2:]] == [
        "Kementerian Sosial;'=2+3", "Dinas Sosial;'+SUM(1+1);Kab. Bogor", "Badan;'\"=1+1",
        "Kantor;' -2+3", "x;'@SUM(A1)"]
    assert b'"Kementerian Sosial;\'=2+3",""\r\n' in result


def test_formulas_are_neutralised_in_a_status_answer(bkn: Agency, work: Path) -> None:
    data = (f'ref,nik\n"=1+1",{nik(0)}\n@x,{nik(1)}\n-3,-{nik(2)}\n+9,"=A1"\n').encode()
    result = answer(bkn, work, "status-formulas", data, flow="kpm-status")
    assert statuses(result) == ["KPM", "KPM", "TIDAK_VALID", "TIDAK_VALID"]
    assert not unsafe_cells(result), unsafe_cells(result)


def test_formulas_are_neutralised_in_the_ledgers_csv(hostile: Exchange, kemensos: Agency,
                                                     work: Path) -> None:
    kemensos.submit(FLOW, sealed(kemensos, work, "-1-1", f"nik\n{nik(0)}\n".encode()))
    kemensos.outcome(FLOW, "-1-1.result.csv.gpg")
    out = exchanged("ledger", "query", "--home", str(hostile.home), "--format", "csv").stdout
    assert not unsafe_cells(out.encode()), unsafe_cells(out.encode())[:5]


def test_a_literal_file_name_is_ignored(kemensos: Agency, work: Path) -> None:
    """The file name inside the OpenPGP message is the sender's text: never a path."""
    plain = work / "lit.csv"
    plain.write_text(f"ref,nik\nR1,{nik(0)}\n")
    out = work / "literal-name.csv.gpg"
    kemensos.desk.gpg("--set-filename", "../../../../tmp/exchanged-escape.csv", "--sign",
                      "--local-user", kemensos.desk.fingerprint, "--encrypt", "--recipient",
                      kemensos.exchange.fingerprint, "--output", str(out), str(plain))
    kemensos.submit(FLOW, out)
    assert statuses(kemensos.outcome(FLOW, "literal-name.result.csv.gpg")) == ["ASN"]
    assert not Path("/tmp/exchanged-escape.csv").exists()


# -- file names ------------------------------------------------------------------------------------


BAD_NAMES = [
    "ctl\x1b[31mred.csv.gpg",                  # a terminal escape
    "new\nline.csv.gpg",
    "tab\tname.csv.gpg",
    "del\x7f.csv.gpg",
    "back\\slash.csv.gpg",
    "kpm\u2010w4.csv.gpg",                      # a Unicode hyphen
    "k\u0440m-w4.csv.gpg",                      # a Cyrillic r
    "\uff4bpm-w4.csv.gpg",                      # a full-width k
    "kpm-w4.csv.gpg\u200b",                     # a zero-width space at the end
    "kpm-w4.\u0441sv.gpg",                      # a Cyrillic s in the extension
    "\u202ekpm-w4.gpg.csv",                     # a right-to-left override
    "a" * 292 + ".csv.gpg",                     # 300 characters
    "\u00e9" * 292 + ".csv.gpg",                # 300 characters, 592 bytes
]


def test_names_built_to_confuse_are_refused_by_name(hostile: Exchange, kemensos: Agency,
                                                    work: Path) -> None:
    """Each is received (it was uploaded) and refused BAD_FILE_NAME under the exchange's own
    id; no raw control character reaches the ledger, the log or the rejection."""
    plain = work / "n.csv"
    plain.write_text(f"nik\n{nik(0)}\n")
    blob = kemensos.seal(plain, "named.csv.gpg").read_bytes()
    before = head_seq(hostile)
    with paramiko_sftp(kemensos) as sftp:
        for name in BAD_NAMES:
            with sftp.open(f"/inbox/{FLOW}/{name}", "wb") as f:
                f.write(blob)
    entries = received_since(hostile, "kemensos", before, len(BAD_NAMES))
    assert len(entries) == len(BAD_NAMES)
    for entry in entries:
        data = entry["data"]
        assert isinstance(data, dict) and data["name_ok"] is False
        uid = str(entry["batch"])
        body = kemensos.rejection(FLOW, uid)
        reasons = body["reasons"]
        assert isinstance(reasons, list) and reasons[0]["code"] == "BAD_FILE_NAME"
        assert all(32 <= ord(c) < 127 for c in reasons[0]["message"]), reasons[0]["message"]
    ledger = exchanged("ledger", "query", "--home", str(hostile.home), "--format", "json").stdout
    log = hostile.log.read_text(errors="replace")
    for text in (ledger, log):
        assert "\x1b" not in text and "\u202e" not in text and "\x7f" not in text


def test_paths_that_climb_or_nest_lead_nowhere(hostile: Exchange, kemensos: Agency,
                                               work: Path) -> None:
    plain = work / "p.csv"
    plain.write_text(f"nik\n{nik(0)}\n")
    blob = kemensos.seal(plain, "p.csv.gpg")
    for target in (f"/inbox/{FLOW}/../../outbox/{FLOW}/climb.csv.gpg",
                   f"/inbox/{FLOW}/../../../../etc/climb.csv.gpg",
                   f"/inbox/{FLOW}/sub/climb.csv.gpg",
                   f"/inbox/{FLOW}/..",
                   "/inbox/asn-register/climb.csv.gpg",
                   f"/inbox/{FLOW}/" + "x" * 1100 + ".csv.gpg"):
        r = kemensos.sftp(f'put "{blob}" "{target}"', check=False)
        assert r.returncode != 0, target
    assert not hostile.ledger("--batch", "climb")
    assert not list(Path("/etc").glob("climb*"))
    # ".." inside a path that stays in the flow folder is just a path
    kemensos.sftp(f'put "{blob}" "/inbox/{FLOW}/../{FLOW}/./a..b.csv.gpg"')
    assert statuses(kemensos.outcome(FLOW, "a..b.result.csv.gpg")) == ["ASN"]


# -- links planted in the drop folders ------------------------------------------------------------


def test_a_hard_link_planted_in_an_outbox_is_never_served(hostile: Exchange, kemensos: Agency,
                                                          work: Path) -> None:
    """Another process links the exchange's secrets, or a decrypted file, into an outbox under
    an outcome's name: the agency can neither see nor download them."""
    outbox = hostile.home / "drop" / "kemensos" / "outbox" / FLOW
    plaintext = work / "decrypted.csv"
    plaintext.write_text(f"ref,nik\nR1,{nik(0)}\n")
    planted = {
        "key.result.csv.gpg": hostile.home / "keys" / "register.key",
        "ledger.result.csv.gpg": hostile.home / "ledger.db",
        "host.result.csv.gpg": hostile.home / "keys" / "ssh_host_ed25519_key",
        "plain.result.csv.gpg": plaintext,
    }
    for name, source in planted.items():
        os.link(source, outbox / name)
    fifo = outbox / "fifo.result.csv.gpg"
    os.mkfifo(fifo)
    try:
        listing = kemensos.desk.listing(HOST, hostile.port, f"/outbox/{FLOW}")
        assert not set(listing) & {*planted, fifo.name}, listing
        for name in (*planted, fifo.name):
            got = kemensos.sftp(f'get "/outbox/{FLOW}/{name}" "{work / name}"', check=False)
            assert got.returncode != 0 and not (work / name).exists(), name
        assert hostile.alive()
    finally:
        for name in planted:
            (outbox / name).unlink()
        fifo.unlink()
    assert (hostile.home / "keys" / "register.key").stat().st_size > 0
    # the daemon never opened its ledger through the link (closing that descriptor would have
    # dropped SQLite's locks, and the next process to close the ledger would have removed
    # the WAL under the daemon): after another process used the ledger, it still writes
    hostile.ledger("--kind", "exchange.started")
    kemensos.sftp("ls /outbox")
    hostile.verify()
    assert hostile.alive()


def test_a_symlink_planted_in_an_inbox_is_never_followed(hostile: Exchange, kemensos: Agency
                                                         ) -> None:
    inbox = hostile.home / "drop" / "kemensos" / "inbox" / FLOW
    (inbox / "grab.csv.gpg.filepart").symlink_to(hostile.home / "keys" / "register.key")
    try:
        assert "grab.csv.gpg.filepart" not in kemensos.desk.listing(HOST, hostile.port,
                                                                    f"/inbox/{FLOW}")
        r = kemensos.sftp(f"rename /inbox/{FLOW}/grab.csv.gpg.filepart /inbox/{FLOW}/grab.csv.gpg",
                          check=False)
        assert r.returncode != 0
        assert not hostile.ledger("--batch", "grab")
    finally:
        (inbox / "grab.csv.gpg.filepart").unlink()


def test_a_hard_link_planted_in_an_inbox_reveals_nothing(hostile: Exchange, kemensos: Agency
                                                         ) -> None:
    """Renamed by the agency, a planted hard link to a secret is received like any upload: it
    is not an OpenPGP message the exchange can open, and the agency learns only that (32
    random bytes are now and then read by gpg as the start of a packet: then it is refused as
    a message not encrypted, or not to the exchange); the secret stays as it was."""
    key = hostile.home / "keys" / "register.key"
    secret = key.read_bytes()
    inbox = hostile.home / "drop" / "kemensos" / "inbox" / FLOW
    os.link(key, inbox / "linked.csv.gpg.filepart")
    kemensos.sftp(f"rename /inbox/{FLOW}/linked.csv.gpg.filepart /inbox/{FLOW}/linked.csv.gpg")
    [code] = kemensos.codes(FLOW, "linked")
    assert code in ("NOT_OPENPGP", "NOT_ENCRYPTED", "NOT_ENCRYPTED_TO_EXCHANGE",
                    "CORRUPT_MESSAGE"), code
    assert key.read_bytes() == secret


def test_a_drop_folder_replaced_by_a_symlink_is_not_served(hostile: Exchange, kemensos: Agency,
                                                           work: Path) -> None:
    outside = work / "elsewhere"
    outside.mkdir()
    plain = work / "bait.csv"
    plain.write_text("anything\n")
    kemensos.seal(plain, "bait.csv.gpg").rename(outside / "bait.result.csv.gpg")
    folder = hostile.home / "drop" / "kemensos" / "outbox" / "kpm-register"
    saved = folder.with_name("kpm-register.saved")
    folder.rename(saved)
    folder.symlink_to(outside)
    try:
        assert kemensos.desk.listing(HOST, hostile.port, "/outbox/kpm-register") == []
        r = kemensos.sftp(f'get /outbox/kpm-register/bait.result.csv.gpg "{work}/bait"',
                          check=False)
        assert r.returncode != 0 and not (work / "bait").exists()
    finally:
        folder.unlink()
        saved.rename(folder)


def test_no_outcome_is_delivered_through_a_planted_link(hostile: Exchange, kemensos: Agency,
                                                        work: Path) -> None:
    outside = work / "outside"
    outside.mkdir()
    folder = hostile.home / "drop" / "kemensos" / "outbox" / FLOW
    saved = folder.with_name(f"{FLOW}.saved")
    folder.rename(saved)
    folder.symlink_to(outside)
    try:
        kemensos.submit(FLOW, sealed(kemensos, work, "through-link", f"nik\n{nik(0)}\n".encode()))
        time.sleep(3)
        assert not list(outside.iterdir()), "an outcome was written outside the agency's tree"
        assert hostile.ledger("--batch", "through-link", "--kind", "batch.undeliverable")
        assert not hostile.ledger("--batch", "through-link", "--kind", "batch.answered")
    finally:
        folder.unlink()
        saved.rename(folder)
    # kept, not lost: delivered once the folder is a folder again
    kemensos.outcome(FLOW, "through-link.result.csv.gpg", timeout=60)


def test_no_checkpoint_or_notice_is_delivered_through_a_planted_link(
        hostile: Exchange, work: Path) -> None:
    outside = work / "outside"
    outside.mkdir()
    folder = hostile.home / "drop" / "kemensos" / "outbox" / "ledger"
    saved = folder.with_name("ledger.saved")
    folder.rename(saved)
    folder.symlink_to(outside)
    try:
        out = exchanged("ledger", "checkpoint", "--home", str(hostile.home)).stdout
        assert out.rstrip().endswith("delivered to /outbox/ledger/ of bkn")
        assert not list(outside.iterdir()), "a checkpoint was written outside the agency's tree"
        assert hostile.alive()
    finally:
        folder.unlink()
        saved.rename(folder)


# -- agency keys that expired, were revoked, or changed -------------------------------------------


@pytest.fixture
def fresh_agency(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
                 ) -> Iterator[tuple[Exchange, AgencyDesk]]:
    """An exchange where Kemensos has keys of its own (these tests expire, revoke and replace
    them): made 2 days ago with gpg's clock, so that their expiry can be put in the past."""
    root = tmp_path_factory.mktemp("keys")
    desk = AgencyDesk("kemensos", root / "kemensos-desk")
    desk.dir.mkdir(parents=True)
    desk.gnupg.mkdir(mode=0o700)
    past = faked(days_ago=2)
    desk.gpg("--faked-system-time", past, "--quick-gen-key", "kemensos <k@agency.example>",
             "ed25519", "sign,cert", "1y")
    desk.fingerprint = desk.own_fingerprint()
    desk.gpg("--faked-system-time", past, "--quick-add-key", desk.fingerprint, "cv25519",
             "encr", "1y")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(desk.ssh_key)],
                   check=True, capture_output=True)
    ex = make_exchange(root, {"kemensos": desk, "bkn": desks["bkn"]})
    ex.start()
    yield ex, desk
    if ex.alive():
        ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")
    stop_gpg_agent(desk.gnupg)


def faked(days_ago: float) -> str:
    moment = datetime.now(UTC) - timedelta(days=days_ago)
    return moment.strftime("%Y%m%dT%H%M%S")


def sign_in_the_past(desk: AgencyDesk, plain: Path, out: Path, exchange: Exchange,
                     when: str) -> Path:
    """Signed at ``when`` (while the key was valid), encrypted now (the exchange's key did
    not exist then): the signed message is encrypted as it is (``--no-literal``)."""
    signed = out.with_suffix(".signed")
    desk.gpg("--faked-system-time", when, "--sign", "--local-user", desk.fingerprint,
             "--output", str(signed), str(plain))
    desk.gpg("--no-literal", "--compress-algo", "none", "--encrypt", "--recipient",
             exchange.fingerprint, "--output", str(out), str(signed))
    return out


def rejected_codes(exchange: Exchange, batch: str, timeout: float = 60) -> list[str]:
    """The codes of a batch's rejection, from the ledger (the sealed rejection may not be
    deliverable: nothing is ever encrypted to a key that expired or was revoked)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = exchange.ledger("--batch", batch, "--kind", "batch.rejected")
        if entries:
            data = entries[-1]["data"]
            assert isinstance(data, dict)
            return list(data["codes"])
        time.sleep(0.2)
    raise AssertionError(f"{batch} was not rejected")


def rotate(exchange: Exchange, root: Path) -> Agency:
    """The agency makes new keys and the administrator registers them (agency update)."""
    desk = AgencyDesk("kemensos", root / "kemensos-new")
    desk.create_keys()
    desk.import_key(exchange.public_key, certify=True)
    desk.trust_host(HOST, exchange.port, exchange.home / "keys" / "ssh_host_ed25519_key.pub")
    exchanged("agency", "update", "--home", str(exchange.home), "kemensos",
              "--ssh-key", str(desk.ssh_public),
              "--gpg-key", str(desk.export_public(desk.dir / "new.asc")))
    return Agency(desk, exchange)


def revoke(desk: AgencyDesk, exchange: Exchange, work: Path) -> None:
    """The agency revokes its key (gpg's own revocation certificate) and the administrator
    imports the revoked copy (agency update)."""
    revocation = desk.gnupg / "openpgp-revocs.d" / f"{desk.fingerprint}.rev"
    text = revocation.read_text().replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----",
                                          "-----BEGIN PGP PUBLIC KEY BLOCK-----")
    (work / "revocation.asc").write_text(text)
    desk.gpg("--import", str(work / "revocation.asc"))
    exchanged("agency", "update", "--home", str(exchange.home), desk.agency,
              "--gpg-key", str(desk.export_public(work / "revoked.asc")))


def test_a_revoked_key(fresh_agency: tuple[Exchange, AgencyDesk], work: Path) -> None:
    """A stolen key is revoked: what it signs is refused SIGNER_KEY_REVOKED and nothing is
    ever encrypted to it. Once the agency has a new key, the refusal reaches it."""
    ex, desk = fresh_agency
    old = Agency(desk, ex)
    plain = work / "r.csv"
    plain.write_text(f"nik\n{nik(0)}\n")
    stolen = old.seal(plain, "by-thief.csv.gpg")  # signed before the revocation was known
    revoke(desk, ex, work)
    old.submit(FLOW, stolen)
    assert rejected_codes(ex, "by-thief") == ["SIGNER_KEY_REVOKED"]
    time.sleep(2)
    assert not ex.ledger("--batch", "by-thief", "--kind", "batch.answered"), \
        "an outcome was encrypted to a revoked key"
    new = rotate(ex, work)
    # sealing is retried (10 s later) and now goes to the new key
    assert new.codes(FLOW, "by-thief") == ["SIGNER_KEY_REVOKED"]
    ex.verify()


def test_the_revoked_old_key_after_a_new_one_is_the_wrong_signer(
        fresh_agency: tuple[Exchange, AgencyDesk], work: Path) -> None:
    ex, desk = fresh_agency
    plain = work / "r.csv"
    plain.write_text(f"nik\n{nik(0)}\n")
    stolen = Agency(desk, ex).seal(plain, "after-rotation.csv.gpg")
    revoke(desk, ex, work)
    new = rotate(ex, work)
    new.submit(FLOW, stolen)
    assert new.codes(FLOW, "after-rotation") == ["WRONG_SIGNER"]


def test_a_changed_key(fresh_agency: tuple[Exchange, AgencyDesk], work: Path) -> None:
    """The agency's pinned key changes (a new fingerprint): a batch signed with the old key,
    still valid but no longer pinned, is refused WRONG_SIGNER, encrypted to the new key."""
    ex, desk = fresh_agency
    plain = work / "c.csv"
    plain.write_text(f"nik\n{nik(0)}\n")
    new = rotate(ex, work)
    new.submit(FLOW, Agency(desk, ex).seal(plain, "old-key.csv.gpg"))
    body = new.rejection(FLOW, "old-key")
    reasons = body["reasons"]
    assert isinstance(reasons, list) and [r["code"] for r in reasons] == ["WRONG_SIGNER"]
    assert new.desk.fingerprint in str(reasons)
    new.submit(FLOW, new.seal(plain, "new-key.csv.gpg"))
    assert new.codes(FLOW, "new-key") == ["NO_REFERENCE_DATA"]  # no register in this exchange


def test_an_expired_key(fresh_agency: tuple[Exchange, AgencyDesk], work: Path) -> None:
    """A batch signed while the agency's key was valid, received after it expired: refused
    SIGNER_KEY_EXPIRED (and, as for a revoked key, nothing is encrypted to it)."""
    ex, desk = fresh_agency
    plain = work / "e.csv"
    plain.write_text(f"nik\n{nik(0)}\n")
    out = sign_in_the_past(desk, plain, work / "expired-key.csv.gpg", ex, faked(days_ago=1.5))
    # the key was set to expire a day after it was made; the exchange gets that copy
    when = faked(days_ago=1.99)
    desk.gpg("--faked-system-time", when, "--quick-set-expire", desk.fingerprint, "1d")
    desk.gpg("--faked-system-time", when, "--quick-set-expire", desk.fingerprint, "1d", "*")
    exchanged("agency", "update", "--home", str(ex.home), "kemensos",
              "--gpg-key", str(desk.export_public(work / "expired.asc")))
    Agency(desk, ex).submit(FLOW, out)
    assert rejected_codes(ex, "expired-key") == ["SIGNER_KEY_EXPIRED"]
    time.sleep(2)
    assert not ex.ledger("--batch", "expired-key", "--kind", "batch.answered")


def test_a_gigantic_line_does_not_exhaust_memory(hostile: Exchange, bkn: Agency,
                                                 work: Path) -> None:
    """One line of 256 MiB (within asn-register's 4 GiB): the reader must not hold it whole."""
    plain = work / "gigantic.csv"
    with plain.open("wb") as f:
        f.write(b"nip,nik,nama,tanggal_lahir,jenis_asn,instansi\n")
        f.write(b"1,2,")
        chunk = b"A" * (1 << 20)
        for _ in range(256):
            f.write(chunk)
        f.write(b",1990-01-01,PNS,X\n")
    sealed_file = work / "gigantic.csv.gpg"
    bkn.desk.gpg("--compress-algo", "zlib", "--compress-level", "1", "--sign", "--local-user",
                 bkn.desk.fingerprint, "--encrypt", "--recipient", hostile.fingerprint,
                 "--output", str(sealed_file), str(plain))
    assert hostile.proc is not None
    before = peak_rss(hostile.proc.pid)
    bkn.submit("asn-register", sealed_file)
    reasons = bkn.rejection("asn-register", "gigantic", timeout=300)["reasons"]
    assert isinstance(reasons, list) and [r["code"] for r in reasons] == ["NO_VALID_ROWS"]
    grown = peak_rss(hostile.proc.pid) - before
    assert grown < 128 * 1024 * 1024, f"the daemon's memory grew by {grown >> 20} MiB"


# -- the front door: silent connections, floods of entries, keys replaced ------------------------

#: the addresses the silent crowd connects from (Linux routes all of 127/8 to the loopback)
SILENT_FROM = tuple(f"127.0.0.{i}" for i in range(2, 10))


def hold_silent(address: str, port: int, stop: threading.Event, per_address: int = 8) -> None:
    """Keep ``per_address`` TCP connections from ``address`` open without a word of SSH,
    opening a new one whenever the server closes one."""
    socks: list[socket.socket] = []
    try:
        while not stop.is_set():
            while len(socks) < per_address and not stop.is_set():
                s = socket.socket()
                s.bind((address, 0))
                s.settimeout(2)
                try:
                    s.connect((HOST, port))
                except OSError:
                    s.close()
                    break
                socks.append(s)
            readable, _, _ = select.select(socks, [], [], 0.1)
            for s in readable:
                try:
                    data = s.recv(4096)  # the server's banner, or the end
                except OSError:
                    data = b""
                if not data:
                    socks.remove(s)
                    s.close()
            # turned away at once (banned): try again a little later, as a script would
            stop.wait(0.02 if len(socks) == per_address else 0.2)
    finally:
        for s in socks:
            s.close()


def settled(exchange: Exchange) -> int:
    """The ledger's head once nothing was written for a second (the sessions of the test
    before are on record: a session's entry is written just after its client left)."""
    head, since = head_seq(exchange), time.monotonic()
    while time.monotonic() - since < 1.0:
        time.sleep(0.25)
        now = head_seq(exchange)
        if now != head:
            head, since = now, time.monotonic()
    return head


def sftp_from(agency: Agency, address: str, *commands: str, user: str | None = None,
              check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """OpenSSH sftp in batch mode as the desk runs it, from another loopback address."""
    desk = agency.desk
    return subprocess.run(
        ["sftp", "-q", "-b", "-", "-P", str(agency.exchange.port), "-i", str(desk.ssh_key),
         "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={desk.known_hosts}", "-o", f"BindAddress={address}",
         f"{user or agency.id}@{HOST}"],
        input=("\n".join(commands) + "\n").encode(), capture_output=True, check=check,
        timeout=60)


def test_a_user_name_is_kept_only_as_a_keyed_hash(hostile: Exchange, kemensos: Agency) -> None:
    """Issue 11 part 7: a login user name that is a NIK is recorded as an HMAC with the
    exchange's own key (keys/ledger-hmac.key, 0600), never as its plain SHA-256."""
    name = nik(7)
    assert sftp_from(kemensos, "127.0.0.20", "ls /", user=name, check=False).returncode != 0
    key_file = hostile.home / "keys" / "ledger-hmac.key"
    deadline = time.monotonic() + 10
    entries: list[dict[str, object]] = []
    while not entries and time.monotonic() < deadline:
        entries = [e for e in hostile.ledger("--kind", "login.failed")
                   if str(e["data"]["remote"]).startswith("127.0.0.20:")]  # type: ignore[index]
        time.sleep(0.2)
    [entry] = entries
    data = entry["data"]
    assert isinstance(data, dict)
    assert data["user_hmac"] == hmac.new(key_file.read_bytes(), name.encode(),
                                         hashlib.sha256).hexdigest()
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    everything = json.dumps(hostile.ledger())
    assert name not in everything
    assert hashlib.sha256(name.encode()).hexdigest() not in everything


def session_entries(exchange: Exchange, after: int, ended_by: str | None = None,
                    timeout: float = 15) -> list[dict[str, object]]:
    """session.ended entries of Kemensos after ledger entry ``after``, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in exchange.ledger("--kind", "session.ended", "--agency", "kemensos")
                 if int(str(e["seq"])) > after and (
                     ended_by is None or e["data"]["ended_by"] == ended_by)]  # type: ignore[index]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_400_downloads_in_one_session_add_a_handful_of_entries(
        hostile: Exchange, kemensos: Agency, work: Path) -> None:
    """Issue 11 part 6: downloads are counted in the session's one entry, not one each."""
    answer(kemensos, work, "dl-400", f"nik\n{nik(0)}\n".encode())
    name = "dl-400.result.csv.gpg"
    before = settled(hostile)
    kemensos.sftp(*[f'get /outbox/{FLOW}/{name} "{work / "copy"}"' for _ in range(400)])
    [entry] = session_entries(hostile, before)
    added = head_seq(hostile) - before
    print(f"400 downloads in one sftp session added {added} ledger entries")
    assert added <= 3, added
    data = entry["data"]
    assert isinstance(data, dict)
    assert data["downloads"] == 400 and data["ended_by"] == "client"
    [outcome] = data["outcomes"]
    assert outcome["batch"] == "dl-400" and outcome["downloads"] == 400
    assert name not in json.dumps(entry)  # the name only as a keyed hash


def test_a_replaced_ssh_key_ends_its_open_session_at_once(
        hostile: Exchange, kemensos: Agency, work: Path) -> None:
    """Issue 11 part 9: a real sftp session of a key that 'agency update' then removes is cut
    at once (its next request gets nothing), on record as ended_by key_changed; the agency's
    other key goes on logging in."""
    answer(kemensos, work, "cut-key", f"nik\n{nik(1)}\n".encode())
    remote = f"/outbox/{FLOW}/cut-key.result.csv.gpg"
    second = work / "second_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(second)],
                   check=True, capture_output=True)
    home = str(hostile.home)
    exchanged("agency", "update", "--home", home, "kemensos", "--ssh-key",
              f"{second}.pub", "--add")
    before = settled(hostile)
    session = OpenSession(kemensos, second)
    try:
        assert session.get(remote, work / "first"), "the session with the added key did not work"
        # the administrator replaces Kemensos's keys by its first key alone
        exchanged("agency", "update", "--home", home, "kemensos", "--ssh-key",
                  str(kemensos.desk.ssh_public))
        cut = time.monotonic()
        [entry] = session_entries(hostile, before, "key_changed", timeout=10)
        print(f"session ended {time.monotonic() - cut:.2f} s after the key was replaced")
        assert not session.get(remote, work / "second", timeout=5), "the old key kept its session"
        assert session.proc.wait(10) != 0
    finally:
        session.close()
    data = entry["data"]
    assert isinstance(data, dict) and data["downloads"] == 1
    assert kemensos.sftp("ls /outbox").returncode == 0  # the remaining key logs in
    r = kemensos.sftp("ls /", key=second, check=False)
    assert r.returncode != 0


def test_a_session_cut_by_a_killed_daemon_is_on_record_at_the_next_start(
        hostile: Exchange, kemensos: Agency, work: Path) -> None:
    """Issue 11 part 6, crash semantics: a session's downloads are kept in open_sessions as they
    happen; a daemon killed mid-session writes the session's entry (cut_off) when it starts."""
    answer(kemensos, work, "cut-off", f"nik\n{nik(2)}\n".encode())
    before = settled(hostile)
    session = OpenSession(kemensos, kemensos.desk.ssh_key)
    try:
        assert session.get(f"/outbox/{FLOW}/cut-off.result.csv.gpg", work / "c")
        time.sleep(0.3)  # the close of the downloaded file is answered after it is counted
        hostile.stop(signal.SIGKILL)
    finally:
        session.close()
    hostile.start()
    [entry] = session_entries(hostile, before, "cut_off", timeout=10)
    data = entry["data"]
    assert isinstance(data, dict) and data["downloads"] == 1
    hostile.verify()


def test_silent_connections_never_lock_an_agency_out(hostile: Exchange, kemensos: Agency
                                                     ) -> None:
    """Issue 11 part 3: 8 addresses each holding 8 connections that never send an SSH banner
    fill what strangers may take of the door (64 connections, 16 kept for addresses agencies
    logged in from); the agency logs in every time, each silent connection is closed at the
    handshake's deadline and scores, the silent addresses are banned, on record, and no
    silent connection writes an entry of its own."""
    before = settled(hostile)
    stop = threading.Event()
    crowd = [threading.Thread(target=hold_silent, args=(a, hostile.port, stop), daemon=True)
             for a in SILENT_FROM]
    for t in crowd:
        t.start()
    times = []
    try:
        time.sleep(1)  # the crowd fills the door
        started = time.monotonic()
        while time.monotonic() - started < 3 * HANDSHAKE + 2:
            t0 = time.monotonic()
            kemensos.sftp("ls /outbox")  # check=True: every login must work
            times.append(time.monotonic() - t0)
    finally:
        stop.set()
        for t in crowd:
            t.join(10)
    print(f"{len(times)} logins under 64 silent connections, slowest {max(times):.2f} s")
    assert len(times) >= 3
    banned = {e["data"]["address"] for e in hostile.ledger("--kind", "login.banned")  # type: ignore[index]
              if int(str(e["seq"])) > before}
    assert banned and banned <= set(SILENT_FROM), banned
    assert len(banned) >= 4, f"only {sorted(banned)} banned"
    added = [e["kind"] for e in hostile.ledger() if int(str(e["seq"])) > before]
    assert "login.failed" not in added, "a silent connection was recorded as a login"
    assert len(added) <= len(times) + len(SILENT_FROM) + 2, Counter(added)
    assert hostile.alive()
