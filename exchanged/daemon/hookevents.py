"""What an event hook is told: the events, read from the ledger, as JSON without personal data.

An event is a ledger entry of one of the kinds in :data:`KIND_EVENTS`; its document
carries what the ledger itself may carry (agency, flow, batch id, uid, outcome,
counts, reason codes, times, an address of a network), never a NIK, NIP or name: the
ledger refuses those before they are written, so what is read from it holds none.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from exchanged.ledger import Entry, Ledger, Query

HOOK_FORMAT = "exchanged/hook-v1"

#: ledger kind -> the hook event it raises (batch.answered: batch.rejected when it was a
#: rejection that was placed in the agency's outbox)
KIND_EVENTS: Mapping[str, str] = MappingProxyType({
    "batch.answered": "batch.answered",
    "login.banned": "ban",
    "exchange.unavailable": "intake.stopped",
    "exchange.available": "intake.resumed",
    "reminder.renewal": "agreement.ending",
})


def event_of(entry: Entry) -> str | None:
    """The hook event a ledger entry raises, if any."""
    event = KIND_EVENTS.get(entry.kind)
    if event == "batch.answered" and entry.data.get("outcome") == "rejected":
        return "batch.rejected"
    return event


def document(ledger: Ledger, entry: Entry, event: str, exchange: str, ledger_id: str
             ) -> dict[str, Any]:
    """The JSON document a hook gets for ``entry``."""
    data = entry.data
    doc: dict[str, Any] = {
        "format": HOOK_FORMAT, "event": event,
        # unique per ledger and entry: a receiver drops a second delivery by it
        "id": f"{ledger_id}:{entry.seq}", "ledger_seq": entry.seq, "time": entry.ts,
        "exchange": exchange,
    }
    if event in ("batch.answered", "batch.rejected"):
        doc.update(agency=entry.agency, flow=entry.flow, batch=entry.batch,
                   uid=data.get("uid"), outcome=data.get("outcome"))
        doc.update(_decision(ledger, entry))
    elif event == "ban":
        doc.update({k: data.get(k) for k in ("address", "score", "seconds", "count")})
    elif event == "intake.stopped":
        doc.update(since=data.get("since"), why=data.get("why"))
    elif event == "intake.resumed":
        doc.update(since=data.get("since"))
    elif event == "agreement.ending":
        key = str(data.get("key", ""))
        doc.update(agreement=data.get("agreement"), ends=key.rsplit(":", 1)[-1] or None,
                   notice_due=data.get("due"), clause=data.get("clause"))
    return doc


def _decision(ledger: Ledger, entry: Entry) -> dict[str, Any]:
    """The counts of an answered batch, or the reason codes of a rejected one (from the
    entry that decided it: the same batch and uid, just before)."""
    uid = entry.data.get("uid")
    found: dict[str, Any] = {}
    if entry.batch is None:
        return found
    for earlier in ledger.query(Query(batch=entry.batch, kind="batch.")):
        if earlier.seq >= entry.seq or earlier.data.get("uid") != uid:
            continue
        if earlier.kind == "batch.processed":
            found = {"rows": earlier.data.get("rows"), "counts": earlier.data.get("counts")}
        elif earlier.kind == "batch.rejected":
            found = {"reasons": earlier.data.get("codes")}
    return found


def environment(doc: Mapping[str, Any], hook: str) -> dict[str, str]:
    """The event as environment variables for a command hook (SFTPGo's way: one variable
    per field; the whole document also comes on the command's standard input)."""
    env = {"EXCHANGED_HOOK": hook}
    for key in ("event", "id", "ledger_seq", "time", "exchange", "agency", "flow", "batch",
                "uid", "outcome", "rows", "address", "agreement", "ends"):
        value = doc.get(key)
        if value is not None:
            env[f"EXCHANGED_{key.upper()}"] = str(value)
    if doc.get("reasons"):
        env["EXCHANGED_REASONS"] = ",".join(str(r) for r in doc["reasons"])
    return env
