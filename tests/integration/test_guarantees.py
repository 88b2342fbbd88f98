"""Guarantees that hold under attack (issue 11), against the running daemon with real ``sftp``
and ``gpg``: no one agency's upload stops intake for the others, jams a batch or has it
processed again and again, locks the register with a signature dated ahead, or puts
personal data where it must never be; and nobody rewrites the policy archive unnoticed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.hostile import paramiko_sftp
from tests.integration.support import Agency, Exchange, exchanged, make_exchange, write_csv

FLOW = "kpm-verification"
REGISTER = synth.SyntheticRegister(200, seed=61)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
            ) -> Iterator[Exchange]:
    """An exchange with short retry waits (two tries, then the shunt) and a register."""
    ex = make_exchange(tmp_path_factory.mktemp("guarded"), desks)
    with open(ex.home / "config.yaml", "a", encoding="utf-8") as f:
        f.write("retry_delays: [0.3, 0.3]\n")
    ex.start()
    bkn = Agency(desks["bkn"], ex)
    work = tmp_path_factory.mktemp("guarded-setup")
    register = work / "register.csv"
    synth.write_register_csv(str(register), REGISTER)
    bkn.submit("asn-register", bkn.seal(register, "reg-g.csv.gpg"))
    assert b'"ROWS_LOADED","200"' in bkn.outcome("asn-register", "reg-g.result.csv.gpg")
    yield ex
    if ex.alive():
        ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")


@pytest.fixture(scope="module")
def kemensos(guarded: Exchange, desks: dict[str, AgencyDesk]) -> Agency:
    return Agency(desks["kemensos"], guarded)


@pytest.fixture(scope="module")
def bkn(guarded: Exchange, desks: dict[str, AgencyDesk]) -> Agency:
    return Agency(desks["bkn"], guarded)


def kpm(agency: Agency, work: Path, batch: str, rows: int = 3) -> Path:
    plain = write_csv(work / f"{batch}.csv",
                      "nik\n" + "".join(f"{REGISTER.row(i).nik}\n" for i in range(rows)))
    return agency.seal(plain, f"{batch}.csv.gpg")


def outcomes(ex: Exchange, agency: str) -> list[str]:
    return sorted(os.listdir(ex.home / "drop" / agency / "outbox" / FLOW))


def head(ex: Exchange) -> int:
    entries = ex.ledger()
    return int(entries[-1]["seq"]) if entries else 0  # type: ignore[call-overload]


def refused_since(ex: Exchange, seq: int, code: str, timeout: float = 30) -> str:
    """The uid of the first batch refused ``code`` after ledger entry ``seq``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in ex.ledger("--kind", "batch.rejected"):
            data = e["data"]
            assert isinstance(data, dict)
            if int(e["seq"]) > seq and data.get("codes") == [code]:  # type: ignore[call-overload]
                return str(data["uid"])
        time.sleep(0.3)
    raise AssertionError(f"no batch was refused {code}")


