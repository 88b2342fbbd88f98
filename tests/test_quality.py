"""The code meets its own bar: mypy --strict and ruff, as configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_strict() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "exchanged", "benchmarks"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:]


def test_ruff() -> None:
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "exchanged", "tests", "benchmarks"],
                       cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
