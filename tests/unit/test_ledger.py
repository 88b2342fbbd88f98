"""The ledger: append-only, chained, verified; refuses personal data."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exchanged.errors import LedgerError
from exchanged.ledger import Ledger, Query


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "ledger.db", clock=FakeClock())
    led.create(exchange_name="test")
    for i in range(10):
        led.append("batch.received", agency="kemensos", flow="kpm-verification",
                   batch=f"b{i}", rows=i)
    return led


def test_fresh_ledger_verifies(ledger: Ledger) -> None:
    report = ledger.verify()
    assert report.ok and report.entries == 11 and report.head_seq == 11


def test_update_and_delete_are_refused(ledger: Ledger) -> None:
    conn = sqlite3.connect(ledger.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE ledger SET kind = 'x.y' WHERE seq = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM ledger WHERE seq = 3")


def _tamper(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER ledger_no_update")
    conn.execute("DROP TRIGGER ledger_no_delete")
    for sql in statements:
        conn.execute(sql)
    conn.execute("CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger "
                 "BEGIN SELECT RAISE(ABORT, 'append-only'); END")
    conn.execute("CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger "
                 "BEGIN SELECT RAISE(ABORT, 'append-only'); END")
    conn.commit()
    conn.close()


def test_changed_row_is_detected(ledger: Ledger) -> None:
    _tamper(ledger.path, "UPDATE ledger SET data = '{\"rows\":99}' WHERE seq = 5")
    report = Ledger(ledger.path).verify()
    assert not report.ok and "entry 5 was altered" in (report.problem or "")


def test_deleted_row_is_detected(ledger: Ledger) -> None:
    _tamper(ledger.path, "DELETE FROM ledger WHERE seq = 4")
    report = Ledger(ledger.path).verify()
    assert not report.ok and "entry 4 is missing" in (report.problem or "")


def test_inserted_row_is_detected(ledger: Ledger) -> None:
    shift = [f"UPDATE ledger SET seq = seq + 1 WHERE seq = {k}" for k in range(11, 5, -1)]
    _tamper(
        ledger.path,
        *shift,
        "INSERT INTO ledger SELECT 6, ts, kind, agency, flow, 'forged', actor, data, prev, leaf, "
        "hash "
        "FROM ledger WHERE seq = 7",
    )
    report = Ledger(ledger.path).verify()
    assert not report.ok and "entry 6" in (report.problem or "")


def test_dropped_triggers_are_detected(ledger: Ledger) -> None:
    conn = sqlite3.connect(ledger.path)
    conn.execute("DROP TRIGGER ledger_no_delete")
    conn.commit()
    report = Ledger(ledger.path).verify()
    assert not report.ok and "triggers" in (report.problem or "")
    with pytest.raises(LedgerError, match="triggers are missing"):
        Ledger(ledger.path).open_checked()


def test_truncated_file_is_detected(ledger: Ledger, tmp_path: Path) -> None:
    ledger.close()
    conn = sqlite3.connect(ledger.path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = ledger.path.read_bytes()
    broken = tmp_path / "broken.db"
    broken.write_bytes(data[: len(data) // 2])
    report = Ledger(broken).verify()
    assert not report.ok


@pytest.mark.parametrize(
    "value",
    ["3171010101900001", "NIK 3171010101900001 here", "199001012015031001", 3171010101900001,
     ["ok", {"nested": "x199001012015031001"}]],
)
def test_personal_numbers_are_refused(ledger: Ledger, value: object) -> None:
    with pytest.raises(LedgerError, match="personal data"):
        ledger.append("batch.received", note=value)
    assert ledger.verify().ok


def test_digests_and_other_numbers_are_accepted(ledger: Ledger) -> None:
    ledger.append("batch.processed", rows=1234567, outcome_sha256="1234567890123456" * 4,
                  seventeen="12345678901234567")
    assert ledger.verify().ok


def test_floats_are_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="float"):
        ledger.append("batch.processed", ratio=0.5)


def test_query_filters(ledger: Ledger) -> None:
    entries = list(ledger.query(Query(batch="b3")))
    assert [e.batch for e in entries] == ["b3"]
    assert len(list(ledger.query(Query(kind="batch.")))) == 10
    assert len(list(ledger.query(Query(kind="ledger.created")))) == 1
    window = Query(since="2026-01-01T00:00:05", until="2026-01-01T00:00:08")
    assert len(list(ledger.query(window))) == 3


def test_rolled_back_transaction_leaves_no_entry(ledger: Ledger) -> None:
    head = ledger.head()
    with pytest.raises(RuntimeError):
        with ledger.transaction() as txn:
            txn.append("batch.opened", batch="x")
            raise RuntimeError("stage failed")
    assert ledger.head() == head
    assert ledger.verify().ok


def test_a_trigger_that_does_nothing_is_detected(ledger: Ledger) -> None:
    conn = sqlite3.connect(ledger.path)
    conn.execute("DROP TRIGGER ledger_no_delete")
    conn.execute("CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT 1; END")
    conn.commit()
    assert not Ledger(ledger.path).verify().ok
    with pytest.raises(LedgerError, match="triggers are missing"):
        Ledger(ledger.path).open_checked()


def test_the_policy_archive_is_append_only_and_checked_against_its_hash(ledger: Ledger) -> None:
    from exchanged.errors import CheckFailed
    from exchanged.home.files import files_sha256
    from exchanged.ledger.archive import archive_policy_set, archived_policy_set

    files = {"a.yaml": b"format: exchanged/agreement-v1\n"}
    with ledger.transaction() as txn:
        sha = archive_policy_set(txn, files, "2026-01-01T00:00:00Z")
    assert sha == files_sha256(files)
    assert archived_policy_set(ledger.connection(), sha) == files
    conn = sqlite3.connect(ledger.path)
    for statement in ("UPDATE policy_sets SET files = '{}'", "DELETE FROM policy_sets"):
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(statement)
    # an operator who drops the trigger, swaps the text and puts the trigger back
    trigger = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'policy_sets_no_update'"
                           ).fetchone()[0]
    conn.execute("DROP TRIGGER policy_sets_no_update")
    conn.execute("UPDATE policy_sets SET files = ?", ('{"a.yaml": "format: forged\\n"}',))
    conn.execute(trigger)
    conn.commit()
    conn.close()
    ledger.close()
    with pytest.raises(CheckFailed, match="altered"):
        archived_policy_set(ledger.connection(), sha)
    report = ledger.verify()
    assert not report.ok and "policy sets were altered" in (report.problem or "")


def test_the_policy_set_hash_is_the_archive_hash() -> None:
    from exchanged.ledger.archive import files_sha256
    from exchanged.policy.loader import policy_set_sha256

    files = {"b.yaml": b"y", "a.yaml": b"x"}
    assert policy_set_sha256(files) == files_sha256(files)
