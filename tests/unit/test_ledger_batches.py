"""One row per upload (`ledger batches`), and the names an option may give."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exchanged.errors import UsageError
from exchanged.ledger import Ledger, Query
from exchanged.ledger.batches import BatchFilter, batches, resolve_batch
from exchanged.policy.known import KnownNames

FIRST, REPLAY, OTHER = "20260101T000001Z-0000000a", "20260101T000009Z-0000000b", \
    "20260201T000000Z-0000000c"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """kpm-1 answered and downloaded; kpm-1 sent again (a replay, refused, not downloaded);
    bkn's upload a month later, still pending."""
    clock = FakeClock()
    led = Ledger(tmp_path / "ledger.db", clock=clock)
    led.create(exchange_name="test")
    ids = {"agency": "kemensos", "flow": "kpm-verification", "batch": "kpm-1"}
    led.append("batch.received", **ids, actor="kemensos", uid=FIRST)
    led.append("batch.processed", **ids, uid=FIRST, rows=3,
               counts={"ASN": 1, "TIDAK_DITEMUKAN": 1, "TIDAK_VALID": 1})
    led.append("batch.answered", **ids, uid=FIRST, outcome="result",
               outcome_name="kpm-1.result.csv.gpg")
    led.append("batch.received", **ids, actor="kemensos", uid=REPLAY)
    led.append("batch.rejected", **ids, uid=REPLAY, codes=["REPLAY"])
    led.append("batch.answered", **ids, uid=REPLAY, outcome="rejected",
               outcome_name="kpm-1.replay-1.rejected.json.gpg")
    led.append("outcome.downloaded", **ids, actor="kemensos", bytes=10,
               name_sha256=sha("kpm-1.result.csv.gpg"))
    clock.now = datetime(2026, 2, 1, tzinfo=UTC)
    led.append("batch.received", agency="bkn", flow="asn-register", batch="asn-1",
               actor="bkn", uid=OTHER)
    return led


def test_one_row_per_upload_with_what_became_of_it(ledger: Ledger) -> None:
    first, replay, other = batches(ledger)
    assert (first.batch, first.uid, first.outcome, first.rows) == ("kpm-1", FIRST, "result", 3)
    assert first.summary() == "ASN=1 TIDAK_DITEMUKAN=1 TIDAK_VALID=1"
    assert first.downloaded is not None and first.downloaded > first.received
    assert (replay.uid, replay.outcome, replay.codes, replay.rows) == (REPLAY, "rejected",
                                                                       ("REPLAY",), None)
    assert replay.downloaded is None  # the download was of the first outcome, not this one
    assert (other.agency, other.outcome, other.answered) == ("bkn", "pending", None)


def test_filters(ledger: Ledger) -> None:
    def uids(**kw: str) -> list[str]:
        return [r.uid for r in batches(ledger, BatchFilter(**kw))]

    assert uids(agency="bkn") == [OTHER]
    assert uids(flow="kpm-verification", outcome="rejected") == [REPLAY]
    assert uids(outcome="pending") == [OTHER]
    assert uids(since="2026-01-15T00:00:00.000000Z") == [OTHER]
    assert uids(until="2026-01-15T00:00:00.000000Z") == [FIRST, REPLAY]
    assert uids(batch="kpm-1") == [FIRST, REPLAY]
    assert uids(batch=REPLAY) == [REPLAY]


def test_the_uid_of_an_upload_selects_its_entries_only(ledger: Ledger) -> None:
    assert resolve_batch(ledger, REPLAY) == ("kpm-1", REPLAY)
    assert resolve_batch(ledger, "kpm-1") == ("kpm-1", None)
    assert resolve_batch(ledger, "20991231T000000Z-ffffffff") == (
        "20991231T000000Z-ffffffff", None)
    batch, uid = resolve_batch(ledger, FIRST)
    kinds = [e.kind for e in ledger.query(Query(batch=batch, uid=uid))]
    assert kinds == ["batch.received", "batch.processed", "batch.answered",
                     "outcome.downloaded"]


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    known = KnownNames(("bkn", "kemensos"), ("asn-register", "kpm-verification"))
    known.check(agency="bkn", flow="asn-register")
    with pytest.raises(UsageError, match=r"no agency 'nosuch' \(known: bkn, kemensos\)"):
        known.check(agency="nosuch")
    with pytest.raises(UsageError, match=r"no flow 'x' \(known: asn-register, kpm-"):
        known.check(flow="x")
    # names the ledger still carries (an agreement since removed) are known too
    known.check(agency="old", more=lambda what: ("old",) if what == "agency" else ())
    with pytest.raises(UsageError, match=r"known: bkn, kemensos, old\)"):
        known.check(agency="nosuch", more=lambda what: ("old",))
