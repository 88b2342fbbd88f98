"""The policy engine: facts in, a decision out, every decision explained.

Pure: no I/O. Rules are derived from the agreement's values, each with a
stable id and the clause (Pasal) it implements. Evaluation follows the
Cedar/OPA school: default deny; a request is allowed only if some permit
rule matches and no forbid rule does (a forbid beats a permit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from exchanged.errors import Reason
from exchanged.policy.model import Agreement, Flow, PolicySet
from exchanged.reasons import reason


@dataclass(frozen=True)
class Request:
    """The facts of a request: who sends which flow, when, with what."""

    agency: str
    flow: str
    on: date
    columns: tuple[str, ...] | None = None
    size: int | None = None


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict on a request."""

    rule: str
    effect: str  # "permit" | "forbid"
    clause: str
    matched: bool
    reason: Reason | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rule": self.rule,
            "effect": self.effect,
            "clause": self.clause,
            "matched": self.matched,
        }
        if self.reason is not None:
            out["code"] = self.reason.code
        return out


@dataclass(frozen=True)
class Decision:
    allow: bool
    agency: str
    flow: str
    on: date
    agreement: str | None
    evaluated: tuple[RuleResult, ...]
    reasons: tuple[Reason, ...]
    policy_sha256: str
    disclosed: tuple[str, ...] = ()

    @property
    def deciding(self) -> tuple[RuleResult, ...]:
        """The rules that decided: the matched forbids if denied, else the matched permits."""
        if self.allow:
            return tuple(r for r in self.evaluated if r.matched and r.effect == "permit")
        forbids = tuple(r for r in self.evaluated if r.matched and r.effect == "forbid")
        return forbids or tuple(r for r in self.evaluated if r.effect == "permit")

    def ledger_fields(self) -> dict[str, object]:
        """What the ledger records of a decision: no values, only rule ids and codes."""
        return {
            "decision": "allow" if self.allow else "deny",
            "agreement": self.agreement,
            "rules": [r.rule for r in self.deciding],
            "clauses": sorted({r.clause for r in self.deciding}),
            "codes": [r.code for r in self.reasons],
            "policy_sha256": self.policy_sha256,
            "on": self.on.isoformat(),
            "disclosed": list(self.disclosed),
        }


@dataclass(frozen=True)
class Rule:
    """A rule: an id, an effect, the clause it implements and its condition."""

    id: str
    effect: str
    clause: str
    #: returns a Reason when the rule matches (for a forbid) or an empty Reason for a permit
    check: Callable[[Request], Reason | None]


def rules_for(agreement: Agreement, flow: Flow) -> tuple[Rule, ...]:
    """The rules that govern one flow of one agreement, in evaluation order."""
    v = agreement.validity

    def sender(req: Request) -> Reason | None:
        return Reason("PERMIT", "") if req.agency == flow.sender else None

    def validity(req: Request) -> Reason | None:
        if v.start <= req.on <= v.end:
            return None
        return reason(
            "AGREEMENT_NOT_IN_FORCE",
            agreement=agreement.id,
            date=req.on.isoformat(),
            start=v.start.isoformat(),
            end=v.end.isoformat(),
            clause=v.clause,
        )

    def terminated(req: Request) -> Reason | None:
        if agreement.terminated_on is None or req.on < agreement.terminated_on:
            return None
        return reason(
            "AGREEMENT_TERMINATED",
            agreement=agreement.id,
            date=agreement.terminated_on.isoformat(),
            reference=agreement.termination_reference,
            clause=agreement.termination_clause,
        )

    def required(req: Request) -> Reason | None:
        if req.columns is None:
            return None
        for name in flow.required:
            if name not in req.columns:
                return reason(
                    "MISSING_COLUMN", column=name, flow=flow.name, required=", ".join(flow.required)
                )
        return None

    def listed(req: Request) -> Reason | None:
        if req.columns is None:
            return None
        for name in req.columns:
            if name not in flow.allowed:
                return reason(
                    "COLUMN_NOT_ALLOWED",
                    column=name,
                    flow=flow.name,
                    clause=flow.columns_clause,
                    allowed=", ".join(flow.allowed),
                )
        return None

    def size(req: Request) -> Reason | None:
        if req.size is None or flow.max_bytes is None or req.size <= flow.max_bytes:
            return None
        return reason("UPLOAD_TOO_LARGE", size=req.size, limit=flow.max_bytes)

    rules = [
        Rule(f"{flow.name}.sender", "permit", flow.clause, sender),
        Rule("agreement.validity", "forbid", v.clause, validity),
        Rule("agreement.terminated", "forbid", agreement.termination_clause or v.clause, terminated),
        Rule(f"{flow.name}.columns.required", "forbid", flow.columns_clause, required),
        Rule(f"{flow.name}.columns.listed", "forbid", flow.columns_clause, listed),
    ]
    if flow.max_bytes is not None:
        rules.append(Rule(f"{flow.name}.size", "forbid", flow.clause, size))
    return tuple(rules)


def decide(policy: PolicySet, req: Request) -> Decision:
    """Evaluate a request against the policy set: default deny, forbid beats permit."""
    found = policy.find_flow(req.flow)
    if found is None:
        return Decision(
            allow=False,
            agency=req.agency,
            flow=req.flow,
            on=req.on,
            agreement=None,
            evaluated=(RuleResult("default.deny", "forbid", "", True),),
            reasons=(reason("NO_POLICY", flow=req.flow, agency=req.agency),),
            policy_sha256=policy.sha256,
        )
    agreement, flow = found
    evaluated: list[RuleResult] = []
    permitted = False
    forbid_reasons: list[Reason] = []
    for rule in rules_for(agreement, flow):
        outcome = rule.check(req)
        matched = outcome is not None
        if rule.effect == "permit":
            permitted = permitted or matched
            evaluated.append(RuleResult(rule.id, rule.effect, rule.clause, matched))
        else:
            evaluated.append(RuleResult(rule.id, rule.effect, rule.clause, matched, outcome))
            if outcome is not None:
                forbid_reasons.append(outcome)
    reasons: Sequence[Reason]
    if not permitted:
        reasons = [
            reason(
                "FLOW_NOT_PERMITTED",
                agency=req.agency,
                flow=flow.name,
                agreement=agreement.id,
                clause=flow.clause,
            )
        ] + forbid_reasons
    else:
        reasons = forbid_reasons
    allow = permitted and not forbid_reasons
    return Decision(
        allow=allow,
        agency=req.agency,
        flow=flow.name,
        on=req.on,
        agreement=agreement.id,
        evaluated=tuple(evaluated),
        reasons=tuple(reasons),
        policy_sha256=policy.sha256,
        disclosed=flow.discloses if allow else (),
    )
