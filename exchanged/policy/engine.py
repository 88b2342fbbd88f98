"""The policy engine: facts in, a decision out, every decision explained.

Pure: no I/O. Rules are derived from the agreement's values, each with a
stable id and the clause (Pasal) it implements. Evaluation follows the
Cedar/OPA school: default deny; a request is allowed only if a permit rule
matches and no forbid rule does (a forbid beats a permit). Every rule is
always evaluated, so a decision can list all that would refuse a batch.

The rules of a flow ``F``, in evaluation order:

==========================  ======  ==========================================
rule                        effect  matches when
==========================  ======  ==========================================
``F.sender``                permit  the agency is the flow's sender
``agreement.validity``      forbid  the date is outside the agreement's validity
``agreement.terminated``    forbid  an addendum terminated it on or before the date
``F.suspended``             forbid  an addendum suspends the flow on the date
``F.recipient``             forbid  the answer would go to a party not allowed it
``F.columns.required``      forbid  a required column is missing
``F.columns.listed``        forbid  a column the agreement does not list is sent
``F.disclosure``            forbid  the answer would disclose a field not allowed
``F.size``                  forbid  the upload is over the flow's byte limit
``F.rows``                  forbid  the batch is over the flow's row limit
==========================  ======  ==========================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from exchanged.errors import Reason
from exchanged.policy.model import Agreement, Flow, PolicySet
from exchanged.reasons import reason

DEFAULT_DENY = "default.deny"


@dataclass(frozen=True)
class Request:
    """The facts of a request: who sends which flow, when, with what.

    Facts left as None are not known yet and their rules do not match (the
    pipeline decides once before decrypting, without columns, and again after).
    """

    agency: str
    flow: str
    on: date
    columns: tuple[str, ...] | None = None
    size: int | None = None
    rows: int | None = None
    #: who would receive the answer (the uploading agency, unless said otherwise)
    recipient: str | None = None
    #: the fields the answer would disclose
    disclose: tuple[str, ...] | None = None


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
            "rule": self.rule, "effect": self.effect, "clause": self.clause,
            "matched": self.matched,
        }
        if self.reason is not None:
            out["code"] = self.reason.code
        return out


@dataclass(frozen=True)
class Decision:
    allow: bool
    request: Request
    agreement: str | None
    purpose: str | None
    purpose_clause: str | None
    evaluated: tuple[RuleResult, ...]
    reasons: tuple[Reason, ...]
    policy_sha256: str
    disclosed: tuple[str, ...] = ()
    #: the positions (from 1) of the request's columns that the flow does not list: the
    #: ledger records these by position only (see :meth:`ledger_fields`)
    unlisted: tuple[int, ...] = ()

    @property
    def deciding(self) -> tuple[RuleResult, ...]:
        """The rules that decided: the matched forbids if denied, else the matched permits."""
        effect = "permit" if self.allow else "forbid"
        return tuple(r for r in self.evaluated if r.matched and r.effect == effect)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.deciding)

    def ledger_fields(self) -> dict[str, object]:
        """What the ledger records of a decision: names, rule ids and codes, never values.

        A column the flow does not list is recorded by its position only, ``#3`` in
        ``columns`` and 3 in ``unlisted_columns``: its name is the sender's text, which
        may be anything (a batch sent without its header row names its columns with the
        first row's values: a name, a NIK). The sender's rejection names it; the ledger
        never does. ``#3`` cannot be a column's name, so replaying the decision from the
        ledger (``policy explain --seq``) refuses the column again."""
        req = self.request
        out: dict[str, object] = {
            "decision": "allow" if self.allow else "deny",
            "agreement": self.agreement,
            "purpose": self.purpose,
            "rules": list(self.rule_ids),
            "clauses": sorted({r.clause for r in self.deciding if r.clause}),
            "codes": [r.code for r in self.reasons],
            "policy_sha256": self.policy_sha256,
            "on": req.on.isoformat(),
            "disclosed": list(self.disclosed),
        }
        if req.columns is not None:
            unlisted = set(self.unlisted)
            out["columns"] = [f"#{at}" if at in unlisted else name
                              for at, name in enumerate(req.columns, start=1)]
            if self.unlisted:
                out["unlisted_columns"] = list(self.unlisted)
        if req.size is not None:
            out["size"] = req.size
        return out


@dataclass(frozen=True)
class Rule:
    """A rule: an id, an effect, the clause it implements and its condition.

    ``check`` returns a Reason when the rule matches (for a permit, a Reason
    with code PERMIT), or None.
    """

    id: str
    effect: str
    clause: str
    check: Callable[[Request], Reason | None] = field(compare=False)


PERMIT = Reason("PERMIT", "")


# The conditions of the rules, each over the agreement and the flow it governs and a request;
# rules_for binds the first two. They read the agreement and flow when a request is checked.
Condition = Callable[[Agreement, Flow, Request], Reason | None]


def _sender(agreement: Agreement, flow: Flow, req: Request) -> Reason | None:
    return PERMIT if req.agency == flow.sender else None


def _validity(agreement: Agreement, flow: Flow, req: Request) -> Reason | None:
    v = agreement.validity
    if v.start <= req.on <= v.end:
        return None
    return reason("AGREEMENT_NOT_IN_FORCE", agreement=agreement.id, date=req.on.isoformat(),
                  start=v.start.isoformat(), end=v.end.isoformat(), clause=v.clause)


def _terminated(agreement: Agreement, flow: Flow, req: Request) -> Reason | None:
    if agreement.terminated_on is None or req.on < agreement.terminated_on:
        return None
    return reason("AGREEMENT_TERMINATED", agreement=agreement.id,
                  date=agreement.terminated_on.isoformat(),
                  reference=agreement.termination_reference,
                  clause=agreement.termination_clause)


def _suspended(agreement: Agreement, flow: Flow, req: Request) -> Reason | None:
    for start, end, ref, clause in flow.suspensions:
        if start <= req.on <= end:
            return reason("FLOW_SUSPENDED", flow=flow.name, start=start.isoformat(),
                          end=end.isoformat(), reference=ref, clause=clause)
    return None


def _recipient(agreement: Agreement, flow: Flow, req: Request) -> Reason | None:
    to = req.recipient if req.recipient is not None else req.agency
    if to in flow.recipients:
        return None
    return reason("NOT_A_RECIPIENT", flow=flow.name, recipients=", ".join(flow.recipients),
                  agency=to, clause=agreement.confidentiality.answers_clause or flow.clause)


def _required(agreement: Agreement, flow: Flow, req: Request) -> Reason | None:
    if req.columns is None:
        return None
    for name in flow.required:
        if name not in req.columns:
            return reason("MISSING_COLUMN", column=name, flow=flow.name,
                          required=", ".join(flow.required))
    return None


def _listed(agreement: Agreement, flow: Flow, req: Request) -> Reason | None:
    if req.columns is None:
        return None
    for name in req.columns:
        if name not in flow.allowed:
            return reason("COLUMN_NOT_ALLOWED", column=name, flow=flow.name,
                          clause=flow.columns_clause, allowed=", ".join(flow.allowed))
    return None


def _disclosure(agreement: Agreement, flow: Flow, req: Request) -> Reason | None:
    if req.disclose is None:
        return None
    for name in req.disclose:
        if name not in flow.discloses or name in flow.never_disclose:
            return reason("DISCLOSURE_NOT_ALLOWED", field=name, flow=flow.name,
                          clause=flow.disclosure_clause or flow.clause,
                          allowed=", ".join(flow.discloses) or "nothing")
    return None


def _size(agreement: Agreement, flow: Flow, req: Request) -> Reason | None:
    if req.size is None or flow.max_bytes is None or req.size <= flow.max_bytes:
        return None
    return reason("UPLOAD_TOO_LARGE", size=req.size, limit=flow.max_bytes)


def _rows(agreement: Agreement, flow: Flow, req: Request) -> Reason | None:
    if req.rows is None or flow.max_rows is None or req.rows <= flow.max_rows:
        return None
    return reason("TOO_MANY_ROWS", limit=flow.max_rows)


def rules_for(agreement: Agreement, flow: Flow) -> tuple[Rule, ...]:
    """The rules that govern one flow of one agreement, in evaluation order."""

    def rule(rule_id: str, effect: str, clause: str, condition: Condition) -> Rule:
        return Rule(rule_id, effect, clause, partial(condition, agreement, flow))

    conf = agreement.confidentiality
    # a flow is suspended by a written addendum (Pasal 12(2)) or for force majeure (Pasal 10(3))
    suspension_clause = ("; ".join(sorted({c for _, _, _, c in flow.suspensions}))
                         or "Pasal 10 ayat (3); Pasal 12 ayat (2)")
    rules = [
        rule(f"{flow.name}.sender", "permit", flow.clause, _sender),
        rule("agreement.validity", "forbid", agreement.validity.clause, _validity),
        rule("agreement.terminated", "forbid",
             agreement.termination_clause or "Pasal 6 ayat (2) dan (3)", _terminated),
        rule(f"{flow.name}.suspended", "forbid", suspension_clause, _suspended),
        rule(f"{flow.name}.recipient", "forbid", conf.answers_clause or flow.clause, _recipient),
        rule(f"{flow.name}.columns.required", "forbid", flow.columns_clause, _required),
        rule(f"{flow.name}.columns.listed", "forbid", flow.columns_clause, _listed),
    ]
    if flow.discloses or flow.never_disclose:
        rules.append(rule(f"{flow.name}.disclosure", "forbid",
                          flow.disclosure_clause or flow.clause, _disclosure))
    if flow.max_bytes is not None:
        rules.append(rule(f"{flow.name}.size", "forbid", flow.limits_clause or flow.clause, _size))
    if flow.max_rows is not None:
        rules.append(rule(f"{flow.name}.rows", "forbid", flow.limits_clause or flow.clause, _rows))
    return tuple(rules)


def all_rules(policy: PolicySet) -> dict[str, tuple[str, str]]:
    """Every rule id of a policy set, with its effect and clause (for coverage and listings)."""
    out: dict[str, tuple[str, str]] = {}
    for a in policy.agreements:
        for f in a.flows:
            for r in rules_for(a, f):
                out[r.id] = (r.effect, r.clause)
    return out


def decide(policy: PolicySet, req: Request) -> Decision:
    """Evaluate a request against the policy set: default deny, forbid beats permit."""
    found = policy.find_flow(req.flow)
    if found is None:
        return Decision(
            allow=False, request=req, agreement=None, purpose=None, purpose_clause=None,
            evaluated=(RuleResult(DEFAULT_DENY, "forbid", "", True),),
            reasons=(reason("NO_POLICY", flow=req.flow, agency=req.agency),),
            policy_sha256=policy.sha256, unlisted=_unlisted(req, ()),
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
    reasons = list(forbid_reasons)
    if not permitted:
        # default deny: no permit matched; say why in the agreement's words
        evaluated.append(RuleResult(DEFAULT_DENY, "forbid", flow.clause, True))
        reasons.insert(0, reason("FLOW_NOT_PERMITTED", agency=req.agency, flow=flow.name,
                                 agreement=agreement.id, clause=flow.clause))
    allow = permitted and not forbid_reasons
    purpose = agreement.purpose(flow.purpose)
    return Decision(
        allow=allow, request=req, agreement=agreement.id, purpose=flow.purpose,
        purpose_clause=purpose.clause if purpose else None, evaluated=tuple(evaluated),
        reasons=tuple(reasons), policy_sha256=policy.sha256,
        disclosed=flow.discloses if allow else (), unlisted=_unlisted(req, flow.allowed),
    )


def _unlisted(req: Request, allowed: tuple[str, ...]) -> tuple[int, ...]:
    """The positions (from 1) of the request's columns not among ``allowed``."""
    if req.columns is None:
        return ()
    return tuple(at for at, name in enumerate(req.columns, start=1) if name not in allowed)
