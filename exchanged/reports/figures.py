"""The figures a report is made of, read from the ledger up to a checkpoint.

Every figure comes from ledger entries 1..N of a signed checkpoint, so that a
party holding the checkpoint can have the same figures recomputed and compared.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from exchanged.errors import UsageError
from exchanged.ledger import Ledger, format_ts

PERIOD_RE = re.compile(r"(?P<year>\d{4})(?:-(?P<part>H[12]|Q[1-4]))?")


@dataclass(frozen=True)
class Period:
    label: str
    first_day: date
    last_day: date
    since: str  # ledger timestamp bounds (UTC), since inclusive
    until: str  # until exclusive


def parse_period(text: str, zone: ZoneInfo) -> Period:
    """``2026-H1`` (January–June), ``2026-H2``, ``2026-Q3``, or ``2026``; days in ``zone``.

    >>> p = parse_period("2026-H1", ZoneInfo("Asia/Jakarta"))
    >>> p.first_day, p.last_day, p.since
    (datetime.date(2026, 1, 1), datetime.date(2026, 6, 30), '2025-12-31T17:00:00.000000Z')
    """
    m = PERIOD_RE.fullmatch(text.strip().upper())
    if m is None:
        raise UsageError(f"{text!r} is not a period (2026-H1, 2026-H2, 2026-Q3 or 2026)")
    year, part = int(m["year"]), m["part"]
    if part is None:
        first, last_month = date(year, 1, 1), 12
    elif part.startswith("H"):
        first = date(year, 1 if part == "H1" else 7, 1)
        last_month = first.month + 5
    else:
        quarter = int(part[1])
        first = date(year, 3 * quarter - 2, 1)
        last_month = first.month + 2
    after = date(year + 1, 1, 1) if last_month == 12 else date(year, last_month + 1, 1)
    last = after - timedelta(days=1)
    since = format_ts(datetime.combine(first, time.min, tzinfo=zone))
    until = format_ts(datetime.combine(after, time.min, tzinfo=zone))
    return Period(text.strip().upper(), first, last, since, until)


@dataclass
class FlowFigures:
    """What happened to the batches a flow *received* within the period, as of the checkpoint:
    each is answered with a result, refused, or not yet answered, so that
    ``received == results + rejected + pending`` always holds."""

    flow: str
    received: int = 0
    results: int = 0
    rejected: int = 0
    pending: int = 0
    rows: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    #: refused batches by reason code (a batch refused for two reasons counts under each)
    reasons: Counter[str] = field(default_factory=Counter)
    #: refused batches with more than one reason
    several_reasons: int = 0
    loads: int = 0
    last_load_rows: int | None = None
    by_month: Counter[str] = field(default_factory=Counter)
    #: ISO week (``2026-W14``) -> batches by outcome (``result``, ``rejected``, ``pending``)
    by_week: dict[str, Counter[str]] = field(default_factory=dict)
    #: ISO week -> rows processed
    rows_by_week: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {"received": self.received, "results": self.results, "rejected": self.rejected,
                "pending": self.pending, "rows": self.rows, "statuses": dict(self.statuses),
                "reasons": dict(self.reasons), "several_reasons": self.several_reasons,
                "loads": self.loads, "last_load_rows": self.last_load_rows,
                "by_month": dict(self.by_month),
                "by_week": {week: dict(c) for week, c in sorted(self.by_week.items())},
                "rows_by_week": dict(sorted(self.rows_by_week.items()))}


BATCH_KINDS = ("batch.processed", "batch.rejected", "batch.answered", "dataset.replaced")


@dataclass
class _Batch:
    flow: str
    week: str
    outcome: str = "pending"
    rows: int = 0
    codes: tuple[str, ...] = ()


def iso_week(ts: str) -> str:
    """The ISO week of a ledger timestamp.

    >>> iso_week("2026-01-01T10:00:00.000000Z")
    '2026-W01'
    """
    year, week, _ = date.fromisoformat(ts[:10]).isocalendar()
    return f"{year}-W{week:02d}"


MONTH_RE = re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})")


def parse_span(text: str, zone: ZoneInfo) -> Period:
    """A period of the ledger commands: what :func:`parse_period` takes, or a month
    (``2026-03``); days in ``zone``.

    >>> p = parse_span("2026-02", ZoneInfo("UTC"))
    >>> p.first_day, p.last_day, p.until
    (datetime.date(2026, 2, 1), datetime.date(2026, 2, 28), '2026-03-01T00:00:00.000000Z')
    """
    m = MONTH_RE.fullmatch(text.strip())
    if m is None:
        return parse_period(text, zone)
    year, month = int(m["year"]), int(m["month"])
    if not 1 <= month <= 12:
        raise UsageError(f"{text!r} is not a period (2026-03, 2026-H1, 2026-Q3 or 2026)")
    first = date(year, month, 1)
    after = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period(text.strip(), first, after - timedelta(days=1),
                  format_ts(datetime.combine(first, time.min, tzinfo=zone)),
                  format_ts(datetime.combine(after, time.min, tzinfo=zone)))


def flow_figures(ledger: Ledger, flows: Sequence[str], period: Period, upto: int
                 ) -> dict[str, FlowFigures]:
    """Per flow: the batches received within the period and what became of each by entry
    ``upto`` (the checkpoint): outcomes, rows, statuses, refusals by reason, loads."""
    out = {f: FlowFigures(f) for f in flows}
    if not flows:
        return out
    marks = ",".join("?" * len(flows))
    conn = ledger.connection()
    batches: dict[str, _Batch] = {}
    for flow, ts, uid in conn.execute(
            f"SELECT flow, ts, json_extract(data, '$.uid') FROM ledger WHERE seq <= ? "
            f"AND kind = 'batch.received' AND ts >= ? AND ts < ? AND flow IN ({marks}) "
            "ORDER BY seq", (upto, period.since, period.until, *flows)):
        batches[str(uid)] = _Batch(flow, iso_week(ts))
        out[flow].received += 1
        out[flow].by_month[ts[:7]] += 1
    kinds = ",".join("?" * len(BATCH_KINDS))
    # what became of them: entries after the period's start only (none can come before)
    for kind, data_text in conn.execute(
            f"SELECT kind, data FROM ledger WHERE seq <= ? AND ts >= ? AND flow IN ({marks}) "
            f"AND kind IN ({kinds}) ORDER BY seq", (upto, period.since, *flows, *BATCH_KINDS)):
        data = json.loads(data_text)
        batch = batches.get(str(data.get("uid")))
        if batch is not None:
            _apply(out[batch.flow], batch, kind, data)
    for batch in batches.values():
        f = out[batch.flow]
        if batch.outcome == "result":
            f.results += 1
        elif batch.outcome == "rejected":
            f.rejected += 1
        else:
            f.pending += 1
        f.by_week.setdefault(batch.week, Counter())[batch.outcome] += 1
        f.rows_by_week[batch.week] += batch.rows
        if batch.outcome == "rejected":
            f.reasons.update(set(batch.codes))
            f.several_reasons += len(set(batch.codes)) > 1
    return out


def _apply(f: FlowFigures, batch: _Batch, kind: str, data: dict[str, object]) -> None:
    if kind == "batch.processed":
        batch.rows = int(str(data.get("rows", 0)))
        f.rows += batch.rows
        counts = data.get("counts", {})
        for status, count in (counts.items() if isinstance(counts, dict) else ()):
            f.statuses[str(status)] += int(count)
    elif kind == "batch.rejected":
        codes = data.get("codes", [])
        batch.codes = tuple(str(c) for c in codes) if isinstance(codes, list) else ()
    elif kind == "batch.answered":
        batch.outcome = "result" if data.get("outcome") == "result" else "rejected"
    elif kind == "dataset.replaced":
        f.loads += 1
        f.last_load_rows = int(str(data.get("rows", 0)))


def previous_period(period: Period, zone: ZoneInfo) -> Period:
    """The period of the same kind just before ``period``.

    >>> previous_period(parse_period("2026-H1", ZoneInfo("UTC")), ZoneInfo("UTC")).label
    '2025-H2'
    >>> previous_period(parse_period("2026-Q1", ZoneInfo("UTC")), ZoneInfo("UTC")).label
    '2025-Q4'
    """
    year, _, part = period.label.partition("-")
    y = int(year)
    if not part:
        label = str(y - 1)
    elif part.startswith("H"):
        label = f"{y}-H1" if part == "H2" else f"{y - 1}-H2"
    else:
        q = int(part[1])
        label = f"{y}-Q{q - 1}" if q > 1 else f"{y - 1}-Q4"
    return parse_period(label, zone)


def event_counts(ledger: Ledger, kinds: Sequence[str], period: Period, upto: int
                 ) -> Counter[str]:
    marks = ",".join("?" * len(kinds))
    counts: Counter[str] = Counter()
    for kind, n in ledger.connection().execute(
        # an aggregated entry (login.failed beyond its budget) counts what it aggregates
        f"SELECT kind, SUM(COALESCE(json_extract(data, '$.connections'), 1)) FROM ledger "
        f"WHERE seq <= ? AND ts >= ? AND ts < ? "
        f"AND kind IN ({marks}) GROUP BY kind", (upto, period.since, period.until, *kinds)):
        counts[str(kind)] = int(n)
    return counts
