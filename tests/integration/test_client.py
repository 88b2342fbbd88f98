"""The agency's client, 'exchanged submit' and 'fetch', against the real daemon."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk
from tests.integration.support import HOST, Agency, Exchange, exchanged, write_csv


def client_args(exchange: Exchange, desk: AgencyDesk, state: Path, *extra: str) -> list[str]:
    return ["--server", f"{HOST}:{exchange.port}", "--agency", desk.agency,
            "--ssh-key", str(desk.ssh_key), "--gnupghome", str(desk.gnupg),
            "--state", str(state), "--quiet", *extra]


def test_submit_and_get_the_answer(exchange: Exchange, bkn: Agency, desks: dict[str, AgencyDesk],
                                   work: Path) -> None:
    state = work / "state"
    register = synth.SyntheticRegister(500, seed=12)
    reg = work / "register.csv"
    synth.write_register_csv(str(reg), register)
    r = exchanged("submit", *client_args(exchange, desks["bkn"], state, "--exchange-key",
                                         str(exchange.public_key)),
                  "--flow", "asn-register", "--batch-id", "client-reg", str(reg))
    assert "batch client-reg answered" in r.stdout
    pins = json.loads((state / "pins.json").read_text())
    assert pins[f"{HOST}:{exchange.port}"]["exchange_fingerprint"] == exchange.fingerprint
    kemensos_state = work / "kstate"
    batch, truth = work / "kpm.csv", work / "truth.csv"
    synth.write_kpm_csv(str(batch), synth.kpm_batch(register, 120, seed=4), truth_path=str(truth))
    out = work / "answer.csv"
    r = exchanged("submit", *client_args(exchange, desks["kemensos"], kemensos_state,
                                         "--exchange-key", str(exchange.public_key)),
                  "--flow", "kpm-verification", "--output", str(out), str(batch))
    assert "answered" in r.stdout and out.exists()
    answer = list(csv.DictReader(io.StringIO(out.read_text())))
    expected = list(csv.DictReader(truth.open()))
    assert [a["status"] for a in answer] == [t["expected_status"] for t in expected]
    # the pin is remembered: no key needed the second time
    r = exchanged("submit", *client_args(exchange, desks["kemensos"], kemensos_state),
                  "--flow", "kpm-verification", "--output", str(work / "a2.csv"), str(batch))
    assert r.returncode == 0


def test_a_rejection_prints_the_reasons(exchange: Exchange, desks: dict[str, AgencyDesk],
                                        work: Path) -> None:
    bad = write_csv(work / "bad.csv", "nik,alamat\n3171014101900001,x\n")
    r = exchanged("submit", *client_args(exchange, desks["kemensos"], work / "s",
                                         "--exchange-key", str(exchange.public_key)),
                  "--flow", "kpm-verification", str(bad), check=False)
    assert r.returncode == 1
    assert "REJECTED" in r.stdout and "COLUMN_NOT_ALLOWED" in r.stdout


def test_a_changed_host_key_or_exchange_key_is_refused(exchange: Exchange,
                                                       desks: dict[str, AgencyDesk],
                                                       work: Path, tmp_path: Path) -> None:
    state = work / "pins"
    good = write_csv(work / "g.csv", "nik\n3171014101900001\n")
    exchanged("submit", *client_args(exchange, desks["kemensos"], state, "--exchange-key",
                                     str(exchange.public_key)),
              "--flow", "kpm-verification", "--no-wait", str(good))
    other = tmp_path / "other"
    exchanged("init", "--home", str(other))
    r = exchanged("submit", *client_args(exchange, desks["kemensos"], state, "--exchange-key",
                                         str(other / "exchange-public.asc")),
                  "--flow", "kpm-verification", "--no-wait", str(good), check=False)
    assert r.returncode == 2 and "CHANGED" in r.stderr
    pins_file = state / "pins.json"
    pins = json.loads(pins_file.read_text())
    host_pub = (other / "keys" / "ssh_host_ed25519_key.pub").read_text().split()
    pins[f"{HOST}:{exchange.port}"]["host_key"] = f"{host_pub[0]} {host_pub[1]}"
    pins_file.write_text(json.dumps(pins))
    r = exchanged("submit", *client_args(exchange, desks["kemensos"], state),
                  "--flow", "kpm-verification", "--no-wait", str(good), check=False)
    assert r.returncode == 2 and "host key" in r.stderr and "CHANGED" in r.stderr


def test_fetch_collects_what_is_waiting(exchange: Exchange, desks: dict[str, AgencyDesk],
                                        kemensos: Agency, work: Path) -> None:
    sealed = kemensos.seal(write_csv(work / "b.csv", "nik\n3171014101900001\n"), "to-fetch.csv.gpg")
    kemensos.submit("kpm-verification", sealed)
    kemensos.desk.wait_for(HOST, exchange.port, "/outbox/kpm-verification",
                           "to-fetch.result.csv.gpg")
    out = work / "fetched"
    r = exchanged("fetch", *client_args(exchange, desks["kemensos"], work / "fs",
                                        "--exchange-key", str(exchange.public_key)),
                  "--flow", "kpm-verification", "--output-dir", str(out), "--remove")
    assert "to-fetch.result.csv.gpg" in r.stdout
    assert (out / "to-fetch.result.csv").read_text().startswith("nik,status")
    assert "to-fetch.result.csv.gpg" not in kemensos.desk.listing(HOST, exchange.port,
                                                                  "/outbox/kpm-verification")
