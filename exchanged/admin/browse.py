"""``exchanged ledger browse``: the ledger in a browser, read-only, on 127.0.0.1 only.

For compliance staff who do not write SQL: Datasette serves a *view* of the
ledger with saved (canned) queries for the questions they ask and a description
of every table, column and entry kind. The view is a copy made at start-up, in
one read transaction of ``ledger.db`` (so it is consistent, and sees what the
daemon wrote to the WAL), into a private temporary folder, and Datasette opens
it **immutable**: SQLite itself refuses every write, and Datasette's own SQL
runs read-only besides. The copy holds only what the ledger is: the entries,
its metadata and the policy archive, plus tables derived from them (one row per
upload, the entry kinds, the reason codes) — never the daemon's working tables
beside it (``comparisons`` keeps NIPs as keyed values). Nothing is served but
on 127.0.0.1, no plugin is loaded but Datasette's own read-only ones, the file
cannot be downloaded whole, and no one is root: there is no administration over
HTTP. Restart the command to see newer entries.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from exchanged.errors import UsageError
from exchanged.home import Home, load_config
from exchanged.home.keyed import existing_hasher
from exchanged.ledger import Ledger, open_ledger
from exchanged.ledger.batches import batches
from exchanged.ledger.kinds import KINDS
from exchanged.reasons import CATALOGUE, LABELS, ROW_LABELS

LOOPBACK = "127.0.0.1"
DATABASE = "ledger"
#: the ledger's own tables, copied as they are; nothing else of ledger.db is
COPIED = ("ledger_meta", "ledger", "policy_sets")
#: rows copied per statement (memory stays one chunk's, whatever the ledger's size)
CHUNK = 5000

DERIVED_SCHEMA = """
CREATE TABLE uploads (
    agency TEXT, flow TEXT, batch TEXT, uid TEXT PRIMARY KEY, received TEXT, rows INTEGER,
    outcome TEXT, counts TEXT, codes TEXT, answered TEXT, outcome_name TEXT,
    outcome_name_sha256 TEXT, outcome_name_hmac TEXT, downloaded TEXT, seq INTEGER);
CREATE INDEX uploads_by_received ON uploads(received);
CREATE TABLE entry_kinds (kind TEXT PRIMARY KEY, family TEXT, description TEXT);
CREATE TABLE reason_codes (code TEXT PRIMARY KEY, level TEXT, label_en TEXT, label_id TEXT,
    message_en TEXT, message_id TEXT);
