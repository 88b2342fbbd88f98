"""What an operator sees: status, Prometheus metrics, structured logs without personal data."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import Agency, Exchange, exchanged, free_port, make_exchange

ROOT = Path(__file__).resolve().parents[2]


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
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert {"ts", "level", "logger", "message"} <= set(entry)
    # the batch's identifiers are fields of the record, not only words of its message
    received = [e for e in entries if e.get("batch") == "obs-kpm"]
    assert received, "no log record carries the batch id as a field"
    uids = {e["uid"] for e in received}
    assert len(uids) == 1
    for e in received:
        assert e["agency"] == "kemensos" and e["flow"] == "kpm-verification"
    assert any("received" in e["message"] for e in received)
    assert any("answered" in e["message"] for e in received)
    assert data["daemon"]["metrics"]["serving"] is True
    log = ex.log.read_text()
    for i in range(0, 300, 7):
        person = register.row(i)
        assert person.nik not in log and person.nip not in log and person.nama not in log


def exported_metric_names(exposition: str) -> set[str]:
    """Every series name a scrape may hold, from its # TYPE lines (also of families that
    have no sample yet)."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            # a counter's TYPE line names it with or without _total, by client version
            base = name.removesuffix("_total") if kind == "counter" else name
            names |= {base + suffix for suffix in suffixes.get(kind, ("",))}
    return names


def test_the_alert_rules_name_only_metrics_the_daemon_exports(
        observed: tuple[Exchange, int]) -> None:
    ex, port = observed
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    exported = exported_metric_names(text)
    assert 'exchanged_agreement_in_force{agreement="pks-kemensos-bkn-2023"} 1.0' in text
    assert "exchanged_bans_total 0.0" in text and "exchanged_batches_shunted 0.0" in text
    rules = yaml.safe_load((ROOT / "docs" / "alerts.yml").read_text())["groups"][0]["rules"]
    alerts = {rule["alert"]: rule for rule in rules}
    # what the issue asks alerts for: intake stopped, bans, retries, an agreement's end
    assert {"ExchangedIntakeStopped", "ExchangedAddressBanned", "ExchangedBatchRetrying",
            "ExchangedAgreementEndingSoon", "ExchangedAgreementNotInForce"} <= set(alerts)
    operations = (ROOT / "docs" / "operations.md").read_text()
    for name, rule in alerts.items():
        named = set(re.findall(r"\bexchanged_[a-z_]+", rule["expr"]))
        assert named and named <= exported, (name, named - exported)
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and f"`{name}`" in operations


def test_status_of_a_stopped_daemon(observed: tuple[Exchange, int]) -> None:
    ex, _ = observed
    ex.stop()
    out = exchanged("status", "--home", str(ex.home)).stdout
    assert "daemon: not running" in out
