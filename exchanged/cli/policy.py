"""The ``policy`` commands: check, explain, test and change agreements."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from exchanged.cli.common import Leaf, Parser, home_of, parse_day
from exchanged.errors import CheckFailed, UsageError
from exchanged.home import load_config

if TYPE_CHECKING:  # the engine pulls in the flows (numpy, Arrow): only for policy commands
    from exchanged.policy import Decision


def _policies(args: argparse.Namespace) -> Path | None:
    return Path(args.policies) if getattr(args, "policies", None) else None


def cmd_policy_check(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import check_policies

    on = parse_day(args.date) if args.date else None
    policy, statuses = check_policies(home_of(args), on, policies=_policies(args))
    print(f"policies valid: {len(policy.files)} file(s), policy set {policy.sha256}")
    for s in statuses:
        print(s.sentence)
        for note in s.notes:
            print(f"  {note}")
    return 0


def cmd_policy_extend(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import extend_agreement

    path = extend_agreement(home_of(args), args.agreement, until=parse_day(args.until),
                            reference=args.reference, example=args.example)
    print(f"recorded the extension of {args.agreement} until {args.until} in {path}")
    print("a running daemon applies it on reload (SIGHUP, 'systemctl reload exchanged')")
    return 0


def cmd_policy_terminate(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import terminate_agreement

    path = terminate_agreement(home_of(args), args.agreement, on=parse_day(args.on),
                               reference=args.reference, clause=args.clause)
    print(f"recorded the termination of {args.agreement} on {args.on} in {path}")
    print("a running daemon applies it on reload (SIGHUP, 'systemctl reload exchanged')")
    return 0


def cmd_policy_force_majeure(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import record_force_majeure

    fm = record_force_majeure(home_of(args), args.agreement, party=args.party,
                              occurred=parse_day(args.occurred), reference=args.reference)
    print(f"recorded in ledger entry {fm.seq}: force majeure of {args.party} since "
          f"{args.occurred}, notified {fm.notified}")
    if fm.late:
        print(f"note: the notice was due by {fm.deadline} (Pasal 10 ayat (2)); it is late")
    return 0


def _print_decision(decision: Decision) -> None:
    req = decision.request
    verdict = "ALLOW" if decision.allow else "DENY"
    print(f"decision: {verdict}")
    facts = [f"agency {req.agency}", f"flow {req.flow}", f"date {req.on}"]
    if req.columns is not None:
        facts.append(f"columns {','.join(req.columns)}")
    for label, value in (("size", req.size), ("rows", req.rows), ("recipient", req.recipient)):
        if value is not None:
            facts.append(f"{label} {value}")
    print("request: " + ", ".join(facts))
    if decision.agreement:
        print(f"agreement: {decision.agreement}; purpose: {decision.purpose} "
              f"({decision.purpose_clause})")
    print(f"policy set: {decision.policy_sha256}")
    print("rules (in evaluation order):")
    for r in decision.evaluated:
        mark = "MATCHED" if r.matched else "-"
        code = f"  {r.reason.code}" if r.reason is not None and r.reason.code != "PERMIT" else ""
        print(f"  {r.effect:<6}  {r.rule:<36} {mark:<8} {r.clause}{code}")
    if decision.allow:
        print(f"allowed by: {', '.join(decision.rule_ids)}; the answer may disclose: "
              f"{', '.join(decision.disclosed) or 'nothing beyond its statuses'}")
    else:
        print(f"refused by: {', '.join(decision.rule_ids)}")
        for reason_ in decision.reasons:
            print(f"  {reason_.code}")
            print(f"    en: {reason_.message}")
            print(f"    id: {reason_.pesan}")


def cmd_policy_explain(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import decision_json, explain, replay
    from exchanged.policy import Request

    if args.seq is not None:
        if args.agency or args.flow:
            raise UsageError("--seq replays a recorded decision: give it without --agency/--flow")
        result = replay(home_of(args), args.seq)
        decision = result.decision
        if args.format == "json":
            print(decision_json(decision))
        else:
            print(f"replaying ledger entry {result.seq} ({result.kind}) against the policy set "
                  "of its day")
            _print_decision(decision)
            recorded = f"{result.recorded.get('decision')} by {result.recorded.get('rules')}"
            print(f"recorded then: {recorded}; replayed now: "
                  f"{'the same' if result.same else 'DIFFERENT'}")
        return 0 if result.same else 1
    if not args.agency or not args.flow:
        raise UsageError("give --agency and --flow (or --seq N to replay a recorded decision)")
    request = Request(
        agency=args.agency, flow=args.flow,
        on=parse_day(args.date) if args.date else _today(args),
        columns=tuple(c.strip().lower() for c in args.columns.split(",") if c.strip())
        if args.columns is not None else None,
        size=args.size, rows=args.rows, recipient=args.recipient,
    )
    decision = explain(home_of(args), request, policies=_policies(args))
    if args.format == "json":
        print(decision_json(decision))
    else:
        _print_decision(decision)
    return 0


def _today(args: argparse.Namespace) -> date:
    from exchanged.admin.agreements import today

    home = home_of(args)
    return today(load_config(home) if home.config_file.exists() else None)


def cmd_policy_test(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import test_policies

    report = test_policies(home_of(args), [Path(f) for f in args.files], policies=_policies(args),
                           with_addenda=args.with_addenda)
    by_file: dict[str, list[object]] = {}
    for r in report.results:
        by_file.setdefault(r.case.file, []).append(r)
    for name, results in by_file.items():
        passed = sum(1 for r in report.results if r.case.file == name and r.passed)
        print(f"{name}: {len(results)} case(s), {passed} passed")
    for r in report.failed:
        print(f"  FAIL {r.case.file}:{r.case.line} {r.case.name}: {'; '.join(r.problems)}")
    total = len(report.rules)
    print(f"rules exercised: {total - len(report.unexercised)} of {total}")
    if report.unexercised:
        print("rules no test exercised: " + ", ".join(report.unexercised))
    if not report.ok:
        raise CheckFailed(f"{len(report.failed)} case(s) failed, {len(report.unexercised)} rule(s) "
                          "not exercised")
    return 0


def add_parsers(sub: argparse._SubParsersAction[Parser], leaf: Leaf) -> None:
    """Add the parsers of policy check, extend, terminate, explain, test, force-majeure."""
    policy = sub.add_parser("policy", help="check, explain, test and change agreements")
    policy_sub = policy.add_subparsers(dest="policy_command", metavar="COMMAND",
                                       parser_class=Parser)
    policies_opt = argparse.ArgumentParser(add_help=False)
    policies_opt.add_argument("--policies", metavar="DIR",
                              help="read policies from this folder instead of the home's")
    sp = leaf(policy_sub, "check", cmd_policy_check,
              "validate every policy and say which agreements are in force", [policies_opt])
    sp.add_argument("--date", metavar="YYYY-MM-DD", help="check as of this date (default today)")
    sp = leaf(policy_sub, "extend", cmd_policy_extend,
              "record a written extension of an agreement as an addendum file")
    sp.add_argument("agreement", help="the agreement id, e.g. pks-kemensos-bkn-2023")
    sp.add_argument("--until", required=True, metavar="YYYY-MM-DD", help="the new last day")
    sp.add_argument("--reference", required=True, help="the written agreement's number or title")
    sp.add_argument("--example", action="store_true",
                    help="label the addendum as an example (demos and tests), not a real one")
    sp = leaf(policy_sub, "terminate", cmd_policy_terminate,
              "record the end of an agreement (Pasal 6 ayat (2), (3)) as an addendum file")
    sp.add_argument("agreement")
    sp.add_argument("--on", required=True, metavar="YYYY-MM-DD",
                    help="the first day it is no longer in force")
    sp.add_argument("--reference", required=True,
                    help="the written agreement or the regulation that ends it")
    sp.add_argument("--clause", default="Pasal 6 ayat (2) dan (3)", help="the clause applied")
    sp = leaf(policy_sub, "explain", cmd_policy_explain,
              "the full decision trace for a request, or replay a recorded decision",
              [policies_opt])
    sp.add_argument("--agency", metavar="ID")
    sp.add_argument("--flow", metavar="F")
    sp.add_argument("--date", metavar="YYYY-MM-DD", help="default today")
    sp.add_argument("--columns", metavar="a,b", help="the batch's columns")
    sp.add_argument("--size", type=int, metavar="BYTES")
    sp.add_argument("--rows", type=int, metavar="N")
    sp.add_argument("--recipient", metavar="ID", help="who would receive the answer")
    sp.add_argument("--seq", type=int, metavar="N",
                    help="replay the decision of ledger entry N against the policy of its day")
    sp.add_argument("--format", choices=("text", "json"), default="text")
    sp = leaf(policy_sub, "test", cmd_policy_test,
              "run policy test cases; report failures and rules no test exercised",
              [policies_opt])
    sp.add_argument("files", nargs="*", metavar="FILE.yaml",
                    help="test files (default: tests/*.yaml beside the policies)")
    sp.add_argument("--with-addenda", action="store_true",
                    help="apply the addenda recorded in the folder too")
    sp = leaf(policy_sub, "force-majeure", cmd_policy_force_majeure,
              "record a party's force majeure notice (Pasal 10) in the ledger")
    sp.add_argument("agreement")
    sp.add_argument("--party", required=True, metavar="ID")
    sp.add_argument("--occurred", required=True, metavar="YYYY-MM-DD")
    sp.add_argument("--reference", required=True, help="the written notice")
