"""Retention: deleting what the agreements say may no longer be kept, and recording it.

Per agreement (its ``retention`` in the policy): encrypted uploads after
``encrypted_uploads_days``, sealed outcomes (in the spool and the agency's
outbox) after ``outcomes_days``, counted from the batch's answer; and, once the
agreement has ended (expired or terminated) plus ``after_end_days``, everything
received under it, its reference snapshots included (Pasal 9 ayat (6); UU 27/2022
Pasal 42-44). Besides: uploads left under a temporary name that were never
renamed, and any stray plaintext in the work area. Each purge is a
``retention.purged`` ledger entry saying what and how much went (never which
person).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from exchanged.batch.spool import META_FILE, OUTCOME_FILE, REASONS_FILE, UPLOAD_FILE
from exchanged.batch.state import ANSWERED, State
from exchanged.home import Config, Home
from exchanged.ledger import Ledger, format_ts
from exchanged.policy.model import Agreement, PolicySet

log = logging.getLogger("exchanged.admin.retention")

#: an upload under a temporary name that was not renamed within this long is dropped
HELD_UPLOAD_DAYS = 2
#: a folder in the work area older than this belongs to no running batch
STRAY_PLAINTEXT_HOURS = 24


@dataclass
class Purge:
    artefact: str
    agreement: str | None
    files: int = 0
    bytes: int = 0
    #: rows removed from the exchange's own tables (the counted comparisons' keyed NIPs)
    rows: int = 0

    def remove(self, path: Path) -> None:
        try:
            if path.is_dir() and not path.is_symlink():
                size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
                count = sum(1 for p in path.rglob("*") if p.is_file())
                shutil.rmtree(path)
            else:
                size, count = path.stat().st_size, 1
                path.unlink()
        except FileNotFoundError:
            return
        self.files += count
        self.bytes += size


def _answered_before(ledger: Ledger, flows: list[str], before: str) -> list[tuple[str, str, str,
                                                                                 str | None]]:
    if not flows:
        return []
    marks = ",".join("?" * len(flows))
    rows = ledger.connection().execute(
        f"SELECT uid, agency, flow, outcome_name FROM batches WHERE stage = ? "
        f"AND flow IN ({marks}) AND updated_at < ?", (ANSWERED, *flows, before)).fetchall()
    return [(str(u), str(a), str(f), None if o is None else str(o)) for u, a, f, o in rows]


def run_retention(home: Home, config: Config, ledger: Ledger, policy: PolicySet,
                  now: datetime) -> list[Purge]:
    """One retention pass; returns the purges made (and records each in the ledger)."""
    purges: list[Purge] = []
    today = now.astimezone(config.zone).date()
    for agreement in policy.agreements:
        purges += _agreement_retention(home, ledger, agreement, now, today)
    held = Purge("held-uploads", None)
    cutoff = time.time() - HELD_UPLOAD_DAYS * 86400
    for inbox in home.drop.glob("*/inbox/*"):
        for path in inbox.iterdir():
            if path.is_file() and path.lstat().st_mtime < cutoff:
                held.remove(path)
    stray = Purge("plaintext", None)
    cutoff = time.time() - STRAY_PLAINTEXT_HOURS * 3600
    for path in home.work.iterdir():
        if path.lstat().st_mtime < cutoff:
            stray.remove(path)
    purges += [p for p in (held, stray) if p.files]
    for p in purges:
        ledger.append("retention.purged", actor="exchange", artefact=p.artefact,
                      agreement=p.agreement, files=p.files, bytes=p.bytes, rows=p.rows)
        log.info("retention: removed %d %s file(s) (%d bytes)", p.files, p.artefact, p.bytes)
    # every run leaves a trace, also when there was nothing to remove
    ledger.append("retention.checked", actor="exchange", purges=len(purges),
                  files=sum(p.files for p in purges), bytes=sum(p.bytes for p in purges))
    return purges


def _agreement_retention(home: Home, ledger: Ledger, agreement: Agreement, now: datetime,
                         today: date) -> list[Purge]:
    r = agreement.retention
    flows = [f.name for f in agreement.flows]
    ended = agreement.last_day + timedelta(days=r.after_end_days) < today
    if ended:
        # the agreement is over: nothing received under it stays (the ledger does: it
        # holds no personal data)
        everything = Purge("agreement-ended", agreement.id)
        for uid, agency, flow_name, outcome in _answered_before(ledger, flows, format_ts(now)):
            everything.remove(home.batches / uid)
            if outcome:
                everything.remove(home.outbox(agency, flow_name) / outcome)
        for dataset in (f.dataset for f in agreement.flows if f.dataset):
            folder = home.reference / dataset
            if folder.exists():
                for snapshot in folder.iterdir():
                    everything.remove(snapshot)
            with ledger.transaction() as txn:
                State(ledger).remove_dataset(txn, dataset)
        with ledger.transaction() as txn:
            # the keyed NIPs its bounded comparisons counted: nothing of it stays
            everything.rows = State(ledger).forget_comparisons(txn, flows) if flows else 0
        return [everything] if everything.files or everything.rows else []
    uploads = Purge("encrypted-uploads", agreement.id)
    before = format_ts(now - timedelta(days=r.encrypted_uploads_days))
    for uid, _, _, _ in _answered_before(ledger, flows, before):
        uploads.remove(home.batches / uid / UPLOAD_FILE)
        uploads.remove(home.batches / uid / META_FILE)
    outcomes = Purge("outcomes", agreement.id)
    before = format_ts(now - timedelta(days=r.outcomes_days))
    for uid, agency, flow_name, outcome in _answered_before(ledger, flows, before):
        outcomes.remove(home.batches / uid / OUTCOME_FILE)
        outcomes.remove(home.batches / uid / REASONS_FILE)
        if outcome:
            outcomes.remove(home.outbox(agency, flow_name) / outcome)
        folder = home.batches / uid
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return [p for p in (uploads, outcomes) if p.files]
