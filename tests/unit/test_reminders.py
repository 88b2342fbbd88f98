"""Which reminders are due when (the clock is the test's)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from exchanged.admin.reminders import due_notices
from exchanged.policy import load_policies

SHIPPED = Path(__file__).resolve().parents[2] / "policies"


def policy(tmp_path: Path):  # type: ignore[no-untyped-def]
    d = tmp_path / "p"
    d.mkdir()
    shutil.copy(SHIPPED / "pks-kemensos-bkn-2023.yaml", d)
    return load_policies(d)


def kinds(notices: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(n.kind for n in notices)


def test_renewal_notice_is_due_a_month_before_the_end(tmp_path: Path) -> None:
    p = policy(tmp_path)
    before = due_notices(p, date(2026, 3, 3), set(), [])
    assert "renewal" not in kinds(before)
    due = due_notices(p, date(2026, 3, 4), set(), [])
    renewal = next(n for n in due if n.kind == "renewal")
    assert renewal.due == date(2026, 3, 4) and renewal.clause == "Pasal 6 ayat (2)"
    assert set(renewal.parties) == {"kemensos", "bkn"}
    assert "2026-04-03" in renewal.message and "paling lambat" in renewal.pesan
    assert "renewal" not in kinds(due_notices(p, date(2026, 4, 4), set(), []))


def test_minutes_and_evaluation_after_each_half_year(tmp_path: Path) -> None:
    p = policy(tmp_path)
    notices = due_notices(p, date(2025, 7, 1), set(), [])
    keys = {n.key for n in notices}
    assert {"minutes:pks-kemensos-bkn-2023:2025-H1",
            "evaluation:pks-kemensos-bkn-2023:2025-H1"} <= keys
    done = {("berita-acara", "pks-kemensos-bkn-2023", "2025-H1"),
            ("evaluasi", "pks-kemensos-bkn-2023", "2025-H1")}
    assert not {"minutes", "evaluation"} & set(kinds(due_notices(p, date(2025, 7, 1), done, [])))
    # a half-year wholly after the agreement ended asks for nothing
    assert not due_notices(p, date(2027, 7, 1), set(), [])


def test_keys_about_to_expire(tmp_path: Path) -> None:
    p = policy(tmp_path)
    soon = [("kemensos", "ABC", date(2025, 8, 1)), (None, "DEF", date(2025, 9, 1))]
    found = {n.key for n in due_notices(p, date(2025, 7, 15), set(), soon)}
    assert "key_expiry:ABC:2025-08-01" in found  # an agency key: 30 days ahead
    assert "key_expiry:DEF:2025-09-01" in found  # the exchange's: 60 days ahead
    later = {n.key for n in due_notices(p, date(2025, 6, 1), set(), soon)}
    assert not any(k.startswith("key_expiry") for k in later)
