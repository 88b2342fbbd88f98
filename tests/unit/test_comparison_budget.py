"""The bound on how often an agency has one NIP compared (max_comparisons_per_nip), as the
pipeline keeps it beside the ledger: keyed, counted with the answer's record, and strict
when two batches race."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from exchanged.batch.state import SCHEMA, ComparisonBudget, State
from exchanged.errors import RetryLater
from exchanged.flows import Comparisons
from exchanged.flows.model import ComparisonBound
from exchanged.ledger import Ledger
from exchanged.matching.register import RegisterStore
from exchanged.matching.register.keys import IdentifierCipher

A = "199001012015031001"
B = "198807172022211997"
SECRET = b"k" * 32
BOUND = ComparisonBound(count=3, days=30, status="TIDAK_DIPERIKSA", clause="Pasal 9 ayat (2)")
DAY = date(2026, 11, 26)


@pytest.fixture
def state(tmp_path: Path) -> State:
    ledger = Ledger(tmp_path / "ledger.db", extra_schema=SCHEMA)
    ledger.create(exchange_name="test")
    return State(ledger)


def budget(state: State, day: date = DAY, agency: str = "kemensos") -> ComparisonBudget:
    return ComparisonBudget(state, IdentifierCipher(SECRET), agency, "jabfung-integration",
                            BOUND, day)


def answered(state: State, taken: Comparisons, agency: str = "kemensos") -> dict[str, int]:
    """What the pipeline does when it records an answer: count, in the entry's transaction."""
    with state.ledger.transaction() as txn:
        counts = state.count_comparisons(txn, agency, "jabfung-integration", taken)
        txn.append("batch.processed", agency=agency, flow="jabfung-integration", batch="b",
                   comparisons=counts)
    return counts


def test_three_comparisons_in_thirty_days_then_none(state: State, tmp_path: Path) -> None:
    for n in range(3):
        b = budget(state, DAY + timedelta(days=n))
        asked = [A, B] if n == 0 else [A]
        assert b.take(asked) == [True] * len(asked)
        counts = answered(state, b.taken())
        assert counts == {"compared": len(asked), "not_compared": 0, "bound": 3, "days": 30}
    spent = budget(state, DAY + timedelta(days=3))
    assert spent.take([A, B]) == [False, True]
    assert answered(state, spent.taken())["not_compared"] == 1
    # another agency has a budget of its own
    assert budget(state, DAY, agency="bkn").take([A]) == [True]
    # 30 days after the first: the first day's comparison no longer counts, and is forgotten
    later = budget(state, DAY + timedelta(days=30))
    assert later.take([A]) == [True]
    answered(state, later.taken())
    days = [d for (d,) in state.ledger.connection().execute(
        "SELECT day FROM comparisons WHERE nip_key = (SELECT nip_key FROM comparisons "
        "GROUP BY nip_key ORDER BY SUM(count) DESC LIMIT 1) ORDER BY day")]
    assert days == ["2026-11-27", "2026-11-28", "2026-12-26"]
    # ledger.db holds neither NIP, nor the keyed value a snapshot holds of it
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.db*"))
    snapshot_key = RegisterStore(tmp_path / "ref", SECRET).cipher.values("nip", [A]).tobytes()
    assert A.encode() not in raw and B.encode() not in raw
    assert snapshot_key.hex().encode() not in raw and snapshot_key not in raw


def test_a_batch_that_is_not_answered_counts_nothing(state: State) -> None:
    b = budget(state)
    assert b.take([A]) == [True]
    # refused, or the daemon stopped before the answer was recorded: nothing is counted
    again = budget(state)
    assert again.take([A]) == [True] and again.taken().keys == b.taken().keys


def test_two_batches_racing_for_the_last_comparison(state: State) -> None:
    for n in range(2):
        b = budget(state, DAY + timedelta(days=n))
        b.take([A])
        answered(state, b.taken())
    first, second = budget(state), budget(state)
    assert first.take([A]) == [True] and second.take([A]) == [True]  # both asked in time
    answered(state, first.taken())
    head = state.ledger.connection().execute("SELECT MAX(seq) FROM ledger").fetchone()[0]
    with pytest.raises(RetryLater):
        answered(state, second.taken())  # answered again later, against the count then
    assert state.ledger.connection().execute("SELECT MAX(seq) FROM ledger").fetchone()[0] == head
    assert budget(state).take([A]) == [False]
