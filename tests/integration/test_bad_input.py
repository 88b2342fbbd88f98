"""Every bad upload gets exactly one signed, encrypted rejection with a specific reason,
a ledger entry, and the daemon keeps serving. Driven with real gpg and sftp."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import (
    AGREEMENT,
    Agency,
    Exchange,
    make_exchange,
    write_csv,
)

FLOW = "kpm-verification"
GOOD_CSV = "ref,nik\nK1,3171014101900001\n"


def plain(work: Path, text: str = GOOD_CSV) -> Path:
    return write_csv(work / "batch.csv", text)


def assert_rejected(exchange: Exchange, agency: Agency, batch: str, code: str,
                    flow: str = FLOW) -> dict[str, object]:
    body = agency.rejection(flow, batch)
    codes = [r["code"] for r in body["reasons"]]  # type: ignore[index, union-attr]
    assert code in codes, body
    assert body["batch"] == batch and body["flow"] == flow
    entries = exchange.ledger("--batch", batch, "--kind", "batch.rejected")
    assert entries, "no ledger entry for the rejection"
    assert entries[-1]["seq"] == body["ledger_seq"]
    assert code in entries[-1]["data"]["codes"]  # type: ignore[index, operator]
    # exactly one outcome for this batch id, and the daemon still serves
    names = [n for n in agency.desk.listing("127.0.0.1", exchange.port, f"/outbox/{flow}")
             if n.startswith(f"{batch}.")]
    assert names == [f"{batch}.rejected.json.gpg"], names
    assert exchange.alive()
    return body


def test_unsigned(exchange: Exchange, kemensos: Agency, work: Path) -> None:
    sealed = kemensos.seal(plain(work), "unsigned.csv.gpg", sign=False)
    kemensos.submit(FLOW, sealed)
    assert_rejected(exchange, kemensos, "unsigned", "NOT_SIGNED")


def test_signed_but_not_encrypted(exchange: Exchange, kemensos: Agency, work: Path) -> None:
    sealed = kemensos.seal(plain(work), "signed-only.csv.gpg", recipient=None)
    kemensos.submit(FLOW, sealed)
    assert_rejected(exchange, kemensos, "signed-only", "NOT_ENCRYPTED")


def test_encrypted_to_another_key(exchange: Exchange, kemensos: Agency, work: Path,
                                  desks: dict[str, AgencyDesk]) -> None:
    intruder_fpr = kemensos.desk.import_key(
        desks["intruder"].export_public(work / "intruder.asc"), certify=True)
    sealed = kemensos.seal(plain(work), "other-key.csv.gpg", recipient=intruder_fpr)
    kemensos.submit(FLOW, sealed)
    body = assert_rejected(exchange, kemensos, "other-key", "NOT_ENCRYPTED_TO_EXCHANGE")
    assert exchange.fingerprint in str(body["reasons"])


def test_signed_by_an_unknown_key(exchange: Exchange, kemensos: Agency, work: Path,
                                  desks: dict[str, AgencyDesk]) -> None:
    intruder = desks["intruder"]
    sealed = intruder.seal(plain(work), work / "stranger.csv.gpg",
                           recipient=exchange.fingerprint)
    kemensos.submit(FLOW, sealed)
    assert_rejected(exchange, kemensos, "stranger", "WRONG_SIGNER")


def test_signed_by_another_agencys_key(exchange: Exchange, kemensos: Agency, bkn: Agency,
                                       work: Path) -> None:
    sealed = bkn.seal(plain(work), "bkn-signed.csv.gpg")
    kemensos.submit(FLOW, sealed)
    body = assert_rejected(exchange, kemensos, "bkn-signed", "WRONG_SIGNER")
    assert kemensos.desk.fingerprint in str(body["reasons"])


@pytest.mark.parametrize("algo", ["SHA1", "MD5"])
def test_signed_with_a_weak_hash(exchange: Exchange, kemensos: Agency, work: Path,
                                 algo: str) -> None:
    """Signed by the pinned key, but over an SHA-1 or MD5 hash (gpg checks the first and
    refuses the second itself): either is WEAK_SIGNATURE, naming the hash."""
    sealed = work / f"weak-{algo}.csv.gpg"
    kemensos.desk.gpg("--allow-weak-digest-algos", "--digest-algo", algo, "--output",
                      str(sealed), "--sign", "--local-user", kemensos.desk.fingerprint,
                      "--encrypt", "--recipient", exchange.fingerprint, str(plain(work)))
    kemensos.submit(FLOW, sealed)
    body = assert_rejected(exchange, kemensos, f"weak-{algo}", "WEAK_SIGNATURE")
    assert f"the {algo} hash algorithm" in str(body["reasons"])
    assert not exchange.ledger("--batch", f"weak-{algo}", "--kind", "batch.opened")


def test_random_bytes(exchange: Exchange, kemensos: Agency, work: Path) -> None:
    junk = work / "random.csv.gpg"
    # random, but never starting with an OpenPGP packet tag (bit 7 set): gpg would read such
    # bytes as a packet now and then and answer NOT_ENCRYPTED_TO_EXCHANGE, rightly enough
    data = os.urandom(4096)
    junk.write_bytes(bytes([data[0] & 0x7F]) + data[1:])
    kemensos.submit(FLOW, junk)
    assert_rejected(exchange, kemensos, "random", "NOT_OPENPGP")


def test_truncated(exchange: Exchange, kemensos: Agency, work: Path) -> None:
    big = "ref,nik\n" + "".join(f"K{i},3171014101900001\n" for i in range(5000))
    sealed = kemensos.seal(plain(work, big), "full.csv.gpg")
    data = sealed.read_bytes()
    cut = work / "truncated.csv.gpg"
    cut.write_bytes(data[: len(data) // 2])
    kemensos.submit(FLOW, cut)
    assert_rejected(exchange, kemensos, "truncated", "CORRUPT_MESSAGE")


def test_empty(exchange: Exchange, kemensos: Agency, work: Path) -> None:
    empty = work / "empty.csv.gpg"
    empty.write_bytes(b"")
    kemensos.submit(FLOW, empty)
    assert_rejected(exchange, kemensos, "empty", "EMPTY_UPLOAD")


def test_replay_keeps_the_first_answer(exchange: Exchange, kemensos: Agency, work: Path) -> None:
    sealed = kemensos.seal(plain(work, "nik\n3171014101900001\n"), "once.csv.gpg")
    kemensos.submit(FLOW, sealed)
    first = kemensos.rejection(FLOW, "once")  # no register loaded in this module: rejected
    first_digest = hashlib.sha256(
        (exchange.home / "drop" / "kemensos" / "outbox" / FLOW / "once.rejected.json.gpg")
        .read_bytes()).hexdigest()
    kemensos.submit(FLOW, sealed)
    replay = kemensos.outcome(FLOW, "once.replay-1.rejected.json.gpg")
    assert b'"REPLAY"' in replay and b"once" in replay
    again = hashlib.sha256(
        (exchange.home / "drop" / "kemensos" / "outbox" / FLOW / "once.rejected.json.gpg")
        .read_bytes()).hexdigest()
    assert again == first_digest and first["reasons"]


def test_missing_required_column(exchange: Exchange, kemensos: Agency, work: Path) -> None:
    sealed = kemensos.seal(plain(work, "ref,nama\nK1,Budi\n"), "no-nik.csv.gpg")
    kemensos.submit(FLOW, sealed)
    body = assert_rejected(exchange, kemensos, "no-nik", "MISSING_COLUMN")
    assert "nik" in str(body["reasons"])


def test_column_not_listed(exchange: Exchange, kemensos: Agency, work: Path) -> None:
    sealed = kemensos.seal(plain(work, "ref,nik,alamat\nK1,3171014101900001,Jl. X\n"),
                           "extra-col.csv.gpg")
    kemensos.submit(FLOW, sealed)
    body = assert_rejected(exchange, kemensos, "extra-col", "COLUMN_NOT_ALLOWED")
    message = body["reasons"][0]["message"]  # type: ignore[index]
    assert "alamat" in message and "Pasal" in message
    # the ledger names the rule and the clause, never a value
    entry = exchange.ledger("--batch", "extra-col", "--kind", "batch.rejected")[-1]
    assert "Jl. X" not in str(entry)


@pytest.mark.parametrize("name", ["batch one.csv.gpg", "report.txt", "x" * 70 + ".csv.gpg"])
def test_bad_file_name(exchange: Exchange, kemensos: Agency, work: Path, name: str) -> None:
    sealed = kemensos.seal(plain(work), "ok.csv.gpg")
    before = set(kemensos.desk.listing("127.0.0.1", exchange.port, f"/outbox/{FLOW}"))
    kemensos.submit(FLOW, sealed, remote_name=name)
    entries = [e for e in exchange.ledger("--kind", "batch.received", "--agency", "kemensos")
               if e["data"]["name_ok"] is False]  # type: ignore[index]
    assert entries
    uid = str(entries[-1]["batch"])
    body = kemensos.rejection(FLOW, uid)
    assert body["reasons"][0]["code"] == "BAD_FILE_NAME"  # type: ignore[index]
    after = set(kemensos.desk.listing("127.0.0.1", exchange.port, f"/outbox/{FLOW}"))
    assert after - before == {f"{uid}.rejected.json.gpg"}


def test_batch_id_that_looks_like_a_nik(exchange: Exchange, kemensos: Agency, work: Path) -> None:
    sealed = kemensos.seal(plain(work), "3171014101900001.csv.gpg")
    kemensos.submit(FLOW, sealed)
    entries = [e for e in exchange.ledger("--kind", "batch.received", "--agency", "kemensos")
               if e["data"]["name_ok"] is False]  # type: ignore[index]
    uid = str(entries[-1]["batch"])
    assert "3171014101900001" not in uid
    body = kemensos.rejection(FLOW, uid)
    assert body["reasons"][0]["code"] == "BATCH_ID_LOOKS_PERSONAL"  # type: ignore[index]


def test_the_ledger_still_verifies(exchange: Exchange) -> None:
    exchange.verify()


@pytest.fixture(scope="module")
def expired(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
            ) -> Iterator[Exchange]:
    """An exchange with the shipped agreement as signed: it ended on 2026-04-03."""
    ex = make_exchange(tmp_path_factory.mktemp("expired"), desks, extend=False)
    ex.start()
    yield ex
    ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_agreement_not_in_force(expired: Exchange, desks: dict[str, AgencyDesk],
                                work: Path) -> None:
    kemensos = Agency(desks["kemensos"], expired)
    sealed = kemensos.seal(plain(work), "too-late.csv.gpg")
    kemensos.submit(FLOW, sealed)
    body = assert_rejected(expired, kemensos, "too-late", "AGREEMENT_NOT_IN_FORCE")
    message = body["reasons"][0]["message"]  # type: ignore[index]
    assert "2023-04-03" in message and "2026-04-03" in message and AGREEMENT in message
    decision = expired.ledger("--batch", "too-late", "--kind", "batch.rejected")[-1]
    assert decision["data"]["codes"] == ["AGREEMENT_NOT_IN_FORCE"]  # type: ignore[index]