def wait_for_entry(ex: Exchange, *filters: str, timeout: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        found = ex.ledger(*filters)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


# -- a batch jammed and reprocessed for ever ------------------------------------------------------


def test_a_name_the_exchange_makes_cannot_be_taken_and_no_batch_is_opened_twice(
        guarded: Exchange, kemensos: Agency, work: Path) -> None:
    junk = work / "junk.csv.gpg"
    junk.write_bytes(b"this is not an OpenPGP message at all\n" * 10)
    kemensos.submit(FLOW, junk, remote_name="s1.csv.gpg")
    kemensos.outcome(FLOW, "s1.rejected.json.gpg")
    kemensos.submit(FLOW, junk, remote_name="s1.csv.gpg")
    assert kemensos.codes(FLOW, "s1.replay-1") == ["REPLAY"]
    # a batch named like the replay's own outcome: answered under the upload's id
    seq = head(guarded)
    kemensos.submit(FLOW, kpm(kemensos, work, "s1.replay-1"), remote_name="s1.replay-1.csv.gpg")
    uid = refused_since(guarded, seq, "RESERVED_BATCH_ID")
    rejection = json.loads(kemensos.outcome(FLOW, f"{uid}.rejected.json.gpg"))
    assert [r["code"] for r in rejection["reasons"]] == ["RESERVED_BATCH_ID"]
    # in both languages: the contract's English message, and the Indonesian beside it
    assert "reserved" not in rejection["reasons"][0]["pesan"]
    assert rejection["reasons"][0]["pesan"].startswith("Batch id berbentuk nama")
    # three uploads, three outcomes, each answered once and opened at most once
    names = [n for n in outcomes(guarded, "kemensos") if n.startswith(("s1.", uid))]
    assert sorted(names) == sorted(["s1.rejected.json.gpg", "s1.replay-1.rejected.json.gpg",
                                    f"{uid}.rejected.json.gpg"])
    answered = Counter(str(e["data"]["uid"])  # type: ignore[index]
                       for e in guarded.ledger("--kind", "batch.answered"))
    opened = Counter(str(e["data"]["uid"])  # type: ignore[index]
                     for e in guarded.ledger("--kind", "batch.opened"))
    assert set(answered.values()) == {1} and set(opened.values()) <= {1}
    assert not guarded.ledger("--kind", "batch.failed")


def test_a_batch_that_cannot_be_delivered_is_shunted_then_requeued(
        guarded: Exchange, kemensos: Agency, work: Path) -> None:
    outside = work / "outside"
    outside.mkdir()
    folder = guarded.home / "drop" / "kemensos" / "outbox" / FLOW
    saved = folder.with_name(f"{FLOW}.saved")
    folder.rename(saved)
    folder.symlink_to(outside)
    try:
        kemensos.submit(FLOW, kpm(kemensos, work, "stuck"))
        shunted = wait_for_entry(guarded, "--batch", "stuck", "--kind", "batch.shunted")
        assert shunted, "the batch was not shunted after its last try"
        assert len(guarded.ledger("--batch", "stuck", "--kind", "batch.retrying")) == 2
        status = json.loads(exchanged("status", "--home", str(guarded.home),
                                      "--format", "json").stdout)
        assert [s["batch"] for s in status["shunted"]] == ["stuck"]
        text = exchanged("status", "--home", str(guarded.home)).stdout
        assert "shunted: 1 batch(es)" in text
        time.sleep(1)  # no more tries after the shunt
        assert len(guarded.ledger("--batch", "stuck", "--kind", "batch.retrying")) == 2
        assert not list(outside.iterdir())
    finally:
        folder.unlink()
        saved.rename(folder)
    uid = str(shunted[0]["data"]["uid"])  # type: ignore[index]
    out = exchanged("batch", "requeue", "--home", str(guarded.home), uid).stdout
    assert uid in out
    kemensos.outcome(FLOW, "stuck.result.csv.gpg", timeout=40)
    assert guarded.ledger("--batch", "stuck", "--kind", "batch.requeued")
    assert len(guarded.ledger("--batch", "stuck", "--kind", "batch.answered")) == 1
    again = exchanged("batch", "requeue", "--home", str(guarded.home), uid, check=False)
    assert again.returncode == 2 and "not a shunted batch" in again.stderr


# -- a signature dated ahead --------------------------------------------------------------------


def test_a_register_signed_in_the_future_is_refused_and_locks_nothing(
        guarded: Exchange, bkn: Agency, work: Path) -> None:
    plain = work / "future.csv"
    synth.write_register_csv(str(plain), synth.SyntheticRegister(50, seed=62))
    ahead = plain.with_name("future.csv.gpg")
    bkn.desk.gpg("--faked-system-time", "20281101T000000", "--output", str(ahead),
                 "--sign", "--local-user", bkn.desk.fingerprint,
                 "--encrypt", "--recipient", guarded.fingerprint, str(plain))
    older = work / "older.csv"
    synth.write_register_csv(str(older), REGISTER)
    older_sealed = bkn.seal(older, "older.csv.gpg")
    time.sleep(1.1)  # signatures carry whole seconds
    bkn.submit("asn-register", ahead)
    assert bkn.codes("asn-register", "future") == ["SIGNED_IN_THE_FUTURE"]
    honest = work / "honest.csv"
    synth.write_register_csv(str(honest), REGISTER)
    bkn.submit("asn-register", bkn.seal(honest, "honest.csv.gpg"))
    assert b'"ROWS_LOADED","200"' in bkn.outcome("asn-register", "honest.result.csv.gpg")
    # a register signed before the one in force, sent after it, still cannot roll it back
    bkn.submit("asn-register", older_sealed)
    assert bkn.codes("asn-register", "older") == ["STALE_REFERENCE"]


# -- personal data where it must never be ------------------------------------------------------


@pytest.mark.parametrize("batch_id", ["kpm-35060565087310169", "Yanti_Purwanti_1973-08-25"])
def test_a_batch_id_like_personal_data_is_refused_and_never_stored(
        guarded: Exchange, kemensos: Agency, work: Path, batch_id: str) -> None:
    seq = head(guarded)
    kemensos.submit(FLOW, kpm(kemensos, work, "carrier"), remote_name=f"{batch_id}.csv.gpg")
    uid = refused_since(guarded, seq, "BATCH_ID_LOOKS_PERSONAL")
    rejection = json.loads(kemensos.outcome(FLOW, f"{uid}.rejected.json.gpg"))
    assert rejection["batch"] == uid
    ledger_text = exchanged("ledger", "query", "--home", str(guarded.home),
                            "--format", "json").stdout
    digits = "".join(ch for ch in batch_id if ch.isdigit())
    assert batch_id not in ledger_text and digits not in ledger_text
    for path in guarded.home.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".yaml", ".log", ""):
            assert batch_id.encode() not in path.read_bytes(), path


