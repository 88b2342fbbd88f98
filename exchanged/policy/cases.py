"""Policy unit tests: YAML cases (a request → the expected decision and rules), and coverage.

A test file (``policies/tests/*.yaml``)::

    format: exchanged/policy-tests-v1
    cases:
      - name: Kemensos may verify KPM while the agreement is in force
        request: {agency: kemensos, flow: kpm-verification, date: 2025-06-01,
                  columns: [ref, nik]}
        expect: {decision: allow, rules: [kpm-verification.sender]}
      - name: an addendum terminates the agreement
        given:
          addenda:
            - {terminate_on: 2025-01-01, reference: EXAMPLE}
        request: {agency: kemensos, flow: kpm-verification, date: 2025-06-01}
        expect: {decision: deny, rules: [agreement.terminated],
                 codes: [AGREEMENT_TERMINATED]}

Cases run against the agreements as signed (the folder's addenda are left out
unless asked for), plus the addenda a case gives, so that a test says what the
agreement means whatever has been recorded since. ``rules`` and ``codes`` are
compared as sets with the rules that decided and the reasons given. A rule is
*exercised* when it matched in at least one case; the report lists every rule
of the policy set that no case exercised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchanged.errors import PolicyError
from exchanged.policy.addenda import ADDENDUM_FORMAT, AddendumSource, parse_addendum
from exchanged.policy.engine import Decision, Request, all_rules, decide
from exchanged.policy.loader import load_policy_files
from exchanged.policy.model import PolicySet
from exchanged.policy.schema import Reader, Source
from exchanged.policy.yamlsafe import parse_source

TESTS_FORMAT = "exchanged/policy-tests-v1"
CASE_KEYS = ("name", "given", "request", "expect")
REQUEST_KEYS = ("agency", "flow", "date", "columns", "size", "rows", "recipient", "disclose")
EXPECT_KEYS = ("decision", "rules", "codes")
GIVEN_ADDENDUM_KEYS = ("agreement", "extend_until", "terminate_on", "suspend", "reference",
                       "clause")


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    line: int
    request: Request
    given: tuple[Mapping[str, Any], ...]
    allow: bool
    rules: frozenset[str] | None
    codes: frozenset[str] | None


@dataclass(frozen=True)
class CaseResult:
    case: Case
    decision: Decision | None
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class TestReport:
    results: tuple[CaseResult, ...]
    rules: Mapping[str, tuple[str, str]]
    exercised: frozenset[str] = field(default_factory=frozenset)

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def unexercised(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.rules) - self.exercised))

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unexercised


def _sequence(reader: Reader, key: str) -> tuple[str, ...] | None:
    if not reader.has(key):
        return None
    return reader.texts(key)


def load_cases(name: str, raw: bytes) -> list[Case]:
    src = parse_source(name, raw)
    top = Reader(src, (), src.data, ("format", "cases"))
    if top.text("format") != TESTS_FORMAT:
        raise src.error(("format",), f"must be {TESTS_FORMAT}")
    items = src.data.get("cases")
    if not isinstance(items, list) or not items:
        raise src.error(("cases",), "must be a non-empty list of cases")
    cases = []
    for i, item in enumerate(items):
        path = ("cases", i)
        cr = Reader(src, path, item, CASE_KEYS)
        rq = cr.sub("request", REQUEST_KEYS)
        ex = cr.sub("expect", EXPECT_KEYS)
        decision = ex.text("decision")
        if decision not in ("allow", "deny"):
            raise src.error(path + ("expect", "decision"), "must be allow or deny")
        on = rq.day("date")
        assert on is not None
        given: list[Mapping[str, Any]] = []
        if cr.has("given"):
            gr = cr.sub("given", ("addenda",))
            addenda = gr.value.get("addenda")
            if not isinstance(addenda, list) or not addenda:
                raise src.error(path + ("given", "addenda"), "must be a list of addenda")
            for j, add in enumerate(addenda):
                Reader(src, path + ("given", "addenda", j), add, GIVEN_ADDENDUM_KEYS)
                given.append(add)
        rules = _sequence(ex, "rules")
        codes = _sequence(ex, "codes")
        cases.append(Case(
            name=cr.text("name"), file=name, line=src.line(path) or 0,
            request=Request(
                agency=rq.text("agency"), flow=rq.text("flow"), on=on,
                columns=_sequence(rq, "columns"), size=rq.integer("size", minimum=0),
                rows=rq.integer("rows", minimum=0),
                recipient=rq.text("recipient", required=False) or None,
                disclose=_sequence(rq, "disclose"),
            ),
            given=tuple(given), allow=decision == "allow",
            rules=frozenset(rules) if rules is not None else None,
            codes=frozenset(codes) if codes is not None else None,
        ))
    return cases


def _given_addenda(case: Case, policy: PolicySet) -> dict[str, list[AddendumSource]]:
    out: dict[str, list[AddendumSource]] = {}
    for n, add in enumerate(case.given, start=1):
        found = policy.find_flow(case.request.flow)
        agreement = str(add.get("agreement") or (found[0].id if found else ""))
        body = {
            "agreement": agreement, "number": 100000 + n,
            "reference": str(add.get("reference", "policy test")), "recorded": "test",
            "clause": str(add.get("clause", "Pasal 6 ayat (2)")),
        }
        for key in ("extend_until", "terminate_on", "suspend"):
            if key in add:
                body[key] = add[key]
        name = f"{case.file}:{case.line}"
        data = {"format": ADDENDUM_FORMAT, "addendum": body}
        src = Source(name, data, {}, hashlib.sha256(name.encode()).hexdigest())
        out.setdefault(agreement, []).append(AddendumSource(src, parse_addendum(src)))
    return out


def run_cases(policy_files: Mapping[str, bytes], cases: Sequence[Case]) -> TestReport:
    """Run cases against the policy files; report failures and the rules no case exercised."""
    base = load_policy_files(policy_files)
    results: list[CaseResult] = []
    exercised: set[str] = set()
    for case in cases:
        policy = base
        try:
            if case.given:
                policy = load_policy_files(policy_files, _given_addenda(case, base))
        except PolicyError as e:
            results.append(CaseResult(case, None, (f"its addenda are invalid: {e.diagnostics()}",)))
            continue
        decision = decide(policy, case.request)
        exercised |= {r.rule for r in decision.evaluated if r.matched}
        problems = []
        if decision.allow != case.allow:
            problems.append(f"expected {'allow' if case.allow else 'deny'}, got "
                            f"{'allow' if decision.allow else 'deny'}")
        got_rules = frozenset(decision.rule_ids)
        if case.rules is not None and got_rules != case.rules:
            problems.append(f"expected rules {sorted(case.rules)}, got {sorted(got_rules)}")
        got_codes = frozenset(r.code for r in decision.reasons)
        if case.codes is not None and got_codes != case.codes:
            problems.append(f"expected codes {sorted(case.codes)}, got {sorted(got_codes)}")
        results.append(CaseResult(case, decision, tuple(problems)))
    exercised.discard("default.deny")
    return TestReport(tuple(results), all_rules(base), frozenset(exercised))


def agreement_files(folder: Path, *, with_addenda: bool) -> dict[str, bytes]:
    """The policy files of a folder: agreements only, or with their addenda."""
    files = {}
    for p in sorted(folder.glob("*.yaml")):
        raw = p.read_bytes()
        if not with_addenda:
            data = parse_source(p.name, raw).data
            if isinstance(data, dict) and data.get("format") == ADDENDUM_FORMAT:
                continue
        files[p.name] = raw
    return files
