"""Retention and reminders, on a real home: what goes, what is recorded, what the parties get."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from exchanged.admin.reminders import _half_before
from exchanged.admin.retention import run_retention
from exchanged.home import Home, load_config
from exchanged.ledger import open_ledger
from exchanged.policy import load_policies
from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import (
    AGREEMENT,
    HOST,
    Agency,
    Exchange,
    exchanged,
    make_exchange,
    write_csv,
)


@pytest.fixture
def ending(tmp_path: Path, desks: dict[str, AgencyDesk]) -> Iterator[Exchange]:
    """An exchange whose agreement is extended to end in ten days."""
    ex = make_exchange(tmp_path / "ex", desks, extend=False)
    until = (datetime.now(UTC).astimezone(load_config(Home(ex.home)).zone).date()
             + timedelta(days=10))
    exchanged("policy", "extend", "--home", str(ex.home), AGREEMENT, "--until",
              until.isoformat(), "--reference", "EXAMPLE ONLY", "--example")
    ex.start()
    yield ex
    if ex.alive():
        ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")


def wait_for(exchange: Exchange, kind: str, timeout: float = 20) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = exchange.ledger("--kind", kind)
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"no {kind} entry")


def test_reminders_reach_the_parties_once(ending: Exchange, desks: dict[str, AgencyDesk],
                                          work: Path) -> None:
    renewal = wait_for(ending, "reminder.renewal")
    assert len(renewal) == 1 and set(renewal[0]["data"]["delivered_to"]) == {"kemensos", "bkn"}  # type: ignore[index]
    label = _half_before(date.today())[0]  # type: ignore[index]
    minutes = [e for e in wait_for(ending, "reminder.minutes")
               if label in str(e["data"]["key"])]  # type: ignore[index]
    assert minutes
    kemensos = Agency(desks["kemensos"], ending)
    names = kemensos.desk.listing(HOST, ending.port, "/outbox/notices")
    notice_name = next(n for n in names if n.startswith("notice-renewal-"))
    local = kemensos.desk.download(HOST, ending.port, f"/outbox/notices/{notice_name}",
                                   work / notice_name)
    opened = kemensos.desk.open(local)
    assert opened.signer == ending.fingerprint
    body = json.loads(opened.data)
    assert body["kind"] == "renewal" and body["clause"] == "Pasal 6 ayat (2)"
    # a restart does not raise them again
    ending.restart()
    time.sleep(2)
    assert len(ending.ledger("--kind", "reminder.renewal")) == 1


def test_retention_removes_what_may_not_be_kept(exchange: Exchange, kemensos: Agency,
                                                bkn: Agency, work: Path) -> None:
    register = synth.SyntheticRegister(200, seed=3)
    reg = work / "r.csv"
    synth.write_register_csv(str(reg), register)
    bkn.submit("asn-register", bkn.seal(reg, "ret-reg.csv.gpg"))
    bkn.outcome("asn-register", "ret-reg.result.csv.gpg")
    sealed = kemensos.seal(write_csv(work / "k.csv", f"nik\n{register.row(1).nik}\n"),
                           "ret-kpm.csv.gpg")
    kemensos.submit("kpm-verification", sealed)
    kemensos.outcome("kpm-verification", "ret-kpm.result.csv.gpg")
    uid = exchange.ledger("--batch", "ret-kpm", "--kind", "batch.received")[0]["data"]["uid"]  # type: ignore[index]
    batch_dir = exchange.home / "spool" / "batches" / str(uid)
    outbox = exchange.home / "drop" / "kemensos" / "outbox" / "kpm-verification"
    assert (batch_dir / "upload").exists() and (outbox / "ret-kpm.result.csv.gpg").exists()
    exchange.stop()
    try:
        home = Home(exchange.home)
        config = load_config(home)
        policy = load_policies(home.policies)
        ledger = open_ledger(home)
        now = datetime.now(UTC)
        assert not [p for p in run_retention(home, config, ledger, policy, now)
                    if p.artefact in ("encrypted-uploads", "outcomes")]
        assert (batch_dir / "upload").exists()
        # 31 days on: the shipped policy keeps outcomes 30 days, uploads 90
        purges = run_retention(home, config, ledger, policy, now + timedelta(days=31))
        assert {p.artefact for p in purges} >= {"outcomes"}
        assert not (outbox / "ret-kpm.result.csv.gpg").exists()
        assert (batch_dir / "upload").exists()
        purges = run_retention(home, config, ledger, policy, now + timedelta(days=91))
        assert "encrypted-uploads" in {p.artefact for p in purges}
        assert not (batch_dir / "upload").exists()
        ledger.close()
        assert exchange.ledger("--kind", "retention.checked")
        entries = exchange.ledger("--kind", "retention.purged")
        assert {e["data"]["artefact"] for e in entries} >= {"outcomes", "encrypted-uploads"}  # type: ignore[index]
        assert all(e["data"]["files"] >= 1 for e in entries)  # type: ignore[index]
    finally:
        exchange.start()


def test_everything_goes_after_the_agreement_ends(exchange: Exchange) -> None:
    home = Home(exchange.home)
    config = load_config(home)
    exchange.stop()
    try:
        ledger = open_ledger(home)
        policy = load_policies(home.policies)
        end = policy.agreements[0].last_day
        later = datetime.combine(end + timedelta(days=40), datetime.min.time(), tzinfo=UTC)
        # a keyed NIP its bounded comparisons counted
        ledger.write("INSERT INTO comparisons (agency, flow, nip_key, day, count) "
                     "VALUES ('kemensos', 'jabfung-integration', 'ab', '2026-01-05', 1)")
        purges = run_retention(home, config, ledger, policy, later)
        ended = [p for p in purges if p.artefact == "agreement-ended"]
        assert ended and ended[0].rows == 1
        assert not ledger.connection().execute("SELECT 1 FROM comparisons").fetchall()
        assert not list((exchange.home / "spool" / "batches").iterdir())
        assert not list((exchange.home / "reference" / "asn-register").glob("*.db"))
        assert ledger.verify().ok
        ledger.close()
    finally:
        exchange.start()
