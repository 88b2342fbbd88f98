"""The command line as users meet it: one sentence on errors, the contract's exit codes."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from exchanged.cli import build_parser
from tests.integration.support import AGREEMENT, exchanged

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    h = tmp_path_factory.mktemp("cli") / "home"
    exchanged("init", "--home", str(h))
    return h


def one_sentence(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("exchanged: ")
    return lines[0]


def test_no_command_is_a_usage_error() -> None:
    r = exchanged(check=False)
    assert r.returncode == 2
    one_sentence(r.stderr)


def test_unknown_option_is_a_usage_error() -> None:
    r = exchanged("ledger", "verify", "--nope", check=False)
    assert r.returncode == 2
    one_sentence(r.stderr)


def test_init_refuses_an_existing_home(home: Path) -> None:
    r = exchanged("init", "--home", str(home), check=False)
    assert r.returncode == 2
    assert "refusing to overwrite" in one_sentence(r.stderr)


def test_init_files_and_folders_are_private(home: Path) -> None:
    for path in [home, *home.rglob("*")]:
        if path.is_symlink() or path.name.startswith("S.gpg-agent"):
            continue
        mode = path.stat().st_mode & 0o777
        assert mode in (0o700, 0o600), f"{path} is {oct(mode)}"


def test_commands_on_a_missing_home(tmp_path: Path) -> None:
    for args in (["ledger", "verify"], ["policy", "check"], ["run"], ["ledger", "query"]):
        r = exchanged(*args, "--home", str(tmp_path / "none"), check=False)
        assert r.returncode == 2, args
        one_sentence(r.stderr)


def test_home_from_the_environment(home: Path) -> None:
    import os

    r = exchanged("ledger", "verify", env={**os.environ, "EXCHANGED_HOME": str(home)})
    assert "ledger intact" in r.stdout


def test_policy_check_says_what_is_in_force(home: Path) -> None:
    r = exchanged("policy", "check", "--home", str(home), "--date", "2025-06-01")
    assert f"{AGREEMENT}: in force until 2026-04-03" in r.stdout
    r = exchanged("policy", "check", "--home", str(home), "--date", "2026-11-26")
    assert f"{AGREEMENT}: expired: it was valid from 2023-04-03 to 2026-04-03" in r.stdout


def test_policy_check_fails_on_an_invalid_policy(tmp_path: Path, home: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("S.*"))
    (copy / "policies" / "broken.yaml").write_text("format: exchanged/agreement-v1\nagreement: [\n")
    r = exchanged("policy", "check", "--home", str(copy), check=False)
    assert r.returncode == 1
    assert "broken.yaml:3" in one_sentence(r.stderr)
    r = exchanged("run", "--home", str(copy), check=False)
    assert r.returncode == 2
    assert "not starting" in one_sentence(r.stderr)


def test_extend_must_extend(home: Path) -> None:
    r = exchanged("policy", "extend", "--home", str(home), AGREEMENT, "--until", "2025-01-01",
                  "--reference", "x", check=False)
    assert r.returncode == 2
    assert "does not extend" in one_sentence(r.stderr)
    r = exchanged("policy", "extend", "--home", str(home), "nope", "--until", "2030-01-01",
                  "--reference", "x", check=False)
    assert r.returncode == 2 and "no agreement nope" in one_sentence(r.stderr)


def test_extend_writes_an_addendum_and_a_ledger_entry(tmp_path: Path, home: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("S.*"))
    original = (copy / "policies" / f"{AGREEMENT}.yaml").read_bytes()
    exchanged("policy", "extend", "--home", str(copy), AGREEMENT, "--until", "2027-04-03",
              "--reference", "Adendum (EXAMPLE)")
    assert (copy / "policies" / f"{AGREEMENT}.yaml").read_bytes() == original
    addendum = copy / "policies" / f"{AGREEMENT}.addendum-001.yaml"
    assert "extend_until: '2027-04-03'" in addendum.read_text()
    out = exchanged("ledger", "query", "--home", str(copy), "--kind", "policy.extended",
                    "--format", "json").stdout
    entry = json.loads(out)
    assert entry["data"]["until"] == "2027-04-03" and entry["data"]["addendum"] == 1
    r = exchanged("policy", "check", "--home", str(copy), "--date", "2026-11-26")
    assert "in force until 2027-04-03" in r.stdout


def test_ledger_verify_fails_on_tampering(tmp_path: Path, home: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("S.*"))
    conn = sqlite3.connect(copy / "ledger.db")
    conn.execute("DROP TRIGGER ledger_no_update")
    conn.execute("UPDATE ledger SET actor = 'someone' WHERE seq = 2")
    conn.commit()
    conn.close()
    r = exchanged("ledger", "verify", "--home", str(copy), check=False)
    assert r.returncode == 1
    assert "NOT intact" in one_sentence(r.stderr)


def test_ledger_query_formats(home: Path) -> None:
    table = exchanged("ledger", "query", "--home", str(home)).stdout
    assert "exchange.initialised" in table
    lines = exchanged("ledger", "query", "--home", str(home), "--format", "json").stdout
    entries = [json.loads(line) for line in lines.splitlines()]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    csv_out = exchanged("ledger", "query", "--home", str(home), "--format", "csv",
                        "--kind", "ledger.created").stdout
    assert csv_out.splitlines()[0].startswith('"seq","ts","kind"')
    assert len(csv_out.splitlines()) == 2
    none = exchanged("ledger", "query", "--home", str(home), "--since", "2999-01-01",
                     "--format", "json").stdout
    assert none == ""
    r = exchanged("ledger", "query", "--home", str(home), "--since", "yesterday", check=False)
    assert r.returncode == 2


def test_every_command_is_documented() -> None:
    readme = README.read_text(encoding="utf-8")
    parser = build_parser()
    commands: list[str] = []

    def walk(p: object, prefix: str) -> None:
        for action in getattr(p, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, sub in choices.items():
                    if any(isinstance(getattr(a, "choices", None), dict) for a in sub._actions):
                        walk(sub, f"{prefix} {name}")
                    else:
                        commands.append(f"{prefix} {name}".strip())

    walk(parser, "exchanged")
    assert len(commands) >= 9
    for command in commands:
        assert re.search(re.escape(command) + r"\b", readme), f"{command} is not in README.md"


def test_ledger_query_refuses_an_unknown_kind(home: Path) -> None:
    r = exchanged("ledger", "query", "--home", str(home), "--kind", "nope", check=False)
    assert r.returncode == 2 and "not a ledger entry kind" in one_sentence(r.stderr)
    assert exchanged("ledger", "query", "--home", str(home), "--kind", "ledger.").stdout


def test_generate_errors_are_one_sentence(tmp_path: Path) -> None:
    r = exchanged("generate", "kpm", "--output", str(tmp_path / "k.csv"), "--columns",
                  "ref,alamat", check=False)
    assert r.returncode == 2
    one_sentence(r.stderr)
    r = exchanged("generate", "register", "--output", str(tmp_path / "no" / "r.csv"), check=False)
    assert r.returncode == 2 and "cannot write" in one_sentence(r.stderr)
    out = exchanged("generate", "register", "--rows", "25", "--output", str(tmp_path / "r.csv"))
    assert "wrote 25 rows" in out.stdout


def test_init_prints_the_known_hosts_line(tmp_path: Path) -> None:
    out = exchanged("init", "--home", str(tmp_path / "h"), "--listen", "0.0.0.0:2222").stdout
    line = next(x for x in out.splitlines() if "known_hosts line" in x)
    assert "[EXCHANGE-HOST-NAME]:2222 ssh-ed25519 AAAA" in line


def test_extend_refuses_a_reference_with_a_nik_and_writes_nothing(tmp_path: Path,
                                                                 home: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("S.*"))
    before = sorted(p.name for p in (copy / "policies").iterdir())
    r = exchanged("policy", "extend", "--home", str(copy), AGREEMENT, "--until", "2030-01-01",
                  "--reference", "letter about 3171014101900001", check=False)
    assert r.returncode == 2 and "personal data" in one_sentence(r.stderr)
    assert sorted(p.name for p in (copy / "policies").iterdir()) == before
