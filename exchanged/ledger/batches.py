"""One row per upload, read from the ledger: what compliance staff ask of a batch.

Each ``batch.received`` entry is one upload. What became of it is read from the
entries recorded under the same batch id after it (an indexed look-up per
upload, so memory does not grow with the ledger), matched by the upload's uid:
the rows and counts of ``batch.processed``, the codes of ``batch.rejected``, the
outcome of ``batch.answered``, and when the outcome was first downloaded: by
the first ``session.ended`` (or ``session.activity``) of the agency after it
that lists the outcome (its batch and the keyed hash of its name) with a
download, or, in ledgers written before sessions were one entry, by the first
``outcome.downloaded`` of the outcome's name (recorded only as its SHA-256).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from exchanged.ledger.store import Ledger

#: the exchange's id for an upload (batch/names.py reserves the form: no batch id takes it)
UID_RE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")

OUTCOMES = ("result", "rejected", "pending")
FOLLOWERS = ("batch.processed", "batch.rejected", "batch.answered", "outcome.downloaded")


@dataclass(frozen=True)
class BatchFilter:
    agency: str | None = None
    flow: str | None = None
    #: a batch id, or the exchange's uid of one upload
    batch: str | None = None
    #: received at or after (a ledger timestamp, UTC)
    since: str | None = None
    #: received before
    until: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class BatchRow:
    """One upload and what became of it."""

    agency: str
    flow: str
    batch: str
    uid: str
    received: str
    #: ``result``, ``rejected`` or ``pending`` (not answered yet)
    outcome: str = "pending"
    rows: int | None = None
    #: the answer's rows by status (a result)
    counts: dict[str, int] = field(default_factory=dict)
    #: the reason codes (a rejection)
    codes: tuple[str, ...] = ()
    answered: str | None = None
    #: the outcome's file name in the agency's outbox
    outcome_name: str | None = None
    #: when the agency first downloaded the outcome completely
    downloaded: str | None = None
    seq: int = 0

    def summary(self) -> str:
        """``ASN=12 TIDAK_DITEMUKAN=30`` for a result, the codes for a rejection."""
        if self.codes:
            return " ".join(self.codes)
        return " ".join(f"{k}={v}" for k, v in self.counts.items())

    def as_dict(self) -> dict[str, Any]:
        return {"agency": self.agency, "flow": self.flow, "batch": self.batch, "uid": self.uid,
                "received": self.received, "rows": self.rows, "outcome": self.outcome,
                "counts": self.counts, "codes": list(self.codes), "answered": self.answered,
                "outcome_name": self.outcome_name, "downloaded": self.downloaded,
                "seq": self.seq}


def resolve_batch(ledger: Ledger, batch: str) -> tuple[str, str | None]:
    """A ``--batch`` value as (the batch id the ledger records, the uid of one upload or
    None): a uid is looked up among the uploads received."""
    if UID_RE.fullmatch(batch) is None:
        return batch, None
    # a uid begins with the UTC second its upload began, and is received after it: search
    # from there in time order (the index on kind and time), then, were the clock ever
    # set back, everywhere
    began = f"{batch[0:4]}-{batch[4:6]}-{batch[6:8]}T{batch[9:11]}:{batch[11:13]}:{batch[13:15]}"
    conn = ledger.connection()
    row = conn.execute(
        "SELECT batch FROM ledger WHERE kind = 'batch.received' AND ts >= ? "
        "AND json_extract(data, '$.uid') = ? ORDER BY kind, ts LIMIT 1", (began, batch)
    ).fetchone() or conn.execute(
        "SELECT batch FROM ledger WHERE kind = 'batch.received' "
        "AND json_extract(data, '$.uid') = ? LIMIT 1", (batch,)).fetchone()
    return (str(row[0]), batch) if row is not None else (batch, None)


def batches(ledger: Ledger, f: BatchFilter = BatchFilter(),
            name_hash: Callable[[str], str] | None = None) -> Iterator[BatchRow]:
    """Every upload received that the filter selects, oldest first, one row each.

    ``name_hash``: the exchange's keyed hash of a name (exchanged.home.keyed), with which
    sessions record the outcomes they downloaded; without it only ``outcome.downloaded``
    entries of earlier versions say when an outcome was downloaded."""
    clauses, params = ["kind = 'batch.received'"], []
    uid: str | None = None
    if f.batch is not None:
        recorded, uid = resolve_batch(ledger, f.batch)
        clauses.append("batch = ?")
        params.append(recorded)
    for column, value in (("agency", f.agency), ("flow", f.flow)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if f.since is not None:
        clauses.append("ts >= ?")
        params.append(f.since)
    if f.until is not None:
        clauses.append("ts < ?")
        params.append(f.until)
    conn = ledger.connection()
    received = conn.execute(
        f"SELECT seq, ts, agency, flow, batch, data FROM ledger WHERE {' AND '.join(clauses)} "
        "ORDER BY seq", params)
    for seq, ts, agency, flow, batch, data_text in received:
        this_uid = str(json.loads(data_text).get("uid", ""))
        if uid is not None and this_uid != uid:
            continue
        row = _follow(ledger, BatchRow(str(agency), str(flow), str(batch), this_uid, str(ts),
                                       seq=int(seq)), name_hash)
        if f.outcome is None or row.outcome == f.outcome:
            yield row


def _follow(ledger: Ledger, row: BatchRow, name_hash: Callable[[str], str] | None
            ) -> BatchRow:
    marks = ",".join("?" * len(FOLLOWERS))
    fields: dict[str, Any] = {}
    outcome_name_sha256: str | None = None
    downloads: list[tuple[str, str]] = []
    for kind, ts, data_text in ledger.connection().execute(
            f"SELECT kind, ts, data FROM ledger WHERE batch = ? AND seq > ? AND agency = ? "
            f"AND kind IN ({marks}) ORDER BY seq", (row.batch, row.seq, row.agency, *FOLLOWERS)):
        data = json.loads(data_text)
        if kind == "outcome.downloaded":
            downloads.append((str(ts), str(data.get("name_sha256", ""))))
            continue
        if data.get("uid") != row.uid:
            continue  # another upload under the same batch id (a replay)
        if kind == "batch.processed":
            fields["rows"] = int(data.get("rows", 0))
            counts = data.get("counts", {})
            fields["counts"] = ({str(k): int(v) for k, v in counts.items()}
                                if isinstance(counts, dict) else {})
        elif kind == "batch.rejected":
            codes = data.get("codes", [])
            fields["codes"] = tuple(str(c) for c in codes) if isinstance(codes, list) else ()
        elif kind == "batch.answered":
            fields["outcome"] = "result" if data.get("outcome") == "result" else "rejected"
            fields["answered"] = str(ts)
            name = str(data.get("outcome_name", ""))
            fields["outcome_name"] = name
            outcome_name_sha256 = hashlib.sha256(
                name.encode("utf-8", "surrogateescape")).hexdigest()
    if outcome_name_sha256 is not None:
        fields["downloaded"] = next(
            (ts for ts, digest in downloads if digest == outcome_name_sha256), None)
        if fields["downloaded"] is None and name_hash is not None:
            fields["downloaded"] = _downloaded_in_session(
                ledger, row, name_hash(str(fields["outcome_name"])))
    return replace(row, **fields)


def _downloaded_in_session(ledger: Ledger, row: BatchRow, name_hmac: str) -> str | None:
    """When the first session of the agency that downloaded the outcome ended."""
    found = ledger.connection().execute(
        "SELECT ts FROM ledger WHERE agency = ? AND ts >= ? "
        "AND kind IN ('session.ended', 'session.activity') AND EXISTS ("
        "  SELECT 1 FROM json_each(ledger.data, '$.outcomes') AS o"
        "  WHERE json_extract(o.value, '$.name_hmac') = ?"
        "  AND json_extract(o.value, '$.downloads') > 0) "
        "ORDER BY seq LIMIT 1", (row.agency, row.received, name_hmac)).fetchone()
    return None if found is None else str(found[0])
