"""Administering agreements: check, extend, terminate, explain, replay, test, force majeure.

What each ``exchanged policy ...`` command does; the CLI only parses and
prints. A change is always a new addendum file beside the agreement (the
agreement's own file is never edited) and a ledger entry that archives the
resulting policy set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from exchanged.errors import CheckFailed, ConfigError, LedgerError, UsageError
from exchanged.home import Config, Home, atomic_write, load_config
from exchanged.ledger import check_no_personal_data, format_ts, open_ledger, utc_now
from exchanged.ledger.archive import archive_policy_set, archived_policy_set
from exchanged.policy import Decision, PolicySet, Request, decide
from exchanged.policy.cases import TestReport, agreement_files, load_cases, run_cases
from exchanged.policy.known import known_names
from exchanged.policy.loader import (
    addendum_text,
    load_policy_files,
    next_addendum_number,
    read_policy_files,
)


def today(config: Config | None) -> date:
    zone = config.zone if config else Config().zone
    return datetime.now(zone).date()


def policies_dir(home: Home, policies: Path | None) -> Path:
    """The folder to read: ``--policies DIR`` if given, else the home's ``policies/``."""
    if policies is not None:
        return policies
    home.require()
    return home.policies


@dataclass(frozen=True)
class AgreementStatus:
    id: str
    in_force: bool
    sentence: str
    notes: tuple[str, ...]


def agreement_status(policy: PolicySet, day: date) -> list[AgreementStatus]:
    out = []
    for a in policy.agreements:
        v = a.validity
        if a.terminated_on is not None and day >= a.terminated_on:
            sentence = (f"{a.id}: terminated on {a.terminated_on} ({a.termination_reference}; "
                        f"{a.termination_clause}); it was valid from {v.start} to {v.end}")
        elif day < v.start:
            sentence = f"{a.id}: not yet in force: valid from {v.start} to {v.end} ({v.clause})"
        elif day > v.end:
            sentence = f"{a.id}: expired: it was valid from {v.start} to {v.end} ({v.clause})"
        else:
            sentence = f"{a.id}: in force until {v.end} (valid from {v.start}; {v.clause})"
        notes = []
        for add in a.addenda:
            what = ("extends to " + str(add.extend_until) if add.extend_until else
                    "terminates on " + str(add.terminate_on) if add.terminate_on else
                    "suspends " + ", ".join(f"{f} {s}..{u}" for f, s, u in add.suspend)
                    if add.suspend else "amends " + ", ".join(add.amends))
            label = " (EXAMPLE)" if add.example else ""
            notes.append(f"addendum {add.number}{label}: {what} — {add.reference}")
        m = a.monitoring
        if a.in_force(day):
            notice = v.end - timedelta(days=m.renewal_notice_days)
            notes.append(f"notice to extend or end due by {notice} ({m.renewal_clause})")
        out.append(AgreementStatus(a.id, a.in_force(day), sentence, tuple(notes)))
    return out


def check_policies(home: Home, on: date | None = None, *, policies: Path | None = None
                   ) -> tuple[PolicySet, list[AgreementStatus]]:
    """Validate every policy; say which agreements are in force on ``on`` (default today)."""
    folder = policies_dir(home, policies)
    config = load_config(home) if policies is None else None
    policy = load_policy_files(read_policy_files(folder))
    return policy, agreement_status(policy, on or today(config))


