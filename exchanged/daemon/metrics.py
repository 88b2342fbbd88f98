"""Prometheus metrics on localhost: what an operator graphs and alerts on.

Counts come from ``ledger.db`` at every scrape (so they survive restarts and
agree with the ledger); live gauges from the running daemon. Nothing here
carries personal data: flows, outcomes, counts and durations only.

=====================================  =========  ===========================================
metric                                 type       what
=====================================  =========  ===========================================
exchanged_batches_total                counter    batches answered, by flow and outcome
exchanged_rows_total                   counter    rows answered, by flow
exchanged_batch_duration_seconds       histogram  upload closed → outcome in the outbox, by flow
exchanged_queue_depth                  gauge      batches received and not yet answered
exchanged_login_failures_total         counter    connections that ended without a login
exchanged_ledger_entries               gauge      entries in the ledger
exchanged_intake_open                  gauge      1, or 0 while the exchange cannot write
exchanged_sftp_connections             gauge      open SFTP connections
exchanged_bans_total                   counter    addresses banned after repeated failed logins
exchanged_batch_retries_total          counter    tries of a batch that had to wait (retrying)
exchanged_batches_shunted              gauge      batches set aside after their last try
exchanged_agreement_in_force           gauge      1 while an agreement is in force, by agreement
exchanged_agreement_days_left          gauge      days to an agreement's last day, by agreement
=====================================  =========  ===========================================

The alert rules built on them are in ``docs/alerts.yml`` (docs/operations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from exchanged.batch.state import ANSWERED
from exchanged.home import Listen
from exchanged.ledger import Ledger

log = logging.getLogger("exchanged.daemon.metrics")

BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def _seconds(received: str, answered: str) -> float:
    start = datetime.fromisoformat(received.replace("Z", "+00:00"))
    end = datetime.fromisoformat(answered.replace("Z", "+00:00"))
    return max(0.0, (end - start).total_seconds())


@dataclass(frozen=True)
class AgreementGauge:
    """What the metrics say of one agreement today."""

    id: str
    in_force: bool
    #: days from today to its last day (negative once it has ended)
    days_left: int


def _no_agreements() -> list[AgreementGauge]:
    return []


class ExchangeCollector(Collector):
    def __init__(self, ledger: Ledger, live: Callable[[], dict[str, float]],
                 agreements: Callable[[], list[AgreementGauge]] = _no_agreements) -> None:
        self.ledger = ledger
        self.live = live
        self.agreements = agreements

    def collect(self) -> Iterator[Any]:
        try:
            yield from self._collect()
        finally:
            self.ledger.close()  # the scrape thread's connection

    def _collect(self) -> Iterator[Any]:
        conn = self.ledger.connection()
        batches = CounterMetricFamily("exchanged_batches", "Batches answered",
                                      labels=["flow", "outcome"])
        for flow, outcome, n in conn.execute(
            "SELECT flow, outcome_kind, COUNT(*) FROM batches WHERE stage = ? "
            "GROUP BY flow, outcome_kind", (ANSWERED,)):
            batches.add_metric([str(flow), str(outcome)], float(n))
        yield batches
        rows = CounterMetricFamily("exchanged_rows", "Rows answered", labels=["flow"])
        for flow, n in conn.execute(
            "SELECT flow, SUM(c.value) FROM batches, json_each(batches.counts) AS c "
            "WHERE stage = ? AND outcome_kind = 'result' GROUP BY flow", (ANSWERED,)):
            rows.add_metric([str(flow)], float(n or 0))
        yield rows
        durations: dict[str, list[float]] = {}
        for flow, received, answered in conn.execute(
            "SELECT flow, received_at, updated_at FROM batches WHERE stage = ?", (ANSWERED,)):
            durations.setdefault(str(flow), []).append(_seconds(received, answered))
        histogram = HistogramMetricFamily(
            "exchanged_batch_duration_seconds",
            "Seconds from the upload closing to the outcome in the outbox", labels=["flow"])
        for flow, values in durations.items():
            cumulative = [(str(b), float(sum(1 for v in values if v <= b))) for b in BUCKETS]
            cumulative.append(("+Inf", float(len(values))))
            histogram.add_metric([flow], cumulative, sum_value=sum(values))
        yield histogram
        pending = conn.execute("SELECT COUNT(*) FROM batches WHERE stage != ?",
                               (ANSWERED,)).fetchone()[0]
        yield GaugeMetricFamily("exchanged_queue_depth", "Batches not yet answered",
                                value=float(pending))
        # an aggregated login.failed counts its connections
        failures = conn.execute(
            "SELECT COALESCE(SUM(COALESCE(json_extract(data, '$.connections'), 1)), 0) "
            "FROM ledger WHERE kind = 'login.failed'").fetchone()[0]
        yield CounterMetricFamily("exchanged_login_failures",
                                  "Connections that ended without a login", value=float(failures))
        counted = dict(conn.execute(
            "SELECT kind, COUNT(*) FROM ledger WHERE kind IN ('login.banned', 'batch.retrying') "
            "GROUP BY kind").fetchall())
        yield CounterMetricFamily("exchanged_bans", "Addresses banned after failed logins",
                                  value=float(counted.get("login.banned", 0)))
        yield CounterMetricFamily("exchanged_batch_retries",
                                  "Tries of a batch that had to wait",
                                  value=float(counted.get("batch.retrying", 0)))
        shunted = conn.execute("SELECT COUNT(*) FROM batches WHERE shunted = 1").fetchone()[0]
        yield GaugeMetricFamily("exchanged_batches_shunted",
                                "Batches set aside after their last try", value=float(shunted))
        in_force = GaugeMetricFamily("exchanged_agreement_in_force",
                                     "1 while the agreement is in force", labels=["agreement"])
        days_left = GaugeMetricFamily("exchanged_agreement_days_left",
                                      "Days to the agreement's last day (negative once ended)",
                                      labels=["agreement"])
        for a in self.agreements():
            in_force.add_metric([a.id], 1.0 if a.in_force else 0.0)
            days_left.add_metric([a.id], float(a.days_left))
        yield in_force
        yield days_left
        entries = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM ledger").fetchone()[0]
        yield GaugeMetricFamily("exchanged_ledger_entries", "Entries in the ledger",
                                value=float(entries))
        live = self.live()
        yield GaugeMetricFamily("exchanged_intake_open",
                                "1 while uploads are accepted, 0 while the exchange cannot write",
                                value=live.get("intake_open", 1.0))
        yield GaugeMetricFamily("exchanged_sftp_connections", "Open SFTP connections",
                                value=live.get("connections", 0.0))


def serve_metrics(listen: Listen, ledger: Ledger, live: Callable[[], dict[str, float]],
                  agreements: Callable[[], list[AgreementGauge]] = _no_agreements
                  ) -> tuple[Any | None, str | None]:
    """Serve /metrics: the server, or None and why not. A port that cannot be taken is
    logged and shown by 'exchanged status', never fatal: the exchange serves on without."""
    registry = CollectorRegistry()
    registry.register(ExchangeCollector(ledger, live, agreements))
    try:
        server, _ = start_http_server(listen.port, addr=listen.host, registry=registry)
    except OSError as e:
        why = f"cannot listen on {listen} ({e.strerror or type(e).__name__})"
        log.error("metrics not served: %s", why, extra={"metrics_listen": str(listen)})
        return None, why
    log.info("metrics on http://%s/metrics", listen)
    return server, None
