"""Counts over the ledger that compliance staff ask for: by agency, flow, kind, outcome, month."""

from __future__ import annotations

from dataclasses import dataclass

from exchanged.ledger.store import Ledger


@dataclass(frozen=True)
class Stats:
    entries: int
    by_agency: tuple[tuple[str, int], ...]
    by_flow: tuple[tuple[str, int], ...]
    by_kind: tuple[tuple[str, int], ...]
    #: batches answered, by outcome (result / rejected)
    by_outcome: tuple[tuple[str, int], ...]
    #: refusals, by reason code
    by_reason: tuple[tuple[str, int], ...]
    #: entries by month (UTC)
    by_month: tuple[tuple[str, int], ...]
    #: what entries count rather than are: SFTP sessions, outcomes downloaded (counted in each
    #: session's entry), connections that failed to log in (aggregated entries count several)
    activity: tuple[tuple[str, int], ...] = ()

    def sections(self) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
        return (("agency", self.by_agency), ("flow", self.by_flow), ("kind", self.by_kind),
                ("outcome", self.by_outcome), ("reason", self.by_reason),
                ("month", self.by_month), ("activity", self.activity))


def stats(ledger: Ledger, since: str | None = None, until: str | None = None, *,
          agency: str | None = None, flow: str | None = None) -> Stats:
    """Counts over the entries between ``since`` and ``until`` (ledger timestamps), of one
    agency or flow if given."""
    conn = ledger.connection()
    where, params = "1 = 1", []
    for column, value in (("agency", agency), ("flow", flow)):
        if value is not None:
            where += f" AND {column} = ?"
            params.append(value)
    if since is not None:
        where += " AND ts >= ?"
        params.append(since)
    if until is not None:
        where += " AND ts < ?"
        params.append(until)

    def grouped(expr: str, extra: str = "", source: str = "ledger") -> tuple[tuple[str, int], ...]:
        rows = conn.execute(
            f"SELECT {expr} AS k, COUNT(*) FROM {source} WHERE {where} {extra} "
            "GROUP BY k ORDER BY k", params).fetchall()
        return tuple((str(k) if k is not None else "-", int(n)) for k, n in rows)

    total = int(conn.execute(f"SELECT COUNT(*) FROM ledger WHERE {where}", params).fetchone()[0])
    return Stats(
        entries=total,
        by_agency=grouped("agency"),
        by_flow=grouped("flow"),
        by_kind=grouped("kind"),
        by_outcome=grouped("json_extract(data, '$.outcome')", "AND kind = 'batch.answered'"),
        by_reason=grouped(
            "codes.value", "AND kind = 'batch.rejected'",
            source="ledger, json_each(json_extract(ledger.data, '$.codes')) AS codes"),
        by_month=grouped("substr(ts, 1, 7)"),
        activity=_activity(ledger, where, params),
    )


def recorded(ledger: Ledger, column: str) -> tuple[str, ...]:
    """The agencies (``agency``) or flows (``flow``) the ledger's entries name."""
    if column not in ("agency", "flow"):
        raise ValueError(column)
    rows = ledger.connection().execute(
        f"SELECT DISTINCT {column} FROM ledger WHERE {column} IS NOT NULL")
    return tuple(sorted(str(r[0]) for r in rows))


def _activity(ledger: Ledger, where: str, params: list[str]) -> tuple[tuple[str, int], ...]:
    """Sessions, downloads and failed connections, whatever entries carry them (entries
    written before sessions were recorded as one entry each count one apiece)."""
    row = ledger.connection().execute(
        "SELECT "
        "SUM(kind IN ('session.ended', 'login.succeeded')), "
        "SUM(CASE WHEN kind IN ('session.ended', 'session.activity') "
        "    THEN json_extract(data, '$.downloads') WHEN kind = 'outcome.downloaded' THEN 1 "
        "    ELSE 0 END), "
        "SUM(CASE WHEN kind = 'login.failed' "
        "    THEN COALESCE(json_extract(data, '$.connections'), 1) ELSE 0 END) "
        f"FROM ledger WHERE {where}", params).fetchone()
    names = ("sessions", "downloads", "failed_logins")
    return tuple((name, int(n or 0)) for name, n in zip(names, row, strict=True))