def _record_addendum(home: Home, agreement_id: str, kind: str, text: str, number: int,
                     **fields: Any) -> Path:
    """Write an addendum file, check the policy set with it, archive it, record it."""
    path = home.policies / f"{agreement_id}.addendum-{number:03d}.yaml"
    if path.exists():
        raise ConfigError(f"{path} already exists")
    # what the ledger would refuse (a reference carrying a NIK) is refused before any file
    try:
        check_no_personal_data(fields)
    except LedgerError:
        raise UsageError("the reference holds a 16- or 18-digit number, which could be personal "
                         "data; write the reference without it") from None
    ledger = open_ledger(home)
    atomic_write(path, text.encode("utf-8"))
    try:
        files = read_policy_files(home.policies)
        policy = load_policy_files(files)
        with ledger.transaction() as txn:
            archive_policy_set(txn, files, format_ts(utc_now()))
            txn.append(kind, actor="admin", agreement=agreement_id, addendum=number,
                       file=path.name, policy_sha256=policy.sha256, **fields)
    except BaseException:
        # no addendum in force without its ledger entry
        path.unlink()
        raise
    finally:
        ledger.close()
    return path


def _agreement(home: Home, agreement_id: str) -> tuple[PolicySet, int]:
    home.require()
    policy = load_policy_files(read_policy_files(home.policies))
    if policy.agreement(agreement_id) is None:
        known = ", ".join(a.id for a in policy.agreements) or "none"
        raise UsageError(f"there is no agreement {agreement_id} (known: {known})")
    return policy, next_addendum_number(policy, agreement_id)


def extend_agreement(home: Home, agreement_id: str, *, until: date, reference: str,
                     example: bool = False) -> Path:
    """Record a written extension (Pasal 6(2), 12(2)) as an addendum file."""
    if not reference.strip():
        raise UsageError("--reference must name the written agreement to extend")
    policy, number = _agreement(home, agreement_id)
    agreement = policy.agreement(agreement_id)
    assert agreement is not None
    if until <= agreement.validity.end:
        raise UsageError(f"{until} does not extend {agreement_id}: it is already valid until "
                         f"{agreement.validity.end}")
    text = addendum_text(agreement_id, number, reference.strip(), format_ts(utc_now()),
                         extend_until=until, clause=agreement.changes_clause or "addendum",
                         example=example)
    return _record_addendum(home, agreement_id, "policy.extended", text, number,
                            until=until.isoformat(), reference=reference.strip()[:200])


def terminate_agreement(home: Home, agreement_id: str, *, on: date, reference: str,
                        clause: str = "Pasal 6 ayat (2) dan (3)") -> Path:
    """Record the end of an agreement (Pasal 6(2) early end, 6(3) a regulation forbids it)."""
    if not reference.strip():
        raise UsageError("--reference must name the written agreement or regulation that ends it")
    policy, number = _agreement(home, agreement_id)
    agreement = policy.agreement(agreement_id)
    assert agreement is not None
    if agreement.terminated_on is not None:
        raise UsageError(f"{agreement_id} was already terminated on {agreement.terminated_on}")
    text = addendum_text(agreement_id, number, reference.strip(), format_ts(utc_now()),
                         terminate_on=on, clause=clause)
    return _record_addendum(home, agreement_id, "policy.terminated", text, number,
                            on=on.isoformat(), reference=reference.strip()[:200], clause=clause)


@dataclass(frozen=True)
class ForceMajeure:
    seq: int
    notified: date
    deadline: date
    late: bool


def record_force_majeure(home: Home, agreement_id: str, *, party: str, occurred: date,
                         reference: str) -> ForceMajeure:
    """Record a force majeure notice (Pasal 10): due within the policy's notice days."""
    policy, _ = _agreement(home, agreement_id)
    agreement = policy.agreement(agreement_id)
    assert agreement is not None
    if agreement.party(party) is None:
        raise UsageError(f"{party} is not a party to {agreement_id} (its parties: "
                         f"{', '.join(p.id for p in agreement.parties)})")
    if not reference.strip():
        raise UsageError("--reference must name the written notice")
    notified = today(load_config(home))
    if occurred > notified:
        raise UsageError(f"{occurred} is in the future")
    m = agreement.monitoring
    deadline = occurred + timedelta(days=m.force_majeure_notice_days)
    late = notified > deadline
    ledger = open_ledger(home)
    seq = ledger.append("agreement.force_majeure", actor="admin", agency=party,
                        agreement=agreement_id, occurred=occurred.isoformat(),
                        notified=notified.isoformat(), deadline=deadline.isoformat(), late=late,
                        clause=m.force_majeure_clause, reference=reference.strip()[:200])
    ledger.close()
    return ForceMajeure(seq, notified, deadline, late)


