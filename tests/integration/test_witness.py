"""Witnessed checkpoints: each agency's 'exchanged fetch' checks and co-signs the ledger's
checkpoints, and an exchange that forks its ledger is caught (issue 16, part 1)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchanged.home import Home
from exchanged.ledger import Ledger
from exchanged.ledger.checkpoints import make_checkpoint
from exchanged.ledger.notes import parse_note
from exchanged.ledger.witness import note_name, proof_name, witness_keys
from exchanged.testing.agencydesk import AgencyDesk
from tests.integration.support import HOST, Exchange, exchanged, make_exchange, running

from .test_client import client_args


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
             ) -> Iterator[Exchange]:
    """An exchange of its own: the fork test rewrites its ledger."""
    with running(make_exchange(tmp_path_factory.mktemp("witnessed"), desks)) as ex:
        yield ex


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each agency's client state (pins, witness key, last checkpoint), kept across tests."""
    root = tmp_path_factory.mktemp("client-states")
    return {a: root / a for a in ("kemensos", "bkn")}


def fetch(exchange: Exchange, desks: dict[str, AgencyDesk], states: dict[str, Path],
          agency: str, out: Path, *, check: bool = True) -> tuple[int, str, str]:
    r = exchanged("fetch", *client_args(exchange, desks[agency], states[agency],
                                        "--exchange-key", str(exchange.public_key)),
                  "--output-dir", str(out), check=check)
    return r.returncode, r.stdout, r.stderr


def signed_checkpoint(exchange: Exchange) -> int:
    out = exchanged("ledger", "checkpoint", "--home", str(exchange.home)).stdout
    line = next(x for x in out.splitlines() if x.startswith("signed into "))
    return int(Path(line.split()[2].rstrip(";")).name.split("-")[1].split(".")[0])


def signers(exchange: Exchange, size: int) -> list[str]:
    note = parse_note((exchange.home / "checkpoints" / note_name(size)).read_bytes())
    return [s.name for s in note.signatures]


def test_honest_checkpoints_are_checked_and_cosigned_by_every_party(
        exchange: Exchange, desks: dict[str, AgencyDesk], states: dict[str, Path],
        work: Path) -> None:
    first = signed_checkpoint(exchange)
    code, out, err = fetch(exchange, desks, states, "kemensos", work / "k")
    assert code == 0, err
    assert f"ledger checkpoint {first}: signed by the exchange, first seen, co-signed by you now" \
        in out
    # BKN has no witness key yet (it registers with its first cosignature): nothing to check
    assert "warning" not in err
    key = states["kemensos"] / "witness" / "kemensos.key"
    assert key.stat().st_mode & 0o777 == 0o600
    last = next((states["kemensos"] / "witness").glob("*/kemensos/last.note"))
    assert last.stat().st_mode & 0o777 == 0o600
    code, out, err = fetch(exchange, desks, states, "bkn", work / "b")
    assert code == 0, err
    assert "co-signed also by: kemensos" in out
    # the first cosignature registered each agency's witness key, on record
    assert set(witness_keys(Home(exchange.home))) == {"kemensos", "bkn"}
    assert len(exchange.ledger("--kind", "ledger.witness_key")) == 2
    # the note is served with every party's cosignature
    assert sorted(signers(exchange, first)[1:]) == ["bkn", "kemensos"]
    second = signed_checkpoint(exchange)
    for agency in ("kemensos", "bkn"):
        code, out, err = fetch(exchange, desks, states, agency, work / agency)
        assert code == 0, err
        assert f"ledger checkpoint {second}: signed by the exchange, extends checkpoint " \
               f"{first}" in out
    # cosignatures accumulate: each checkpoint carries all of them, each on record
    assert sorted(signers(exchange, second)[1:]) == ["bkn", "kemensos"]
    cosigned = exchange.ledger("--kind", "ledger.cosigned")
    assert sorted((e["agency"], e["data"]["tree_size"]) for e in cosigned) == sorted(  # type: ignore[index]
        [("kemensos", first), ("bkn", first), ("kemensos", second), ("bkn", second)])
    kemensos_view = exchange.home / "drop" / "kemensos" / "outbox" / "ledger" / note_name(second)
    assert kemensos_view.read_bytes().count("\N{EM DASH}".encode()) == 3
    # the administrator sees who co-signed what
    out = exchanged("ledger", "witnesses", "--home", str(exchange.home)).stdout
    assert f"checkpoint {second} root " in out and out.count("co-signed by bkn, kemensos") == 2
    # a fetch with nothing new keeps quiet and uploads nothing again
    code, out, err = fetch(exchange, desks, states, "kemensos", work / "k3")
    assert code == 0 and "co-signed by you;" in out and "warning" not in err
    exchange.verify()


