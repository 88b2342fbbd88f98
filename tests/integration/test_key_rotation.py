"""Rotating the exchange's own keys, as docs/security.md tells an administrator to: the daemon
stopped, `exchanged keys rotate`, the agencies handed the new key, the daemon started again."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import HOST, Agency, exchanged, make_exchange, write_csv

FLOW = "kpm-verification"
BATCH = "nik\n3171010101900001\n"


def test_the_exchange_openpgp_key_rotated(tmp_path_factory: pytest.TempPathFactory,
                                          desks: dict[str, AgencyDesk], work: Path) -> None:
    ex = make_exchange(tmp_path_factory.mktemp("rotate"), desks)
    kemensos = Agency(desks["kemensos"], ex)
    old = ex.fingerprint
    retired = work / "exchange-old-secret.asc"
    ex.start()
    try:
        kemensos.submit(FLOW, kemensos.seal(write_csv(work / "a.csv", BATCH), "before.csv.gpg"))
        assert kemensos.codes(FLOW, "before") == ["NO_REFERENCE_DATA"]  # signed by the old key
        made = exchanged("ledger", "checkpoint", "--home", str(ex.home)).stdout
        checkpoint = Path(made.split("signed into ", 1)[1].split(";", 1)[0])

        running = exchanged("keys", "rotate", "--home", str(ex.home), "--openpgp",
                            "--retire-to", str(retired), check=False)
        assert running.returncode != 0 and "stop it first" in running.stderr
        assert len(running.stderr.strip().splitlines()) == 1 and not retired.exists()
        ex.stop()

        out = exchanged("keys", "rotate", "--home", str(ex.home), "--openpgp",
                        "--retire-to", str(retired)).stdout
        new = out.split(" -> ", 1)[1].split()[0]
        assert new != old
        assert stat.S_IMODE(retired.stat().st_mode) == 0o600
        assert b"PRIVATE KEY BLOCK" in retired.read_bytes()
        rotated = ex.ledger("--kind", "exchange.key_rotated")
        assert [e["data"] for e in rotated] == [{"key": "openpgp", "old_fingerprint": old,
                                                 "new_fingerprint": new,
                                                 "delivered_to": ["bkn", "kemensos"]}]

        # every agency got a notice signed by the key it already trusts, naming the new one
        notices = list((ex.home / "drop" / "kemensos" / "outbox" / "notices")
                       .glob("notice-key_rotation-*"))
        assert len(notices) == 1
        opened = kemensos.desk.open(notices[0])
        assert opened.signer == old
        assert new in json.loads(opened.data)["message"]

        # the agency imports the new key: the old one certified it
        assert kemensos.desk.import_key(ex.public_key, certify=True) == new
        sigs = kemensos.desk.gpg("--with-colons", "--check-sigs", new).stdout.decode()
        assert any(line.startswith("sig:!:") and line.split(":")[4] == old[-16:]
                   for line in sigs.splitlines())

        ex.fingerprint = new
        ex.start()
        kemensos.submit(FLOW, kemensos.seal(write_csv(work / "b.csv", BATCH), "after.csv.gpg"))
        assert kemensos.codes(FLOW, "after") == ["NO_REFERENCE_DATA"]  # signed by the new key
        kemensos.submit(FLOW, kemensos.seal(write_csv(work / "c.csv", BATCH), "stale.csv.gpg",
                                            recipient=old))
        assert kemensos.codes(FLOW, "stale") == ["NOT_ENCRYPTED_TO_EXCHANGE"]

        # a checkpoint the old key signed still proves the ledger only grew
        exchanged("ledger", "verify", "--home", str(ex.home), "--against", str(checkpoint))
    finally:
        if ex.alive():
            ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_the_ssh_host_key_rotated(tmp_path_factory: pytest.TempPathFactory,
                                  desks: dict[str, AgencyDesk]) -> None:
    ex = make_exchange(tmp_path_factory.mktemp("rotate-host"), desks)
    bkn = Agency(desks["bkn"], ex)
    try:
        out = exchanged("keys", "rotate", "--home", str(ex.home), "--ssh-host").stdout
        line = out.split("known_hosts line for the agencies: ", 1)[1].strip()
        assert line.startswith(f"[{HOST}]:{ex.port} ssh-ed25519 ")
        assert stat.S_IMODE(os.stat(ex.home / "keys" / "ssh_host_ed25519_key").st_mode) == 0o600
        rotated = ex.ledger("--kind", "exchange.key_rotated")
        assert [e["data"]["key"] for e in rotated] == ["ssh-host"]  # type: ignore[index]
        ex.start()
        # the agency still pins the old host key: its sftp refuses the exchange
        assert bkn.sftp("ls /", check=False).returncode != 0
        bkn.desk.known_hosts.write_text(line + "\n")
        assert bkn.sftp("ls /").returncode == 0
    finally:
        if ex.alive():
            ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")
