"""docs/security.md maps every threat to a test: each test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_named_in_the_threat_model_exists() -> None:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", text))
    assert len(named) > 50
    defined = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        defined |= set(re.findall(r"^def (test_[a-z0-9_]+)\(", path.read_text(encoding="utf-8"),
                                  re.MULTILINE))
    assert not named - defined, sorted(named - defined)


def test_every_threat_row_names_a_test() -> None:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    threats = text.split("## Threats, defences, tests", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in threats.splitlines()
            if line.startswith("| ") and not line.startswith(("| threat", "| ---"))]
    assert len(rows) > 30
    # the last column of each row: the tests that hold the defence
    assert not [r for r in rows if "`test_" not in r.rsplit("|", 2)[-2]], "a threat without a test"
