"""A wheel built from the project holds the product and nothing else.

It is built from the files git tracks, copied to a fresh folder (a stale ``build/``
of the checkout could otherwise smuggle in a module that no longer exists), with
pip as an administrator would build it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from exchanged import __version__
from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk
from tests.integration.support import HOST, Exchange

ROOT = Path(__file__).resolve().parents[2]


def tracked_files() -> list[str]:
    r = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if r.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [name for name in r.stdout.decode().split("\0") if name]


@pytest.fixture(scope="module")
def wheel_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
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
    return built


@pytest.fixture(scope="module")
def wheel(wheel_file: Path) -> zipfile.ZipFile:
    return zipfile.ZipFile(wheel_file)


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
    # the licence travels with the wheel, and its metadata names it
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    text = wheel.read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert f"Version: {__version__}" in text


def test_the_version_is_one_and_the_changelog_has_it() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    r = subprocess.run([sys.executable, "-m", "exchanged", "--version"], capture_output=True,
                       text=True, check=True)
    assert r.stdout.strip() == f"exchanged {__version__}"


# Offline installation (README, "Offline installation"): the wheelhouse scripts/wheelhouse
# builds, installed with pip as an administrator of an air-gapped machine would, into fresh
# virtual environments. Slow (it fetches the locked wheels, pip's cache helps): marked so.


@pytest.fixture(scope="module")
def wheelhouse(wheel_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse")
    r = subprocess.run([str(ROOT / "scripts" / "wheelhouse"), "--project-wheel", str(wheel_file),
                        str(out)], capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def offline_venv(where: Path, wheelhouse: Path, requirements: str) -> Path:
    """A fresh virtual environment with exchanged installed from the wheelhouse alone."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
    # no pip configuration of this machine (an index, more find-links): the wheelhouse only
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    r = subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--no-index", "--find-links", str(wheelhouse), "--require-hashes",
                        "-r", str(wheelhouse / requirements)],
                       capture_output=True, text=True, timeout=900, env=env, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return where / "bin"


def run(*cmd: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd,
                       timeout=600, check=False)
    if check:
        assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    return r


@pytest.mark.slow
def test_offline_install_of_the_server_runs_the_demo(wheelhouse: Path, tmp_path: Path) -> None:
    requirements = (wheelhouse / "requirements.txt").read_text()
    assert "--hash=sha256:" in requirements and "exchanged[server]==" in requirements
    bin_ = offline_venv(tmp_path / "venv", wheelhouse, "requirements.txt")
    assert run(bin_ / "exchanged", "--version", cwd=tmp_path).stdout.strip() == \
        f"exchanged {__version__}"
    # the demo is test support, kept out of the wheel: it comes from this checkout, while
    # every exchanged module it uses, and every command it runs, is the installed one
    demo = ("import sys, exchanged; assert 'site-packages' in exchanged.__file__; "
            f"exchanged.__path__.append({str(ROOT / 'exchanged')!r}); "
            "from exchanged.testing.demo import main; "
            "sys.exit(main(['--register-rows', '1000', '--rows', '200']))")
    out = run(bin_ / "python", "-c", demo, cwd=tmp_path).stdout
    assert "200 of 200 rows match the generator's ground truth" in out, out[-2000:]
    assert "ledger intact" in out


@pytest.mark.slow
def test_the_slim_client_submits_without_arrow_or_numpy(
        wheelhouse: Path, tmp_path: Path, exchange: Exchange,
        desks: dict[str, AgencyDesk]) -> None:
    bin_ = offline_venv(tmp_path / "client", wheelhouse, "requirements-client.txt")
    for heavy in ("numpy", "pyarrow", "matplotlib", "weasyprint", "apscheduler"):
        r = run(bin_ / "python", "-c", f"import {heavy}", cwd=tmp_path, check=False)
        assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr, heavy
    assert "--flow" in run(bin_ / "exchanged", "submit", "--help", cwd=tmp_path).stdout
    assert "--output-dir" in run(bin_ / "exchanged", "fetch", "--help", cwd=tmp_path).stdout
    # a server command says what is missing, in one sentence
    r = run(bin_ / "exchanged", "run", "--home", str(exchange.home), cwd=tmp_path, check=False)
    assert r.returncode == 2 and "exchanged[server]" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # and the client does an agency's whole job against the real daemon
    register = tmp_path / "register.csv"
    synth.write_register_csv(str(register), synth.SyntheticRegister(200, seed=21))
    desk = desks["bkn"]
    answer = tmp_path / "answer.csv"
    r = run(bin_ / "exchanged", "submit", "--server", f"{HOST}:{exchange.port}",
            "--agency", "bkn", "--ssh-key", desk.ssh_key, "--gnupghome", desk.gnupg,
            "--state", tmp_path / "pins", "--quiet", "--exchange-key", exchange.public_key,
            "--flow", "asn-register", "--batch-id", "slim-client-reg", "--output", answer,
            register, cwd=tmp_path)
    assert "batch slim-client-reg answered" in r.stdout and answer.exists()
    r = run(bin_ / "exchanged", "fetch", "--server", f"{HOST}:{exchange.port}",
            "--agency", "bkn", "--ssh-key", desk.ssh_key, "--gnupghome", desk.gnupg,
            "--state", tmp_path / "pins", "--quiet", "--output-dir", tmp_path / "out",
            cwd=tmp_path)
    assert r.returncode == 0


def test_the_locks_pin_every_dependency_with_hashes() -> None:
    """scripts/lock was run after pyproject.toml's dependencies last changed."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~; \[]", r, maxsplit=1)[0].lower().replace("_", "-")
                for r in requirements}

    def pinned(lock: str) -> dict[str, str]:
        text = (ROOT / lock).read_text()
        assert text.count("==") == len(re.findall(r"^\S+==\S+ \\\n\s+--hash=sha256:", text,
                                                  re.M)), f"{lock}: a pin without a hash"
        return dict(re.findall(r"^([a-z0-9._-]+)==(\S+)", text, re.M))

    client, server = pinned("requirements-client.lock"), pinned("requirements.lock")
    base, extra = names(project["dependencies"]), names(project["optional-dependencies"]["server"])
    assert base <= set(client) and base | extra <= set(server)
    # one version of each package in the wheelhouse, and no Arrow or numpy for agencies
    assert all(server[name] == version for name, version in client.items())
    assert not {"numpy", "pyarrow"} & set(client)