def test_nothing_but_sealed_messages_outlives_an_answered_batch(
        guarded: Exchange, kemensos: Agency, work: Path) -> None:
    kemensos.submit(FLOW, write_csv(work / "no-nik.csv.gpg", "not sealed\n"),
                    remote_name="leftovers.csv.gpg")
    kemensos.outcome(FLOW, "leftovers.rejected.json.gpg")
    kemensos.submit(FLOW, kpm(kemensos, work, "leftovers-ok"))
    kemensos.outcome(FLOW, "leftovers-ok.result.csv.gpg")
    for entry in guarded.ledger("--kind", "batch.answered"):
        folder = guarded.home / "spool" / "batches" / str(entry["data"]["uid"])  # type: ignore[index]
        assert sorted(os.listdir(folder)) == ["outcome", "upload"], folder


# -- the policy archive --------------------------------------------------------------------------


def test_a_swapped_archived_policy_is_caught_by_replay_and_verify(
        guarded: Exchange, kemensos: Agency, work: Path) -> None:
    kemensos.submit(FLOW, kpm(kemensos, work, "archived"))
    kemensos.outcome(FLOW, "archived.result.csv.gpg")
    admitted = guarded.ledger("--batch", "archived", "--kind", "batch.admitted")[0]
    seq = int(admitted["seq"])  # type: ignore[call-overload]
    used = str(admitted["data"]["policy_sha256"])  # type: ignore[index]
    assert exchanged("policy", "explain", "--home", str(guarded.home), "--seq", str(seq)
                     ).returncode == 0
    db = sqlite3.connect(guarded.home / "ledger.db")
    try:
        trigger = db.execute("SELECT sql FROM sqlite_master WHERE name = 'policy_sets_no_update'"
                             ).fetchone()[0]
        sha, text = db.execute("SELECT sha256, files FROM policy_sets WHERE sha256 = ?",
                               (used,)).fetchone()
        files = json.loads(text)
        name = next(n for n in files if n.endswith(".yaml") and "addendum" not in n)
        files[name] += "\n# forged\n"
        db.execute("DROP TRIGGER policy_sets_no_update")
        db.execute("UPDATE policy_sets SET files = ? WHERE sha256 = ?", (json.dumps(files), sha))
        db.execute(trigger)
        db.commit()
        replay = exchanged("policy", "explain", "--home", str(guarded.home), "--seq", str(seq),
                           check=False)
        assert replay.returncode == 1 and "altered" in replay.stderr
        verify = exchanged("ledger", "verify", "--home", str(guarded.home), check=False)
        said = verify.stdout + verify.stderr
        assert verify.returncode == 1 and "policy sets were altered" in said
    finally:
        db.execute("DROP TRIGGER policy_sets_no_update")
        db.execute("UPDATE policy_sets SET files = ? WHERE sha256 = ?", (text, sha))
        db.execute(trigger)
        db.commit()
        db.close()
    assert exchanged("ledger", "verify", "--home", str(guarded.home)).returncode == 0


# -- one agency's sparse upload never stops intake ---------------------------------------------


@pytest.fixture
def small_home(tmp_path: Path) -> Iterator[Path]:
    """A 256 MiB tmpfs for a home (the CI machine runs as root, like these tests)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", "tmpfs",
                        str(mount)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here: {r.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_sparse_upload_far_out_neither_stops_intake_nor_passes_for_big(
        small_home: Path, desks: dict[str, AgencyDesk], work: Path) -> None:
    """A write at offset 400 MiB of an empty file (one byte on disk) on a 256 MiB home: the
    batch is refused for what it is, intake never stops, and a batch that really could not
    fit is refused NO_ROOM_FOR_BATCH instead of pausing the exchange."""
    ex = make_exchange(small_home, desks)
    ex.start()
    try:
        kemensos, bkn = Agency(desks["kemensos"], ex), Agency(desks["bkn"], ex)
        with paramiko_sftp(kemensos) as sftp:
            with sftp.open(f"/inbox/{FLOW}/sparse.csv.gpg", "wb") as f:
                f.seek(400 << 20)
                f.write(b"\0")
        assert kemensos.codes(FLOW, "sparse") == ["NOT_OPENPGP"]
        assert not ex.ledger("--kind", "exchange.unavailable")
        # a real 80 MiB upload: twice that is more than half this disk
        big = work / "big.csv.gpg"
        big.write_bytes(os.urandom(80 << 20))
        bkn.submit("asn-register", big)
        assert bkn.codes("asn-register", "big") == ["NO_ROOM_FOR_BATCH"]
        assert not ex.ledger("--kind", "exchange.unavailable")
        # and intake stayed open for everyone all along
        plain = write_csv(work / "after.csv", "nik\n3171014101900001\n")
        kemensos.submit(FLOW, kemensos.seal(plain, "after.csv.gpg"))
        assert kemensos.codes(FLOW, "after") == ["NO_REFERENCE_DATA"]
        ex.verify()
    finally:
        ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")