def test_a_forged_cosignature_is_refused_with_its_reason(
        exchange: Exchange, desks: dict[str, AgencyDesk], work: Path) -> None:
    size = max(int(p.name[11:21]) for p in (exchange.home / "checkpoints").glob("*.note"))
    upload = work / f"checkpoint-{size:010d}.cosig"
    # BKN's registered key, with a signature that is not BKN's
    vkey = witness_keys(Home(exchange.home))["bkn"].vkey()
    upload.write_text(vkey + "\n\N{EM DASH} bkn " + "QUFBQQ" * 16 + "==\n")
    desk = desks["bkn"]
    desk.upload(HOST, exchange.port, upload, f"/inbox/ledger/{upload.name}")
    refused = desk.download(HOST, exchange.port,
                            f"/outbox/ledger/{upload.name}.refused.json", work / "r.json")
    assert '"code":"BAD_COSIGNATURE"' in refused.read_text()
    assert exchange.ledger("--kind", "ledger.cosignature_refused")


def _rewrite(home: Path, entries: int, files: int) -> int:
    """The operator, with the daemon stopped: write ``entries`` entries and sign a
    checkpoint of what the ledger now holds; its size."""
    ledger = Ledger(home / "ledger.db")
    try:
        for _ in range(entries):
            ledger.append("work.wiped", actor="exchange", files=files)
        return make_checkpoint(Home(home), ledger).head.tree_size
    finally:
        ledger.close()


def _hide(home: Path, agency: str, size: int) -> None:
    folder = home / "drop" / agency / "outbox" / "ledger"
    for name in (note_name(size), proof_name(size)):
        (folder / name).unlink(missing_ok=True)


def test_a_forked_ledger_is_caught_by_the_agency_that_was_shown_the_other_branch(
        exchange: Exchange, desks: dict[str, AgencyDesk], states: dict[str, Path],
        work: Path) -> None:
    home = exchange.home
    exchange.stop()
    # the history every party co-signed so far, kept by the operator
    saved = work / "before-the-fork.db"
    with sqlite3.connect(home / "ledger.db") as src, sqlite3.connect(saved) as dst:
        src.backup(dst)
    # branch A, shown to Kemensos only
    size_a = _rewrite(home, 3, 1)
    _hide(home, "bkn", size_a)
    exchange.start()
    code, out, err = fetch(exchange, desks, states, "kemensos", work / "ka")
    assert code == 0 and f"ledger checkpoint {size_a}" in out, err
    exchange.stop()
    _hide(home, "bkn", size_a)  # served again with Kemensos's cosignature: hidden again
    # branch B: history after the last common checkpoint rewritten, shown to BKN only;
    # the operator removes branch A's note from the exchange's own folder too
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home / 'ledger.db'}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(saved) as src, sqlite3.connect(home / "ledger.db") as dst:
        src.backup(dst)
    (home / "checkpoints" / note_name(size_a)).unlink()
    (home / "checkpoints" / proof_name(size_a)).unlink(missing_ok=True)
    size_b = _rewrite(home, 8, 2)
    assert size_b > size_a
    _hide(home, "kemensos", size_b)
    exchange.start()
    code, out, err = fetch(exchange, desks, states, "bkn", work / "bb")
    assert code == 0 and f"ledger checkpoint {size_b}" in out, err  # B extends what BKN saw
    # BKN's cosignature of branch B is served to every party: Kemensos sees the split
    code, out, err = fetch(exchange, desks, states, "kemensos", work / "kb", check=False)
    assert code == 1, (out, err)
    assert (f"the exchange's ledger is SPLIT: checkpoint {size_b} (bkn) does not extend "
            f"checkpoint {size_a} (kemensos) that kemensos saw") in err
    assert "Traceback" not in err
