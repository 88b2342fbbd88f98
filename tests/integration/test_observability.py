"""What an operator sees: status, Prometheus metrics, structured logs without personal data."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import Agency, Exchange, exchanged, free_port, make_exchange


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
             ) -> Iterator[tuple[Exchange, int]]:
    ex = make_exchange(tmp_path_factory.mktemp("observed"), desks)
    port = free_port()
    config = ex.home / "config.yaml"
    text = config.read_text().replace('metrics_listen: "127.0.0.1:9464"',
                                      f'metrics_listen: "127.0.0.1:{port}"')
    config.write_text(text.replace("log_format: text", "log_format: json"))
    ex.start()
    yield ex, port
    if ex.alive():
        ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")


def run_a_batch(ex: Exchange, desks: dict[str, AgencyDesk], work: Path) -> synth.SyntheticRegister:
    bkn, kemensos = Agency(desks["bkn"], ex), Agency(desks["kemensos"], ex)
    register = synth.SyntheticRegister(300, seed=8)
    reg = work / "r.csv"
    synth.write_register_csv(str(reg), register)
    bkn.submit("asn-register", bkn.seal(reg, "obs-reg.csv.gpg"))
    bkn.outcome("asn-register", "obs-reg.result.csv.gpg")
    batch = work / "k.csv"
    synth.write_kpm_csv(str(batch), synth.kpm_batch(register, 50, seed=2))
    kemensos.submit("kpm-verification", kemensos.seal(batch, "obs-kpm.csv.gpg"))
    kemensos.outcome("kpm-verification", "obs-kpm.result.csv.gpg")
    return register


def test_metrics_status_and_logs(observed: tuple[Exchange, int], desks: dict[str, AgencyDesk],
                                 work: Path) -> None:
    ex, port = observed
    register = run_a_batch(ex, desks, work)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'exchanged_batches_total{flow="kpm-verification",outcome="result"} 1.0' in text
    assert 'exchanged_rows_total{flow="kpm-verification"} 50.0' in text
    assert 'exchanged_batch_duration_seconds_count{flow="kpm-verification"} 1.0' in text
    assert "exchanged_queue_depth 0.0" in text and "exchanged_intake_open 1.0" in text
    assert "exchanged_ledger_entries" in text and "exchanged_login_failures_total" in text

    out = exchanged("status", "--home", str(ex.home)).stdout
    assert "daemon: running" in out and "intake open" in out
    assert "obs-kpm" in out and "answered result" in out
    assert "pks-kemensos-bkn-2023: in force until 2099-12-31" in out
    data = json.loads(exchanged("status", "--home", str(ex.home), "--format", "json").stdout)
    assert data["running"] and data["queue"] == {}
    assert {"ledger-checkpoint", "retention", "reminders"} <= set(data["next_jobs"])

    lines = [line for line in ex.log.read_text().splitlines() if line.startswith("{")]
    assert lines, "no JSON log lines"
    for line in lines:
        entry = json.loads(line)
        assert {"ts", "level", "logger", "message"} <= set(entry)
    log = ex.log.read_text()
    for i in range(0, 300, 7):
        person = register.row(i)
        assert person.nik not in log and person.nip not in log and person.nama not in log


def test_status_of_a_stopped_daemon(observed: tuple[Exchange, int]) -> None:
    ex, _ = observed
    ex.stop()
    out = exchanged("status", "--home", str(ex.home)).stdout
    assert "daemon: not running" in out
