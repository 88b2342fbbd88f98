"""Addenda: written changes to an agreement, each a file of its own.

``<agreement>.addendum-NNN.yaml`` (``format: exchanged/addendum-v1``) extends
or terminates an agreement, suspends flows for a period or amends keys of a
flow (Pasal 6 ayat (2), Pasal 12 ayat (2)); the agreement's own file is never
edited. Addenda apply in number order, each checked against the agreement as
the earlier ones left it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import yaml

from exchanged.errors import PolicyError
from exchanged.policy.flows import check_flow_references, parse_flow
from exchanged.policy.model import Addendum, Agreement, Flow, PolicySet, Validity
from exchanged.policy.schema import Path_, Reader, Source

ADDENDUM_FORMAT = "exchanged/addendum-v1"
ADDENDUM_KEYS = ("format", "addendum")
ADDENDUM_BODY_KEYS = (
    "agreement", "number", "reference", "recorded", "clause", "example", "extend_until",
    "terminate_on", "suspend", "amend_flows",
)
SUSPEND_KEYS = ("flow", "from", "until")
AMENDABLE_FLOW_KEYS = ("columns", "answer", "discloses", "compares", "limits", "purpose", "clause",
                       "fuzzy", "max_comparisons_per_nip", "tokens")


@dataclass(frozen=True)
class AddendumSource:
    source: Source
    addendum: Addendum


def parse_addendum(src: Source) -> Addendum:
    top = Reader(src, (), src.data, ADDENDUM_KEYS)
    if top.text("format") != ADDENDUM_FORMAT:
        raise src.error(("format",), f"must be {ADDENDUM_FORMAT}")
    body = top.sub("addendum", ADDENDUM_BODY_KEYS)
    number = body.integer("number", required=True)
    assert number is not None
    extend = body.day("extend_until", required=False)
    terminate = body.day("terminate_on", required=False)
    suspend = _suspensions(src, body)
    amends = _amended_flows(src, body)
    if extend is None and terminate is None and not suspend and not amends:
        raise src.error(("addendum",), "an addendum must extend, terminate, suspend or amend "
                        "(extend_until, terminate_on, suspend, amend_flows)")
    if extend is not None and terminate is not None:
        raise src.error(("addendum",), "an addendum cannot both extend and terminate")
    return Addendum(
        agreement=body.text("agreement"), number=number, reference=body.text("reference"),
        file=src.name, recorded=body.text("recorded"), clause=body.text("clause"),
        sha256=src.sha256, extend_until=extend, terminate_on=terminate, suspend=suspend,
        amends=amends, example=body.boolean("example"),
    )


def _suspensions(src: Source, body: Reader) -> tuple[tuple[str, date, date], ...]:
    """``suspend:``: the flows stopped, each from a day until a day (inclusive)."""
    if not body.has("suspend"):
        return ()
    items = body.value["suspend"]
    if not isinstance(items, list) or not items:
        raise src.error(("addendum", "suspend"), "must be a list of {flow, from, until}")
    suspend: list[tuple[str, date, date]] = []
    for i, item in enumerate(items):
        sr = Reader(src, ("addendum", "suspend", i), item, SUSPEND_KEYS)
        s_from, s_until = sr.day("from"), sr.day("until")
        assert s_from is not None and s_until is not None
        if s_until < s_from:
            raise src.error(("addendum", "suspend", i, "until"), "is before from")
        suspend.append((sr.text("flow"), s_from, s_until))
    return tuple(suspend)


def _amended_flows(src: Source, body: Reader) -> tuple[str, ...]:
    """``amend_flows:``: the flows whose keys are replaced (only keys that may be)."""
    if not body.has("amend_flows"):
        return ()
    amend = body.mapping("amend_flows")
    for flow_name, changes in amend.items():
        if not isinstance(changes, dict) or not changes:
            raise src.error(("addendum", "amend_flows", str(flow_name)),
                            "must be a mapping of the flow's keys to replace")
        for key in changes:
            if key not in AMENDABLE_FLOW_KEYS:
                raise src.error(("addendum", "amend_flows", str(flow_name), str(key)),
                                "cannot be amended "
                                f"(amendable: {', '.join(AMENDABLE_FLOW_KEYS)})")
    return tuple(str(k) for k in amend)


def apply_addenda(agreement: Agreement, agreement_src: Source, items: list[AddendumSource]
                  ) -> Agreement:
    """The agreement as its addenda, in number order, have changed it."""
    validity = agreement.validity
    termination: Addendum | None = None
    flows = {f.name: f for f in agreement.flows}
    # an amendment replaces keys of the flow as written, which is then read again whole
    raw_flows = copy.deepcopy(agreement_src.data["flows"])
    seen: set[int] = set()
    ordered = sorted(items, key=lambda a: a.addendum.number)
    for item in ordered:
        src, add = item.source, item.addendum
        if add.number in seen:
            raise src.error(("addendum", "number"), f"addendum number {add.number} is used twice")
        seen.add(add.number)
        if termination is not None:
            raise src.error(("addendum",),
                            "the agreement was already terminated by an earlier addendum")
        validity = _extended(src, add, validity)
        if add.terminate_on is not None:
            _check_termination(src, add.terminate_on, validity)
            termination = add
        _suspend(src, add, agreement.id, flows)
        if add.amends:
            _amend(src, agreement, agreement_src, raw_flows, flows)
    return replace(
        agreement,
        validity=validity,
        flows=tuple(flows[f.name] for f in agreement.flows),
        addenda=tuple(a.addendum for a in ordered),
        terminated_on=termination.terminate_on if termination else None,
        termination_reference=termination.reference if termination else "",
        termination_clause=termination.clause if termination else "",
    )


def _extended(src: Source, add: Addendum, validity: Validity) -> Validity:
    """The validity after ``add`` (unchanged unless it extends the agreement)."""
    if add.extend_until is None:
        return validity
    if add.extend_until <= validity.end:
        raise src.error(("addendum", "extend_until"),
                        f"does not extend the agreement: it is already valid until "
                        f"{validity.end} (to end it earlier, terminate it)")
    return Validity(validity.start, add.extend_until, add.clause or validity.clause)


def _check_termination(src: Source, terminate_on: date, validity: Validity) -> None:
    if terminate_on < validity.start:
        raise src.error(("addendum", "terminate_on"), "is before the agreement began")
    if terminate_on > validity.end:
        raise src.error(("addendum", "terminate_on"),
                        f"is after the agreement ends anyway ({validity.end})")


def _suspend(src: Source, add: Addendum, agreement_id: str, flows: dict[str, Flow]) -> None:
    """Add the suspensions of ``add`` to ``flows`` (by name), refusing an overlap."""
    for i, (flow_name, s_from, s_until) in enumerate(add.suspend):
        if flow_name not in flows:
            raise src.error(("addendum", "suspend", i, "flow"), f"{flow_name} is not a flow of "
                            f"agreement {agreement_id}")
        for other_from, other_until, other_ref, _ in flows[flow_name].suspensions:
            if s_from <= other_until and other_from <= s_until:
                raise src.error(("addendum", "suspend", i),
                                f"overlaps the suspension of {flow_name} by {other_ref}")
        flows[flow_name] = replace(
            flows[flow_name],
            suspensions=flows[flow_name].suspensions + ((s_from, s_until, add.reference,
                                                          add.clause),),
        )


def _amend(src: Source, agreement: Agreement, agreement_src: Source, raw_flows: dict[str, Any],
           flows: dict[str, Flow]) -> None:
    """Replace the keys an addendum amends in ``raw_flows`` and read each amended flow
    again into ``flows`` (keeping its suspensions); the flows must still fit together."""
    purpose_ids = {p.id for p in agreement.purposes}
    party_ids = {p.id for p in agreement.parties}
    for flow_name, changes in src.data["addendum"]["amend_flows"].items():
        path: Path_ = ("addendum", "amend_flows", str(flow_name))
        if flow_name not in raw_flows:
            raise src.error(path, f"{flow_name} is not a flow of agreement {agreement.id}")
        raw_flows[flow_name].update(copy.deepcopy(changes))
        try:
            amended = parse_flow(agreement_src, ("flows", flow_name), flow_name,
                                 raw_flows[flow_name], party_ids, purpose_ids,
                                 agreement.confidentiality)
        except PolicyError as e:
            raise src.error(path, f"the amended flow is invalid: {e.bare_message}") from None
        flows[flow_name] = replace(amended, suspensions=flows[flow_name].suspensions)
    try:
        check_flow_references(agreement_src, list(flows.values()))
    except PolicyError as e:
        raise src.error(("addendum", "amend_flows"), e.bare_message) from None


def next_addendum_number(policy: PolicySet, agreement_id: str) -> int:
    agreement = policy.agreement(agreement_id)
    if agreement is None:
        raise PolicyError(f"there is no agreement {agreement_id}")
    return max((a.number for a in agreement.addenda), default=0) + 1


def addendum_text(
    agreement_id: str,
    number: int,
    reference: str,
    recorded: str,
    *,
    clause: str,
    extend_until: date | None = None,
    terminate_on: date | None = None,
    example: bool = False,
) -> str:
    body: dict[str, Any] = {
        "agreement": agreement_id,
        "number": number,
        "reference": reference,
        "recorded": recorded,
        "clause": clause,
    }
    if example:
        body["example"] = True
    if extend_until is not None:
        body["extend_until"] = extend_until.isoformat()
    if terminate_on is not None:
        body["terminate_on"] = terminate_on.isoformat()
    header = (
        f"# Addendum {number} to agreement {agreement_id}, recorded by 'exchanged policy'.\n"
        "# The agreement's own file is never edited; this file changes it.\n"
    )
    return header + yaml.safe_dump({"format": ADDENDUM_FORMAT, "addendum": body},
                                   sort_keys=False, allow_unicode=True)
