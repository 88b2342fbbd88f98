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
    flow: str
    received: int = 0
    results: int = 0
    rejected: int = 0
    rows: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    loads: int = 0
    last_load_rows: int | None = None
    by_month: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {"received": self.received, "results": self.results, "rejected": self.rejected,
                "rows": self.rows, "statuses": dict(self.statuses),
                "reasons": dict(self.reasons), "loads": self.loads,
                "last_load_rows": self.last_load_rows, "by_month": dict(self.by_month)}


BATCH_KINDS = ("batch.received", "batch.answered", "batch.processed", "batch.rejected",
               "dataset.replaced")


def flow_figures(ledger: Ledger, flows: Sequence[str], period: Period, upto: int
                 ) -> dict[str, FlowFigures]:
    """Per flow: batches, rows, statuses, refusals by reason, loads — within the period."""
    out = {f: FlowFigures(f) for f in flows}
    if not flows:
        return out
    marks = ",".join("?" * len(flows))
    kinds = ",".join("?" * len(BATCH_KINDS))
    rows = ledger.connection().execute(
        f"SELECT kind, flow, ts, data FROM ledger WHERE seq <= ? AND ts >= ? AND ts < ? "
        f"AND flow IN ({marks}) AND kind IN ({kinds}) ORDER BY seq",
        (upto, period.since, period.until, *flows, *BATCH_KINDS),
    )
    for kind, flow, ts, data_text in rows:
        f = out[flow]
        data = json.loads(data_text)
        if kind == "batch.received":
            f.received += 1
            f.by_month[ts[:7]] += 1
        elif kind == "batch.answered":
            if data.get("outcome") == "result":
                f.results += 1
            else:
                f.rejected += 1
        elif kind == "batch.processed":
            f.rows += int(data.get("rows", 0))
            for status, n in dict(data.get("counts", {})).items():
                f.statuses[str(status)] += int(n)
        elif kind == "batch.rejected":
            for code in data.get("codes", []):
                f.reasons[str(code)] += 1
        elif kind == "dataset.replaced":
            f.loads += 1
            f.last_load_rows = int(data.get("rows", 0))
    return out


def event_counts(ledger: Ledger, kinds: Sequence[str], period: Period, upto: int
                 ) -> Counter[str]:
    marks = ",".join("?" * len(kinds))
    counts: Counter[str] = Counter()
    for kind, n in ledger.connection().execute(
        f"SELECT kind, COUNT(*) FROM ledger WHERE seq <= ? AND ts >= ? AND ts < ? "
        f"AND kind IN ({marks}) GROUP BY kind", (upto, period.since, period.until, *kinds)):
        counts[str(kind)] = int(n)
    return counts