def explain(home: Home, request: Request, *, policies: Path | None = None) -> Decision:
    """The full decision for a request against the policies in force (or a given folder)."""
    policy = load_policy_files(read_policy_files(policies_dir(home, policies)))
    known = known_names(home, policy)
    known.check(agency=request.agency, flow=request.flow)
    if request.recipient is not None:
        known.check(agency=request.recipient, option="--recipient")
    return decide(policy, request)


@dataclass(frozen=True)
class Replay:
    seq: int
    kind: str
    recorded: dict[str, object]
    decision: Decision

    @property
    def same(self) -> bool:
        return (self.recorded.get("decision") == ("allow" if self.decision.allow else "deny")
                and list(self.recorded.get("rules", [])) == list(self.decision.rule_ids))  # type: ignore[call-overload]


def replay(home: Home, seq: int) -> Replay:
    """Replay the policy decision recorded at ledger entry ``seq`` against the policy of its day."""
    home.require()
    ledger = open_ledger(home, readonly=True)
    entry = ledger.entry(seq)
    if entry is None:
        raise UsageError(f"there is no ledger entry {seq}")
    data = entry.data
    if ("policy_sha256" not in data or "on" not in data or entry.agency is None
            or entry.flow is None):
        raise UsageError(f"ledger entry {seq} ({entry.kind}) is not a policy decision")
    files = archived_policy_set(ledger.connection(), str(data["policy_sha256"]))
    if files is None:
        raise CheckFailed(f"the policy set {str(data['policy_sha256'])[:12]} of entry {seq} "
                          "is not in the archive")
    policy = load_policy_files(files)
    columns = data.get("columns")
    found = policy.find_flow(entry.flow)
    request = Request(
        agency=entry.agency, flow=entry.flow, on=date.fromisoformat(str(data["on"])),
        columns=tuple(columns) if isinstance(columns, list) else None,
        size=int(data["size"]) if isinstance(data.get("size"), int) else None,
        recipient=entry.agency,
        disclose=found[1].discloses if found is not None and isinstance(columns, list) else None,
    )
    return Replay(seq, entry.kind, data, decide(policy, request))


def test_policies(home: Home, files: list[Path], *, policies: Path | None = None,
                  with_addenda: bool = False) -> TestReport:
    """Run policy test files (default: ``tests/*.yaml`` beside the policies)."""
    folder = policies_dir(home, policies)
    if not files:
        files = sorted((folder / "tests").glob("*.yaml"))
        if not files:
            raise UsageError(f"no policy tests in {folder / 'tests'}")
    cases = []
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e.strerror}") from None
        cases.extend(load_cases(path.name, raw))
    return run_cases(agreement_files(folder, with_addenda=with_addenda), cases)


def decision_json(decision: Decision) -> str:
    req = decision.request
    return json.dumps({
        "allow": decision.allow,
        "agreement": decision.agreement,
        "purpose": decision.purpose,
        "policy_sha256": decision.policy_sha256,
        "request": {"agency": req.agency, "flow": req.flow, "date": req.on.isoformat(),
                    "columns": list(req.columns) if req.columns is not None else None,
                    "size": req.size, "rows": req.rows, "recipient": req.recipient},
        "decided_by": list(decision.rule_ids),
        "rules": [r.as_dict() for r in decision.evaluated],
        "reasons": [{"code": r.code, "message": r.message, "pesan": r.pesan}
                    for r in decision.reasons],
        "disclosed": list(decision.disclosed),
    }, ensure_ascii=False, indent=2)
