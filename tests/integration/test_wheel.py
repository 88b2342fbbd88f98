"""A wheel built from the project holds the product and nothing else.

It is built from the files git tracks, copied to a fresh folder (a stale ``build/``
of the checkout could otherwise smuggle in a module that no longer exists), with
pip as an administrator would build it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tracked_files() -> list[str]:
    r = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if r.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [name for name in r.stdout.decode().split("\0") if name]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("source")
    for name in tracked_files():
        src, dst = ROOT / name, source / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(src.readlink())
        elif src.is_file():
            shutil.copy2(src, dst)
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                        str(source)], capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    (built,) = out.glob("exchanged-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_no_test_support_benchmark_or_test(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    code = [n for n in names if n.endswith(".py")]
    assert any(n == "exchanged/batch/pipeline.py" for n in code)
    stray = [n for n in names
             if n.startswith(("exchanged/testing/", "benchmarks/", "tests/", "scripts/"))]
    assert not stray, stray


def test_the_wheel_holds_every_product_module_and_the_shipped_policies(
        wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    product = {str(p.relative_to(ROOT)) for p in (ROOT / "exchanged").rglob("*.py")
               if "testing" not in p.relative_to(ROOT / "exchanged").parts}
    assert product - names == set()
    assert "exchanged/data/policies/pks-kemensos-bkn-2023.yaml" in names
    assert "exchanged/py.typed" in names
    assert "exchanged/reports/templates/letterhead.html.j2" in names