"""


@dataclass(frozen=True)
class View:
    """The copy Datasette serves: where, and which entries it holds."""

    path: Path
    entries: int
    head_hash: str
    made: str
    uploads: int


def build_view(ledger: Ledger, path: Path,
               name_hash: Callable[[str], str] | None = None) -> View:
    """Copy the ledger's tables and the derived ones into a new database at ``path``
    (``name_hash``: the exchange's keyed hash, with which sessions name what they
    downloaded; see exchanged.ledger.batches)."""
    source = ledger.connection()
    target = sqlite3.connect(path, isolation_level=None)
    try:
        os.chmod(path, 0o600)
        target.execute("PRAGMA journal_mode=OFF")
        target.executescript(DERIVED_SCHEMA)  # (executescript commits: before the transaction)
        target.execute("BEGIN")
        source.execute("BEGIN")  # one read transaction: every table as of the same moment
        try:
            for (sql,) in source.execute(
                    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name IN "
                    f"({','.join('?' * len(COPIED))}) ORDER BY type = 'table' DESC, rowid",
                    COPIED).fetchall():
                target.execute(sql)
            for table in COPIED:
                _copy(source, target, table)
            uploads = _uploads(ledger, target, name_hash)
            head = source.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"
                                  ).fetchone()
        finally:
            source.execute("COMMIT")
        target.executemany("INSERT INTO entry_kinds VALUES (?, ?, ?)",
                           [(k, k.split(".")[0], d) for k, d in sorted(KINDS.items())])
        target.executemany(
            "INSERT INTO reason_codes VALUES (?, 'batch', ?, ?, ?, ?)",
            [(c, *LABELS.get(c, (c, c)), en, id_) for c, (en, id_) in sorted(CATALOGUE.items())])
        target.executemany("INSERT INTO reason_codes VALUES (?, 'row', ?, ?, ?, ?)",
                           [(c, en, id_, en, id_) for c, (en, id_) in sorted(ROW_LABELS.items())])
        target.execute("COMMIT")
    finally:
        target.close()
    made = datetime.now().astimezone().isoformat(timespec="seconds")
    return View(path, int(head[0]) if head else 0, str(head[1]) if head else "", made, uploads)


def _copy(source: sqlite3.Connection, target: sqlite3.Connection, table: str) -> None:
    cursor = source.execute(f"SELECT * FROM {table}")
    width = len(cursor.description)
    insert = f"INSERT INTO {table} VALUES ({','.join('?' * width)})"
    while chunk := cursor.fetchmany(CHUNK):
        target.executemany(insert, chunk)


def _uploads(ledger: Ledger, target: sqlite3.Connection,
             name_hash: Callable[[str], str] | None) -> int:
    count = 0
    for row in batches(ledger, name_hash=name_hash):
        name = row.outcome_name
        target.execute(
            "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.agency, row.flow, row.batch, row.uid, row.received, row.rows, row.outcome,
             json.dumps(row.counts, sort_keys=True) if row.counts else None,
             " ".join(row.codes) or None, row.answered, name,
             hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
             if name else None, name_hash(name) if name and name_hash else None,
             row.downloaded, row.seq))
        count += 1
    return count


def _offset(zone: ZoneInfo) -> str:
    """The zone's offset from UTC as an SQLite modifier (``+420 minutes``)."""
    delta = datetime.now(zone).utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    return f"{minutes:+d} minutes"


def queries(zone: ZoneInfo) -> dict[str, dict[str, str]]:
    """The saved queries: the questions compliance staff ask, in the home's time zone."""
    local = _offset(zone)
    month = (f"coalesce(nullif(:month, ''), strftime('%Y-%m', 'now', '{local}', "
             "'start of month', '-1 month'))")
    return {
        "batches_by_month": {
            "title": "Batches of a month by agency and outcome (default: last month)",
            "description": "Every upload received in the month (YYYY-MM, days in the home's "
            "time zone; empty: last month), counted by agency, flow and outcome (result, "
            "rejected, pending), with their batch ids.",
            "sql": "select agency, flow, outcome, count(*) as batches, sum(rows) as rows, "
            "group_concat(batch, ' ') as batch_ids from uploads "
            f"where strftime('%Y-%m', received, '{local}') = {month} "
            "group by agency, flow, outcome order by agency, flow, outcome",
        },
        "refusals_by_reason": {
            "title": "Refusals by reason",
            "description": "Refused batches counted by reason code (a batch refused for two "
            "reasons counts under each), with the label in Indonesian and English; a month "
            "(YYYY-MM) narrows it, empty: all.",
            "sql": "select c.value as code, r.label_id as alasan, r.label_en as reason, "
            "count(*) as batches, group_concat(l.batch, ' ') as batch_ids "
            "from ledger l join json_each(json_extract(l.data, '$.codes')) c "
            "left join reason_codes r on r.code = c.value "
            "where l.kind = 'batch.rejected' and (coalesce(:month, '') = '' or "
            f"strftime('%Y-%m', l.ts, '{local}') = :month) "
            "group by c.value order by batches desc, code",
        },
        "who_downloaded_what": {
            "title": "Who downloaded what",
            "description": "The outcomes each agency downloaded, newest first, with the "
            "upload each answered: per SFTP session (one session.ended entry lists every "
            "outcome it downloaded and how often; 'when' is the session's end), and the "
            "single outcome.downloaded entries of earlier versions.",
            "sql": "select s.ts as \"when\", s.agency, json_extract(o.value, '$.flow') as flow, "
            "json_extract(o.value, '$.batch') as batch, u.uid, u.outcome, u.outcome_name, "
            "json_extract(o.value, '$.downloads') as downloads, s.seq as seq "
            "from ledger s join json_each(s.data, '$.outcomes') o "
            "left join uploads u on u.agency = s.agency "
            "and u.flow = json_extract(o.value, '$.flow') "
            "and u.outcome_name_hmac = json_extract(o.value, '$.name_hmac') "
            "where s.kind in ('session.ended', 'session.activity') "
            "and json_extract(o.value, '$.downloads') > 0 "
            "union all "
            "select d.ts, d.agency, d.flow, d.batch, u.uid, u.outcome, u.outcome_name, 1, d.seq "
            "from ledger d left join uploads u on u.agency = d.agency and u.flow = d.flow "
            "and u.outcome_name_sha256 = json_extract(d.data, '$.name_sha256') "
            "where d.kind = 'outcome.downloaded' order by seq desc",
        },
        "decisions_under_addendum": {
            "title": "Decisions under a given addendum",
            "description": "Policy decisions (batch.admitted, batch.rejected) taken under a "
            "policy set that held the addendum: give its file name, its number's part "
            "(addendum-001) or words of its reference. The addenda are listed by the "
            "saved query 'addenda'.",
            "sql": "select l.seq, l.ts, l.kind, l.agency, l.flow, l.batch, "
            "json_extract(l.data, '$.decision') as decision, "
            "json_extract(l.data, '$.rules') as rules, json_extract(l.data, '$.codes') as codes, "
            "json_extract(l.data, '$.policy_sha256') as policy_sha256 "
            "from ledger l join policy_sets p on p.sha256 = json_extract(l.data, "
            "'$.policy_sha256') where l.kind in ('batch.admitted', 'batch.rejected') "
            "and coalesce(:addendum, '') != '' and exists (select 1 from json_each(p.files) f "
            "where f.key like '%addendum%' and (f.key like '%' || :addendum || '%' "
            "or f.value like '%' || :addendum || '%')) order by l.seq",
        },
        "addenda": {
            "title": "Addenda recorded",
            "description": "Every extension and termination recorded (policy.extended, "
            "policy.terminated): agreement, number, reference, dates.",
            "sql": "select seq, ts, kind, json_extract(data, '$.agreement') as agreement, "
            "json_extract(data, '$.number') as number, "
            "json_extract(data, '$.reference') as reference, "
            "json_extract(data, '$.file') as file, data from ledger "
            "where kind in ('policy.extended', 'policy.terminated') order by seq",
        },
    }


