"""What 'exchanged status' shows: the daemon, the queue, the last batches, the agreements'
dates, the next scheduled jobs, the ledger. Read from the home; works with the daemon
running or not."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from exchanged.admin.agreements import agreement_status, today
from exchanged.batch.state import State
from exchanged.errors import CheckFailed, PolicyError
from exchanged.home import Home, load_config
from exchanged.home.lock import daemon_running
from exchanged.ledger import Ledger, open_ledger
from exchanged.ledger.archive import archived_policy_set
from exchanged.ledger.checkpoints import latest
from exchanged.policy import PolicySet
from exchanged.policy.loader import load_policy_files, read_policy_files


@dataclass(frozen=True)
class Status:
    running: bool
    daemon: dict[str, Any]
    queue: dict[str, int]
    recent: list[dict[str, Any]]
    agreements: list[dict[str, Any]]
    ledger_entries: int
    last_checkpoint: str | None
    next_jobs: dict[str, str | None] = field(default_factory=dict)
    #: batches set aside after their last retry, for 'exchanged batch requeue'
    shunted: list[dict[str, Any]] = field(default_factory=list)
    #: why the policy files are invalid now (the daemon runs on the previous policy)
    policy_error: str | None = None
    #: the policy set whose agreements are listed
    policy_sha256: str | None = None


def status(home: Home, on: date | None = None) -> Status:
    home.require()
    config = load_config(home)
    running = daemon_running(home)
    daemon: dict[str, Any] = {}
    if running and home.daemon_file.exists():
        try:
            daemon = json.loads(home.daemon_file.read_bytes())
        except (OSError, ValueError):
            daemon = {}
    ledger = open_ledger(home, readonly=True)
    state = State(ledger)
    queue: dict[str, int] = {}
    for batch in state.unfinished():
        queue[batch.stage] = queue.get(batch.stage, 0) + 1
    recent = [{"received": b.received_at, "agency": b.agency, "flow": b.flow,
               "batch": b.batch_id, "stage": b.stage, "outcome": b.outcome_kind}
              for b in state.recent(10)]
    policy, policy_error = _policy(home, ledger, daemon)
    day = on or today(config)
    agreements = []
    for a, s in zip(policy.agreements if policy else (),
                    agreement_status(policy, day) if policy else (), strict=True):
        agreements.append({
            "id": a.id, "in_force": s.in_force, "summary": s.sentence,
            "valid_from": a.validity.start.isoformat(), "valid_until": a.validity.end.isoformat(),
            "notice_due": (a.validity.end - timedelta(days=a.monitoring.renewal_notice_days)
                           ).isoformat(),
            "terminated_on": a.terminated_on.isoformat() if a.terminated_on else None,
        })
    checkpoint = latest(home)
    entries = ledger.head()[0]
    shunted = [{"uid": b.uid, "received": b.received_at, "agency": b.agency, "flow": b.flow,
                "batch": b.batch_id, "stage": b.stage} for b in state.shunted()]
    ledger.close()
    return Status(running, daemon, queue, recent, agreements, entries,
                  checkpoint.name if checkpoint else None,
                  dict(daemon.get("next_jobs", {})), shunted, policy_error,
                  policy.sha256 if policy else None)


def _policy(home: Home, ledger: Ledger, daemon: dict[str, Any]
            ) -> tuple[PolicySet | None, str | None]:
    """The policy whose agreements status shows, and why the files are invalid if they are.

    The files as they are now, if valid; else the set the running daemon uses (it keeps
    the previous policy when a reload is refused), from the ledger's archive."""
    try:
        return load_policy_files(read_policy_files(home.policies)), None
    except PolicyError as e:
        error = e.diagnostics()
    running = daemon.get("policy_sha256")
    if isinstance(running, str):
        try:
            files = archived_policy_set(ledger.connection(), running)
            if files is not None:
                return load_policy_files(files), error
        except (CheckFailed, ValueError):
            pass
    return None, error
