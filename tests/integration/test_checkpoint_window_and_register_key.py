"""Two things an exchange with a loaded register shows: a checkpoint follows the newest
entries soon (``checkpoint_every_entries``), not only once a day; and the register key is
rotated with every snapshot made under it, the registers then loaded again."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchanged.daemon.scheduler import DUE_CHECK
from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import Agency, Exchange, exchanged, make_exchange, write_csv

FLOW = "kpm-verification"
EVERY = 20
REGISTER = synth.SyntheticRegister(60, seed=77)


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
           ) -> Iterator[Exchange]:
    """An exchange that signs a checkpoint every 20 entries, with an ASN register loaded."""
    ex = make_exchange(tmp_path_factory.mktemp("window"), desks)
    config = ex.home / "config.yaml"
    config.write_text(config.read_text() + f"checkpoint_every_entries: {EVERY}\n")
    ex.start()
    bkn = Agency(desks["bkn"], ex)
    register = tmp_path_factory.mktemp("window-data") / "register.csv"
    synth.write_register_csv(str(register), REGISTER)
    bkn.submit("asn-register", bkn.seal(register, "reg-1.csv.gpg"))
    assert b'"ROWS_LOADED","60"' in bkn.outcome("asn-register", "reg-1.result.csv.gpg")
    yield ex
    if ex.alive():
        ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")


def checkpoints(ex: Exchange) -> list[tuple[int, int]]:
    """(seq, tree size) of every ledger.checkpoint entry, read as compliance staff may."""
    with sqlite3.connect(f"file:{ex.home / 'ledger.db'}?mode=ro", uri=True) as db:
        return [(int(seq), int(size)) for seq, size in db.execute(
            "SELECT seq, json_extract(data, '$.tree_size') FROM ledger "
            "WHERE kind = 'ledger.checkpoint' ORDER BY seq")]


def head(ex: Exchange) -> int:
    with sqlite3.connect(f"file:{ex.home / 'ledger.db'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT max(seq) FROM ledger").fetchone()[0])


def test_a_checkpoint_follows_every_twenty_entries(window: Exchange,
                                                   desks: dict[str, AgencyDesk],
                                                   work: Path) -> None:
    """Twenty new entries (downloads, each recorded): a checkpoint within seconds (the daily
    one is a day away) that holds them, delivered to every agency."""
    bkn = Agency(desks["bkn"], window)
    before = checkpoints(window)
    last_seq = before[-1][0]
    while head(window) - last_seq < EVERY:
        bkn.sftp(*[f'get /outbox/asn-register/reg-1.result.csv.gpg "{work}/r"'] * 10)
    crossed = time.monotonic()
    while len(made := checkpoints(window)) == len(before):
        assert time.monotonic() - crossed < DUE_CHECK.total_seconds() + 10, made
        time.sleep(0.1)
    seq, size = made[len(before)]
    assert size == seq - 1 and size - last_seq >= EVERY
    for agency in ("kemensos", "bkn"):
        delivered = window.home / "drop" / agency / "outbox" / "ledger"
        assert f"checkpoint-{size:010d}.json.asc" in os.listdir(delivered)


def test_the_register_key_rotated_and_the_register_loaded_again(
        window: Exchange, desks: dict[str, AgencyDesk], work: Path) -> None:
    ex = window
    kemensos, bkn = Agency(desks["kemensos"], ex), Agency(desks["bkn"], ex)
    key = ex.home / "keys" / "register.key"
    old = key.read_bytes()
    batch = write_csv(work / "kpm.csv", f"nik\n{REGISTER.row(0).nik}\n")
    running = exchanged("keys", "rotate", "--home", str(ex.home), "--register", check=False)
    assert running.returncode != 0 and "stop it first" in running.stderr
    ex.stop()

    out = exchanged("keys", "rotate", "--home", str(ex.home), "--register").stdout
    assert "to be loaded again: asn-register" in out
    new = key.read_bytes()
    assert new != old and len(new) == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not any((ex.home / "reference").iterdir())  # nothing keyed under the old key
    [rotated] = ex.ledger("--kind", "exchange.register_key_rotated")
    assert rotated["data"]["datasets"] == ["asn-register"]  # type: ignore[index]
    assert old.hex() not in str(rotated) and new.hex() not in str(rotated)

    ex.start()
    kemensos.submit(FLOW, kemensos.seal(batch, "after-rotation.csv.gpg"))
    assert kemensos.codes(FLOW, "after-rotation") == ["NO_REFERENCE_DATA"]
    register = work / "register.csv"
    synth.write_register_csv(str(register), REGISTER)
    bkn.submit("asn-register", bkn.seal(register, "reg-2.csv.gpg"))
    assert b'"ROWS_LOADED","60"' in bkn.outcome("asn-register", "reg-2.result.csv.gpg")
    kemensos.submit(FLOW, kemensos.seal(batch, "reloaded.csv.gpg"))
    answer = kemensos.outcome(FLOW, "reloaded.result.csv.gpg").decode()
    assert answer.splitlines()[1].split(",")[1] == '"ASN"'  # every field is quoted