LEDGER_COLUMNS = {
    "seq": "1, 2, 3, ... without gaps",
    "ts": "UTC time, YYYY-MM-DDTHH:MM:SS.ffffffZ",
    "kind": "what happened: one of the entry kinds (the table entry_kinds describes each)",
    "agency": "the agency it concerns",
    "flow": "the flow it concerns",
    "batch": "the agency's batch id, or the exchange's uid for an upload whose name was refused",
    "actor": "who acted: an agency id, exchange, admin, or unknown (a failed login)",
    "data": "the details, as canonical JSON",
    "prev": "the hash of the entry before",
    "leaf": "the entry's Merkle leaf hash",
    "hash": "SHA-256 of prev and leaf: the chain",
}


def metadata(view: View, zone: ZoneInfo) -> dict[str, Any]:
    """Datasette's metadata: what every table, column and entry kind is, and the queries."""
    from html import escape

    kinds = "".join(f"<li><code>{escape(k)}</code>: {escape(d)}</li>"
                    for k, d in sorted(KINDS.items()))
    return {
        "title": "exchanged: the ledger (read-only)",
        "description": f"A read-only copy of the ledger made {view.made}: entries 1 to "
        f"{view.entries} (head {view.head_hash[:16]}...), {view.uploads} uploads. It holds no "
        "personal data. Restart 'exchanged ledger browse' to see newer entries.",
        "databases": {DATABASE: {
            "description": "The ledger: every upload, decision, outcome, download, login "
            "failure, policy change and report, hash-chained. Start with the saved queries "
            "below, or the table uploads (one row per upload).",
            "queries": queries(zone),
            "tables": {
                "ledger": {
                    "description_html": "The append-only, hash-chained entries "
                    "(docs/ledger.md). Each entry's <code>kind</code> is one of:"
                    f"<ul>{kinds}</ul>",
                    "columns": LEDGER_COLUMNS,
                },
                "ledger_meta": {"description": "The ledger's id, schema version and creation "
                                "time; written once."},
                "policy_sets": {
                    "description": "The policy archive: every policy set a decision was taken "
                    "under, by its SHA-256 (the policy_sha256 of decisions), with its exact "
                    "files as JSON (name: text), the addenda among them.",
                    "columns": {"sha256": "SHA-256 of the files", "archived_at": "when first "
                                "archived (UTC)", "files": "JSON: file name -> its text"},
                },
                "uploads": {
                    "description": "Derived from the entries (as 'exchanged ledger batches'): "
                    "one row per upload received, and what became of it.",
                    "columns": {
                        "uid": "the exchange's id of the upload",
                        "received": "when the upload was received (UTC)",
                        "rows": "rows answered (a result)",
                        "outcome": "result, rejected, or pending (not answered yet)",
                        "counts": "the answer's rows by status (JSON)",
                        "codes": "the reason codes of a refusal",
                        "answered": "when the outcome was placed in the outbox (UTC)",
                        "outcome_name": "the outcome's file name in the agency's outbox",
                        "outcome_name_sha256": "SHA-256 of outcome_name (outcome.downloaded "
                        "entries of earlier versions name it so)",
                        "outcome_name_hmac": "the exchange's keyed hash of outcome_name (sessions "
                        "name the outcomes they downloaded so)",
                        "downloaded": "when the agency first downloaded it completely (UTC)",
                        "seq": "the batch.received entry",
                    },
                },
                "entry_kinds": {"description": "Every kind of ledger entry and what it "
                                "records (from the code's own list)."},
                "reason_codes": {"description": "Every reason code: level 'batch' refuses a "
                                 "batch, level 'row' says why one answer row is TIDAK_VALID "
                                 "(the answer's alasan column)."},
            },
        }},
    }


