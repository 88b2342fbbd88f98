"""The agreement's periodic reports: the berita acara (Pasal 3(2)d) and the evaluasi (Pasal 7)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from exchanged.errors import CheckFailed, UsageError
from exchanged.home import Home, atomic_write, load_config
from exchanged.ledger import Query, format_ts, open_ledger, utc_now
from exchanged.ledger.checkpoints import latest, make_checkpoint, read_checkpoint
from exchanged.ledger.merkle import root
from exchanged.policy.loader import load_policy_files, read_policy_files
from exchanged.reports.builders import berita_acara, evaluasi
from exchanged.reports.document import RENDERERS, Document
from exchanged.reports.figures import event_counts, flow_figures, parse_period

KINDS = ("berita-acara", "evaluasi")
EVENT_KINDS = ("login.failed", "upload.interrupted", "batch.failed", "exchange.available",
               "policy.reloaded", "policy.reload_failed", "policy.extended", "policy.terminated",
               "agreement.force_majeure", "ledger.checkpoint")


@dataclass(frozen=True)
class Generated:
    document: Document
    text: str
    sha256: str
    tree_size: int


def generate(home: Home, kind: str, *, agreement_id: str, period_text: str, fmt: str,
             checkpoint: Path | None = None, new_checkpoint: bool = True) -> Generated:
    """Build a report from the ledger up to a signed checkpoint (a new one unless told)."""
    if kind not in KINDS:
        raise UsageError(f"unknown report {kind}")
    if fmt not in RENDERERS:
        raise UsageError(f"unknown format {fmt} (html, md, json)")
    home.require()
    config = load_config(home)
    policy = load_policy_files(read_policy_files(home.policies))
    agreement = policy.agreement(agreement_id)
    if agreement is None:
        known = ", ".join(a.id for a in policy.agreements)
        raise UsageError(f"there is no agreement {agreement_id} (known: {known})")
    period = parse_period(period_text, config.zone)
    ledger = open_ledger(home)
    if checkpoint is not None:
        head = read_checkpoint(checkpoint, home=home)
    elif new_checkpoint:
        head = make_checkpoint(home, ledger, actor="admin").head
    else:
        found = latest(home)
        if found is None:
            raise UsageError("there is no checkpoint yet; make one with 'exchanged ledger "
                             "checkpoint'")
        head = read_checkpoint(found, home=home)
    if head.ledger_id != ledger.ledger_id():
        raise CheckFailed("the checkpoint is of another ledger")
    if root(ledger.leaves(head.tree_size)).hex() != head.root_hash:
        raise CheckFailed("the ledger does not match the checkpoint: no report from it")
    figures = flow_figures(ledger, [f.name for f in agreement.flows], period, head.tree_size)
    generated = format_ts(utc_now())
    if kind == "berita-acara":
        document = berita_acara(agreement, period, figures, head, generated)
    else:
        previous = [e.data.get("period", "") for e in ledger.query(Query(kind="report.generated"))
                    if e.data.get("report") == "evaluasi"
                    and e.data.get("agreement") == agreement.id]
        document = evaluasi(agreement, period, figures,
                            event_counts(ledger, EVENT_KINDS, period, head.tree_size), head,
                            generated, ledger_ok=ledger.verify().ok,
                            previous=[str(p) for p in previous])
    text = RENDERERS[fmt](document)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    ledger.append("report.generated", actor="admin", report=kind, agreement=agreement.id,
                  period=period.label, format=fmt, tree_size=head.tree_size,
                  report_sha256=digest)
    ledger.close()
    return Generated(document, text, digest, head.tree_size)


def write(generated: Generated, output: Path) -> None:
    atomic_write(output, generated.text.encode("utf-8"), mode=0o600)
