"""Entries an agency or a stranger cannot multiply: a session is one entry (and survives a
crash in open_sessions), failed logins within a budget, keyed hashes of untrusted text."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exchanged.home.keyed import keyed_hash, text_key
from exchanged.ledger import Ledger, Query
from exchanged.ledger.failures import BURST, FailedLogins
from exchanged.ledger.sessions import MAX_LISTED, SCHEMA, SessionBook

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "ledger.db", extra_schema=SCHEMA)
    led.create(exchange_name="test")
    return led


def kinds(ledger: Ledger) -> list[str]:
    return [str(r[0]) for r in ledger.connection().execute("SELECT kind FROM ledger ORDER BY seq")]


def test_a_session_is_one_entry_however_many_downloads(ledger: Ledger) -> None:
    book = SessionBook(ledger)
    sid = book.open("kemensos", "192.0.2.1:5000", NOW)
    for _ in range(400):
        book.event(sid, "kpm-verification", "b1", "ab" * 32, "downloaded", 100)
    book.event(sid, "kpm-verification", "b1", "ab" * 32, "removed", 100)
    book.close(sid, "client", NOW)
    assert kinds(ledger) == ["ledger.created", "session.ended"]
    data = ledger.last_of("session.ended").data  # type: ignore[union-attr]
    assert (data["downloads"], data["downloaded_bytes"], data["removals"]) == (400, 40000, 1)
    assert data["outcomes"] == [{"flow": "kpm-verification", "batch": "b1", "name_hmac": "ab" * 32,
                                 "downloads": 400, "removed": True}]
    assert not ledger.connection().execute("SELECT * FROM open_sessions").fetchall()


def test_a_session_touching_many_outcomes_writes_bounded_entries(ledger: Ledger) -> None:
    book = SessionBook(ledger)
    sid = book.open("kemensos", "192.0.2.1:5000", NOW)
    for i in range(MAX_LISTED * 2 + 5):
        book.event(sid, "kpm-verification", f"b{i}", f"{i:064x}", "downloaded", 1)
    book.close(sid, "client", NOW)
    assert kinds(ledger)[1:] == ["session.activity", "session.activity", "session.ended"]
    assert len(ledger.last_of("session.ended").data["outcomes"]) == 5  # type: ignore[union-attr]


def test_a_session_left_open_by_a_crash_is_recorded_at_the_next_start(ledger: Ledger) -> None:
    sid = SessionBook(ledger).open("bkn", "192.0.2.9:7000", NOW)
    SessionBook(ledger).event(sid, "kpm-status", "x", "cd" * 32, "downloaded", 5)  # unknown: no-op
    book = SessionBook(ledger)
    crashed = book.open("kemensos", "192.0.2.1:5000", NOW)
    book.event(crashed, "kpm-verification", "b1", "ab" * 32, "downloaded", 7)
    # the daemon dies: a new one finds both rows
    assert SessionBook(ledger).recover(NOW) == 2
    ended = [e.data for e in ledger.query(Query(kind="session.ended"))]
    assert [d["ended_by"] for d in ended] == ["cut_off", "cut_off"]
    assert sorted(d["downloads"] for d in ended) == [0, 1]
    assert SessionBook(ledger).recover(NOW) == 0


def test_failed_logins_are_aggregated_beyond_their_burst(ledger: Ledger) -> None:
    clock = Clock()
    failures = FailedLogins(ledger, clock)
    for i in range(10):
        failures.failed("192.0.2.1", f"192.0.2.1:{4000 + i}", 1, None, "ef" * 32)
    assert kinds(ledger).count("login.failed") == BURST
    clock.now += 61
    failures.flush()
    entries = [e.data for e in ledger.query(Query(kind="login.failed"))]
    assert sum(d["connections"] for d in entries) == 10
    assert entries[-1]["aggregated"] and entries[-1]["user_hmacs"] == ["ef" * 32]


def test_a_botnet_cannot_write_more_than_the_budget(ledger: Ledger) -> None:
    clock = Clock()
    failures = FailedLogins(ledger, clock)
    for i in range(2000):
        failures.failed(f"10.0.{i // 250}.{i % 250}", "x:1", 1, "kemensos", None)
    assert kinds(ledger).count("login.failed") == 60
    failures.flush(everything=True)
    assert kinds(ledger).count("login.failed") == 61
    last = ledger.last_of("login.failed").data  # type: ignore[union-attr]
    assert last["connections"] == 1940 and last["addresses"] == 1940


def test_the_keyed_hash_key_is_made_on_first_use_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "ledger-hmac.key"
    key = text_key(path)
    assert len(key) == 32 and os.stat(path).st_mode & 0o777 == 0o600
    assert text_key(path) == key
    assert keyed_hash(key, "3171014101900001") != keyed_hash(text_key(tmp_path / "k2"),
                                                              "3171014101900001")
