"""The agreement's periodic reports: the berita acara (Pasal 3(2)d) and the evaluasi (Pasal 7)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from exchanged import __version__
from exchanged.errors import CheckFailed, UsageError
from exchanged.home import Home, atomic_write, load_config
from exchanged.ledger import Ledger, Query, format_ts, open_ledger, utc_now
from exchanged.ledger.checkpoints import latest, make_checkpoint, read_checkpoint
from exchanged.ledger.merkle import root
from exchanged.ledger.treehead import TreeHead
from exchanged.policy.loader import load_policy_files, read_policy_files
from exchanged.reports.builders import Context, berita_acara, evaluasi
from exchanged.reports.document import Document
from exchanged.reports.figures import (
    Period,
    event_counts,
    flow_figures,
    parse_period,
    previous_period,
)
from exchanged.reports.render import FORMATS, render

KINDS = ("berita-acara", "evaluasi")
EVENT_KINDS = ("login.failed", "upload.interrupted", "batch.failed", "exchange.available",
               "policy.reloaded", "policy.reload_failed", "policy.extended", "policy.terminated",
               "agreement.force_majeure", "ledger.checkpoint")


@dataclass(frozen=True)
class Generated:
    """One report in one or more formats, all from the same checkpoint."""

    document: Document
    outputs: dict[str, bytes]
    tree_size: int

    def sha256(self, fmt: str) -> str:
        return hashlib.sha256(self.outputs[fmt]).hexdigest()


def parse_formats(text: str) -> tuple[str, ...]:
    """``html,md,pdf`` -> its formats, each known, each once.

    >>> parse_formats("html, pdf")
    ('html', 'pdf')
    """
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if not formats or unknown:
        raise UsageError(f"unknown format {', '.join(unknown) or '(none)'} "
                         f"(known: {', '.join(FORMATS)})")
    return formats


def generate(home: Home, kind: str, *, agreement_id: str, period_text: str,
             formats: tuple[str, ...] = ("html",), checkpoint: Path | None = None,
             new_checkpoint: bool = True) -> Generated:
    """Build a report from the ledger up to a signed checkpoint (a new one unless told), in
    every format asked for, and record it once (``report.generated``, each format's SHA-256)."""
    if kind not in KINDS:
        raise UsageError(f"unknown report {kind}")
    home.require()
    config = load_config(home)
    policy = load_policy_files(read_policy_files(home.policies))
    agreement = policy.agreement(agreement_id)
    if agreement is None:
        known = ", ".join(a.id for a in policy.agreements)
        raise UsageError(f"there is no agreement {agreement_id} (known: {known})")
    period = parse_period(period_text, config.zone)
    ledger = open_ledger(home)
    try:
        head = _checkpoint(home, ledger, checkpoint, new_checkpoint)
        now = utc_now()
        ctx = Context(period, head, format_ts(now),
                      open_period=now.astimezone(config.zone).date() <= period.last_day)
        figures = flow_figures(ledger, [f.name for f in agreement.flows], period, head.tree_size)
        if kind == "berita-acara":
            document = berita_acara(agreement, figures, ctx)
        else:
            document = evaluasi(agreement, figures,
                                event_counts(ledger, EVENT_KINDS, period, head.tree_size), ctx,
                                ledger_ok=ledger.verify().ok,
                                previous=_previous_evaluation(ledger, agreement.id, period,
                                                              config.zone))
        templates = home.root / "templates"
        outputs = {fmt: render(document, fmt, templates) for fmt in formats}
        digests = {f"{fmt}_sha256": hashlib.sha256(data).hexdigest()
                   for fmt, data in outputs.items()}
        ledger.append("report.generated", actor="admin", report=kind, agreement=agreement.id,
                      period=period.label, ended=not ctx.open_period, formats=list(formats),
                      tree_size=head.tree_size, version=__version__, **digests)
    finally:
        ledger.close()
    return Generated(document, outputs, head.tree_size)


def _checkpoint(home: Home, ledger: Ledger, checkpoint: Path | None, new: bool) -> TreeHead:
    """The signed tree head the report is computed from, checked against the ledger."""
    if checkpoint is not None:
        head = read_checkpoint(checkpoint, home=home)
    elif new:
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
    return head


def _previous_evaluation(ledger: Ledger, agreement: str, period: Period, zone: ZoneInfo
                         ) -> str:
    """What became of the evaluation of the period before (never this period's own)."""
    before = previous_period(period, zone)
    for entry in ledger.query(Query(kind="report.generated")):
        data = entry.data
        if (data.get("report") == "evaluasi" and data.get("agreement") == agreement
                and data.get("period") == before.label):
            return (f"evaluasi periode sebelumnya ({before.label}) dibuat pada "
                    f"{entry.ts[:10]} (entri ledger {entry.seq})")
    return f"evaluasi periode sebelumnya ({before.label}) belum tercatat"


def write(generated: Generated, output: Path) -> list[Path]:
    """Write every format: to ``output`` itself for one format, else to ``output`` with each
    format's suffix (``berita-acara-2026-H1`` -> ``.html``, ``.pdf``, ...)."""
    written = []
    for fmt, data in generated.outputs.items():
        path = output if len(generated.outputs) == 1 else output.with_name(
            f"{output.name}.{fmt}")
        atomic_write(path, data, mode=0o600)
        written.append(path)
    return written