def _lock_down_plugins() -> None:
    """Only Datasette's own plugins that read and render; none installed beside it."""
    from datasette.plugins import DEFAULT_PLUGINS, pm

    keep = {p for p in DEFAULT_PLUGINS if not p.startswith("datasette.publish")}
    for plugin in list(pm.get_plugins()):
        if pm.get_name(plugin) not in keep:
            pm.unregister(plugin)


def check_host(host: str) -> str:
    if host != LOOPBACK:
        raise UsageError(f"the ledger browser listens on {LOOPBACK} only, never on {host}: "
                         "reach it from elsewhere through an SSH tunnel "
                         "(ssh -L 8001:127.0.0.1:8001 ...)")
    return host


def serve(home: Home, *, host: str = LOOPBACK, port: int = 8001,
          say: Callable[[str], None] = print) -> None:
    """Serve a read-only view of the ledger with Datasette until interrupted."""
    check_host(host)
    home.require()
    config = load_config(home)
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise UsageError(f"port {port} on {host} is in use; choose another with "
                             "--port") from None
    with tempfile.TemporaryDirectory(prefix="exchanged-browse-") as folder:
        ledger = open_ledger(home, readonly=True)
        try:
            view = build_view(ledger, Path(folder) / f"{DATABASE}.db",
                              existing_hasher(home.ledger_hmac_key))
        finally:
            ledger.close()
        _lock_down_plugins()
        import asyncio

        import uvicorn
        from datasette.app import Datasette

        app = Datasette(immutables=[str(view.path)], metadata=metadata(view, config.zone),
                        settings={"allow_download": False, "default_allow_sql": True,
                                  "sql_time_limit_ms": 3000, "max_returned_rows": 1000})
        asyncio.run(app.invoke_startup())
        say(f"serving a read-only copy of the ledger (entries 1..{view.entries}) at "
            f"http://{host}:{port}/{DATABASE} until Ctrl-C")
        # uvicorn stops on SIGTERM, then raises it again with the handler it found: let that
        # be an exit that removes the copy, not the default's sudden death
        previous = signal.signal(signal.SIGTERM, _exit)
        try:
            uvicorn.run(app.app(), host=host, port=port, log_level="warning")
        finally:
            signal.signal(signal.SIGTERM, previous)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)
