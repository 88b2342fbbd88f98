"""The ``exchanged`` command: thin wrappers over library calls, same option names.

Exit codes: 0 success, 1 a check failed (a broken chain, an invalid policy),
2 a usage or configuration error. Errors are one sentence on stderr; the
traceback only with ``-v``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time as clock
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from exchanged import __version__
from exchanged.errors import CheckFailed, ConfigError, Error, Problem, UsageError
from exchanged.home import Config, Home, load_config
from exchanged.ledger import format_ts
from exchanged.policy import Decision

if TYPE_CHECKING:
    from exchanged.csvio import CsvWriter

Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one sentence and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _home(args: argparse.Namespace) -> Home:
    return Home.resolve(args.home)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a real date written YYYY-MM-DD") from None


def _moment(text: str, config: Config, *, end: bool = False) -> str:
    """A --since/--until value as a ledger timestamp (UTC); dates are days in the home's zone."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=config.zone)
            if end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=config.zone)
    except ValueError:
        raise UsageError(
            f"{text!r} is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM[:SS][+HH:MM])"
        ) from None
    return format_ts(moment)


# -- commands ------------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from exchanged.admin.init import init_home

    report = init_home(_home(args), name=args.name, listen=args.listen)
    print(f"created the exchange home {report.home}")
    print(f"exchange OpenPGP key: {report.fingerprint}")
    print(f"  public key for agencies: {report.home / 'exchange-public.asc'}")
    print(f"SSH host key: {report.host_key_fingerprint}")
    print(f"  known_hosts line for agencies: {report.known_hosts_line}")
    print(f"ledger: {report.ledger_id}")
    return 0


def cmd_agency_add(args: argparse.Namespace) -> int:
    from exchanged.admin.agencies import add_agency

    report = add_agency(
        _home(args), args.id, name=args.name, ssh_key=Path(args.ssh_key), gpg_key=Path(args.gpg_key)
    )
    print(f"registered agency {report.agency.id} ({report.agency.name})")
    print(f"pinned OpenPGP key: {report.agency.gpg_fingerprint}")
    print(f"SSH login key: {report.ssh_fingerprint}")
    if report.inbox or report.outbox:
        print(f"inbox flows: {', '.join(report.inbox) or 'none'}; "
              f"outbox flows: {', '.join(report.outbox) or 'none'}")
    else:
        print(f"note: no agreement names party {report.agency.id}, so it has no flows yet")
    if report.sshd_config:
        print("OpenSSH mode: add to /etc/ssh/sshd_config, then reload sshd:")
        print(report.sshd_config.rstrip())
    return 0


def cmd_agency_update(args: argparse.Namespace) -> int:
    from exchanged.admin.agencies import update_agency

    report = update_agency(_home(args), args.id,
                           ssh_key=Path(args.ssh_key) if args.ssh_key else None,
                           add_ssh_key=args.add, gpg_key=Path(args.gpg_key) if args.gpg_key else None)
    for change in report.changes:
        print(f"{args.id}: {change}")
    return 0


def cmd_agency_list(args: argparse.Namespace) -> int:
    from exchanged.home.agencies import Agencies

    home = _home(args)
    home.require()
    for agency in Agencies(home).all().values():
        print(f"{agency.id}\t{agency.gpg_fingerprint}\t{agency.name}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from exchanged.admin.keys import rotate_openpgp, rotate_ssh_host
    from exchanged.ledger import open_ledger

    if bool(args.openpgp) == bool(args.ssh_host):
        raise UsageError("give --openpgp (with --retire-to FILE) or --ssh-host")
    if args.openpgp and not args.retire_to:
        raise UsageError("--openpgp needs --retire-to FILE: where the old secret key goes")
    home = _home(args)
    home.require()
    ledger = open_ledger(home)
    try:
        if args.openpgp:
            done = rotate_openpgp(home, ledger, Path(args.retire_to))
            print(f"exchange OpenPGP key: {done.old_fingerprint} -> {done.new_fingerprint}")
            print(f"the old secret key is in {done.retired_to}: move it offline")
            print(f"new public key: {home.exchange_public} (certified by the old key); "
                  f"notice delivered to: {', '.join(done.notified) or 'no agency'}")
        else:
            done = rotate_ssh_host(home, ledger)
            print(f"SSH host key: {done.old_fingerprint} -> {done.new_fingerprint}")
            print(f"known_hosts line for the agencies: {done.known_hosts_line}")
    finally:
        ledger.close()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from exchanged.daemon.service import Service

    return Service(_home(args)).run()


def _policies(args: argparse.Namespace) -> Path | None:
    return Path(args.policies) if getattr(args, "policies", None) else None


def cmd_policy_check(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import check_policies

    on = _day(args.date) if args.date else None
    policy, statuses = check_policies(_home(args), on, policies=_policies(args))
    print(f"policies valid: {len(policy.files)} file(s), policy set {policy.sha256}")
    for s in statuses:
        print(s.sentence)
        for note in s.notes:
            print(f"  {note}")
    return 0


def cmd_policy_extend(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import extend_agreement

    path = extend_agreement(_home(args), args.agreement, until=_day(args.until),
                            reference=args.reference, example=args.example)
    print(f"recorded the extension of {args.agreement} until {args.until} in {path}")
    print("a running daemon applies it on reload (SIGHUP, 'systemctl reload exchanged')")
    return 0


def cmd_policy_terminate(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import terminate_agreement

    path = terminate_agreement(_home(args), args.agreement, on=_day(args.on),
                               reference=args.reference, clause=args.clause)
    print(f"recorded the termination of {args.agreement} on {args.on} in {path}")
    print("a running daemon applies it on reload (SIGHUP, 'systemctl reload exchanged')")
    return 0


def cmd_policy_force_majeure(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import record_force_majeure

    fm = record_force_majeure(_home(args), args.agreement, party=args.party,
                              occurred=_day(args.occurred), reference=args.reference)
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
            print(f"    id: {reason_.message_id}")


def cmd_policy_explain(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import decision_json, explain, replay
    from exchanged.policy import Request

    if args.seq is not None:
        if args.agency or args.flow:
            raise UsageError("--seq replays a recorded decision: give it without --agency/--flow")
        result = replay(_home(args), args.seq)
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
        on=_day(args.date) if args.date else _today(args),
        columns=tuple(c.strip().lower() for c in args.columns.split(",") if c.strip())
        if args.columns is not None else None,
        size=args.size, rows=args.rows, recipient=args.recipient,
    )
    decision = explain(_home(args), request, policies=_policies(args))
    if args.format == "json":
        print(decision_json(decision))
    else:
        _print_decision(decision)
    return 0


def _today(args: argparse.Namespace) -> date:
    from exchanged.admin.agreements import today

    home = _home(args)
    return today(load_config(home) if home.config_file.exists() else None)


def cmd_policy_test(args: argparse.Namespace) -> int:
    from exchanged.admin.agreements import test_policies

    report = test_policies(_home(args), [Path(f) for f in args.files], policies=_policies(args),
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


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    from exchanged.ledger import open_ledger
    from exchanged.ledger.checkpoints import read_checkpoint
    from exchanged.ledger.merkle import root

    home = _home(args)
    ledger = open_ledger(home, readonly=True)
    report = ledger.verify()
    if not report.ok:
        raise CheckFailed(f"the ledger is NOT intact: {report.problem}")
    print(f"ledger intact: {report.entries} entries, head {report.head_seq} {report.head_hash}")
    print(f"tree head: {report.root_hash}")
    for path in args.against or []:
        head = read_checkpoint(Path(path), home=home)
        if head.ledger_id != report.ledger_id:
            raise CheckFailed(f"{path} is a checkpoint of another ledger ({head.ledger_id})")
        if head.tree_size > report.entries:
            raise CheckFailed(f"the ledger has {report.entries} entries, fewer than the "
                              f"{head.tree_size} of {path}: entries were removed")
        if root(ledger.leaves(head.tree_size)).hex() != head.root_hash:
            raise CheckFailed(f"the ledger does NOT extend {path}: its first {head.tree_size} "
                              "entries are not the ones the checkpoint signed")
        print(f"extends {Path(path).name}: its {head.tree_size} entries of {head.timestamp} "
              f"are unchanged (tree head {head.root_hash})")
    return 0


def cmd_ledger_checkpoint(args: argparse.Namespace) -> int:
    from exchanged.ledger import open_ledger
    from exchanged.ledger.checkpoints import make_checkpoint

    home = _home(args)
    made = make_checkpoint(home, open_ledger(home), actor="admin")
    print(f"checkpoint of {made.head.tree_size} entries, tree head {made.head.root_hash}")
    print(f"signed into {made.path}; delivered to /outbox/ledger/ of "
          f"{', '.join(made.delivered) or 'no agency yet'}")
    return 0


def cmd_ledger_prove(args: argparse.Namespace) -> int:
    from exchanged.ledger import open_ledger
    from exchanged.ledger.checkpoints import latest, read_checkpoint
    from exchanged.ledger.treehead import consistency, inclusion

    home = _home(args)
    ledger = open_ledger(home, readonly=True)

    def checkpoint(path: str | None) -> Any:
        chosen = Path(path) if path else latest(home)
        if chosen is None:
            raise UsageError("there is no checkpoint yet; make one with 'exchanged ledger "
                             "checkpoint'")
        return read_checkpoint(chosen, home=home)

    if (args.seq is None) == (args.from_ is None):
        raise UsageError("give --seq N (an entry is in the ledger) or --from CHECKPOINT "
                         "(the ledger only grew)")
    if args.seq is not None:
        proof = inclusion(ledger, args.seq, checkpoint(args.checkpoint))
    else:
        proof = consistency(ledger, read_checkpoint(Path(args.from_), home=home),
                            checkpoint(args.checkpoint))
    text = json.dumps(proof, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        from exchanged.home import atomic_write

        atomic_write(Path(args.output), text.encode("utf-8"))
        print(f"wrote the proof to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_ledger_check_proof(args: argparse.Namespace) -> int:
    from exchanged.ledger.checkpoints import read_checkpoint, read_proof
    from exchanged.ledger.treehead import (
        CONSISTENCY_FORMAT,
        check_consistency,
        check_inclusion,
    )

    key = Path(args.exchange_key) if args.exchange_key else None
    home = None if key is not None else _home(args)
    heads = [read_checkpoint(Path(p), home=home, exchange_key=key) for p in args.checkpoint]
    proof = read_proof(Path(args.proof))
    if proof.get("format") == CONSISTENCY_FORMAT:
        if len(heads) != 2:
            raise UsageError("a consistency proof is checked against two checkpoints "
                             "(--checkpoint OLD --checkpoint NEW)")
        old, new = sorted(heads, key=lambda h: h.tree_size)
        check_consistency(proof, old, new)
        print(f"proven: the ledger of {new.timestamp} ({new.tree_size} entries) extends the "
              f"ledger of {old.timestamp} ({old.tree_size} entries); nothing was rewritten")
        return 0
    if len(heads) != 1:
        raise UsageError("an inclusion proof is checked against one checkpoint")
    entry = check_inclusion(proof, heads[0])
    print(f"proven: entry {entry['seq']} ({entry['kind']}, {entry['ts']}) is in the ledger of "
          f"{heads[0].timestamp} ({heads[0].tree_size} entries)")
    print(json.dumps(entry, ensure_ascii=False))
    return 0


def cmd_ledger_stats(args: argparse.Namespace) -> int:
    from exchanged.ledger import open_ledger
    from exchanged.ledger.stats import stats

    home = _home(args)
    config = load_config(home)
    result = stats(open_ledger(home, readonly=True),
                   _moment(args.since, config) if args.since else None,
                   _moment(args.until, config, end=True) if args.until else None)
    if args.format == "json":
        print(json.dumps({"entries": result.entries,
                          **{name: dict(rows) for name, rows in result.sections()}},
                         ensure_ascii=False))
    elif args.format == "csv":
        with _csv_out(["by", "key", "count"]) as w:
            for name, rows in result.sections():
                for key, count in rows:
                    w.write([name, str(key), str(count)])
    else:
        print(f"entries: {result.entries}")
        for name, rows in result.sections():
            print(f"by {name}:" + ("" if rows else " none"))
            for key, count in rows:
                print(f"  {key:<32} {count:>10}")
    return 0


def _summary(data: dict[str, Any]) -> str:
    parts = []
    for key, value in data.items():
        if isinstance(value, str) and len(value) == 64 and key.endswith(("sha256", "hash")):
            value = value[:12]
        parts.append(f"{key}={json.dumps(value, ensure_ascii=False, separators=(',', ':'))}")
    return " ".join(parts)


def cmd_ledger_query(args: argparse.Namespace) -> int:
    from exchanged.ledger import Query, open_ledger

    home = _home(args)
    config = load_config(home)
    if args.kind is not None:
        from exchanged.ledger.kinds import KINDS

        prefix = args.kind.rstrip("*")
        family = args.kind.endswith(("*", "."))
        if not (args.kind in KINDS or family and any(k.startswith(prefix) for k in KINDS)):
            families = sorted({k.split(".")[0] + "." for k in KINDS})
            raise UsageError(f"{args.kind!r} is not a ledger entry kind (families: "
                             f"{', '.join(families)}; see docs/ledger.md)")
    query = Query(
        agency=args.agency,
        flow=args.flow,
        batch=args.batch,
        kind=args.kind,
        since=_moment(args.since, config) if args.since else None,
        until=_moment(args.until, config, end=True) if args.until else None,
    )
    ledger = open_ledger(home, readonly=True)
    out = sys.stdout
    with ExitStack() as stack:
        writer = (stack.enter_context(_csv_out(["seq", "ts", "kind", "agency", "flow", "batch",
                                                "actor", "data", "hash"]))
                  if args.format == "csv" else None)

        def emit(e: Any) -> None:
            if args.format == "json":
                out.write(json.dumps(e.as_dict(), ensure_ascii=False) + "\n")
            elif writer is not None:
                writer.write([str(e.seq), e.ts, e.kind, e.agency or "", e.flow or "",
                              e.batch or "", e.actor, e.data_text, e.hash])
            else:
                out.write(f"{e.seq:>6}  {e.ts[:19]:<20}  {e.kind:<22} {e.agency or '-':<10} "
                          f"{e.flow or '-':<18} {e.batch or '-':<20} {_summary(e.data)}\n")

        if args.format == "table":
            out.write(f"{'seq':>6}  {'time (UTC)':<20}  {'kind':<22} {'agency':<10} "
                      f"{'flow':<18} {'batch':<20} details\n")
        last = 0
        for e in ledger.query(query):
            emit(e)
            last = e.seq
        while args.follow:
            # live tailing: new entries as they are written, until interrupted
            if writer is not None:
                writer.flush()
            out.flush()
            clock.sleep(1.0)
            for e in ledger.query(replace(query, after_seq=max(last, query.after_seq))):
                emit(e)
                last = e.seq
    return 0


@contextmanager
def _csv_out(header: list[str]) -> Iterator[CsvWriter]:
    """CSV on stdout through the exchange's one CSV writer, which neutralises every cell a
    spreadsheet would run as a formula (a batch id may start with "-", a value with "=").
    LF-ended, as these commands have always printed."""
    from exchanged.csvio import CsvWriter  # numpy and Arrow: only for the commands that need them

    sys.stdout.flush()  # the writer writes under sys.stdout's text layer
    writer = CsvWriter(sys.stdout.buffer, header, line_end="\n")
    try:
        yield writer
    finally:
        writer.close()


def cmd_status(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from exchanged.admin.status import status

    st = status(_home(args))
    if args.format == "json":
        print(json.dumps(asdict(st), ensure_ascii=False, indent=2))
        return 0
    if st.running:
        d = st.daemon
        intake = "open" if d.get("intake_open", True) else "STOPPED (the exchange cannot write)"
        print(f"daemon: running (pid {d.get('pid', '?')}, since {d.get('started', '?')}, "
              f"SFTP on {d.get('sftp', '?')}, intake {intake})")
    else:
        print("daemon: not running")
    waiting = sum(st.queue.values())
    stages = ", ".join(f"{stage} {n}" for stage, n in sorted(st.queue.items()))
    print(f"queue: {waiting} batch(es) not yet answered" + (f" ({stages})" if stages else ""))
    print("last batches:" + ("" if st.recent else " none"))
    for b in st.recent:
        outcome = f" {b['outcome']}" if b["outcome"] and b["stage"] == "answered" else ""
        print(f"  {b['received'][:19]}  {b['agency']:<10} {b['flow']:<20} {b['batch']:<24} "
              f"{b['stage']}{outcome}")
    print("agreements:")
    for a in st.agreements:
        print(f"  {a['summary']}")
        if a["in_force"]:
            print(f"    notice to extend or end due by {a['notice_due']}")
    print("next scheduled jobs:" + ("" if st.next_jobs else " (shown while the daemon runs)"))
    for job, when in sorted(st.next_jobs.items()):
        print(f"  {job:<20} {when or '-'}")
    print(f"ledger: {st.ledger_entries} entries; last checkpoint "
          f"{st.last_checkpoint or 'none yet'}")
    return 0


def _client(args: argparse.Namespace) -> Any:
    from exchanged.client import Client, default_state, progress_stream

    return Client(args.server, args.agency, Path(args.ssh_key),
                  gnupghome=Path(args.gnupghome) if args.gnupghome else None,
                  state=Path(args.state) if args.state else default_state(),
                  exchange_key=Path(args.exchange_key) if args.exchange_key else None,
                  progress=None if args.quiet else progress_stream())


def cmd_submit(args: argparse.Namespace) -> int:
    from exchanged.client import submit

    client = _client(args)
    try:
        done = submit(client, args.flow, Path(args.file), batch_id=args.batch_id,
                      output=Path(args.output) if args.output else None,
                      timeout=args.timeout, wait=not args.no_wait)
    finally:
        client.close()
    if done.kind == "uploaded":
        print(f"uploaded batch {done.batch_id}; collect its outcome with 'exchanged fetch'")
        return 0
    if done.kind == "rejected":
        print(f"batch {done.batch_id} was REJECTED:")
        for r in done.reasons:
            print(f"  {r.get('code')}: {r.get('message')}")
        return 1
    print(f"batch {done.batch_id} answered; the answer (checked: signed by the exchange) is "
          f"in {done.answer}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from exchanged.client import fetch

    client = _client(args)
    try:
        got = fetch(client, args.flow, Path(args.output_dir), remove=args.remove)
    finally:
        client.close()
    for name, local in got:
        print(f"{name} -> {local}")
    if not got:
        print("no outcome waiting")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from exchanged.reports import generate, write

    result = generate(_home(args), args.report, agreement_id=args.agreement,
                      period_text=args.period, fmt=args.format,
                      checkpoint=Path(args.checkpoint) if args.checkpoint else None,
                      new_checkpoint=not args.no_new_checkpoint)
    if args.output:
        write(result, Path(args.output))
        print(f"wrote the {args.report} for {args.agreement}, {args.period} to {args.output} "
              f"(from ledger entries 1..{result.tree_size}; sha256 {result.sha256})")
    else:
        sys.stdout.write(result.text)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        from exchanged.testing import synth
    except ImportError:
        # the synthetic data generator is test support, kept out of the built package
        raise ConfigError("exchanged generate needs a source checkout of exchanged (the "
                          "synthetic data generator is not part of an installed package)"
                          ) from None

    try:
        if args.what == "register":
            # --rows is the register's size here; a KPM batch names its register instead
            register = synth.SyntheticRegister(args.rows, args.seed)
            n = synth.write_register_csv(args.output, register)
        else:
            register = synth.SyntheticRegister(args.register_rows, args.seed)
            rows = synth.kpm_batch(register, args.rows, args.seed + 1)
            n = synth.write_kpm_csv(args.output, rows, columns=tuple(args.columns.split(",")),
                                    truth_path=args.truth)
    except OSError as e:
        raise UsageError(f"cannot write {e.filename or args.output}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(str(e).rstrip(".")) from None
    print(f"wrote {n} rows to {args.output}")
    return 0


# -- the parser --------------------------------------------------------------------------------


def build_parser() -> Parser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home", metavar="DIR",
        help="the exchange's home (default: $EXCHANGED_HOME, else /var/lib/exchanged)",
    )
    p = Parser(prog="exchanged", description="A secure file-drop exchange for data-sharing "
               "agreements between agencies.")
    p.add_argument("--version", action="version", version=f"exchanged {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def leaf(parent: Any, name: str, handler: Handler, help_: str,
             extra: Sequence[argparse.ArgumentParser] = ()) -> Parser:
        sp: Parser = parent.add_parser(name, parents=[common, *extra], help=help_,
                                       description=help_)
        sp.set_defaults(handler=handler)
        return sp

    sp = leaf(sub, "init", cmd_init, "create a new exchange home: keys, config, ledger")
    sp.add_argument("--name", default="exchanged", help="the exchange's name (in its key)")
    sp.add_argument("--listen", default="127.0.0.1:2222", metavar="HOST:PORT",
                    help="where the SFTP server listens (default 127.0.0.1:2222)")

    agency = sub.add_parser("agency", help="register and list agencies")
    agency_sub = agency.add_subparsers(dest="agency_command", metavar="COMMAND", parser_class=Parser)
    sp = leaf(agency_sub, "add", cmd_agency_add,
              "register an agency: SFTP login key, pinned OpenPGP key, drop folders")
    sp.add_argument("id", help="the agency id: its SFTP user name and its party id in the agreements")
    sp.add_argument("--name", required=True, help="the agency's full name")
    sp.add_argument("--ssh-key", required=True, metavar="FILE.pub", help="its SSH public key")
    sp.add_argument("--gpg-key", required=True, metavar="FILE.asc", help="its OpenPGP public key")
    sp = leaf(agency_sub, "update", cmd_agency_update,
              "change an agency's keys: rotate its SSH or OpenPGP key, or refresh the pinned one")
    sp.add_argument("id")
    sp.add_argument("--ssh-key", metavar="FILE.pub", help="its new SSH public key")
    sp.add_argument("--add", action="store_true",
                    help="add the SSH key beside the current ones (for a changeover)")
    sp.add_argument("--gpg-key", metavar="FILE.asc",
                    help="its new OpenPGP public key, or a new copy of the pinned one "
                    "(with a revocation or a new expiry date)")
    leaf(agency_sub, "list", cmd_agency_list, "list registered agencies and their pinned keys")

    keys = sub.add_parser("keys", help="rotate the exchange's own keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND", parser_class=Parser)
    sp = leaf(keys_sub, "rotate", cmd_keys_rotate,
              "replace the exchange's OpenPGP key or SSH host key (daemon stopped)")
    sp.add_argument("--openpgp", action="store_true",
                    help="a new OpenPGP key, certified by the old one, announced to every agency")
    sp.add_argument("--retire-to", metavar="FILE",
                    help="with --openpgp: where the old secret key is written (move it offline)")
    sp.add_argument("--ssh-host", action="store_true", help="a new SSH host key")

    leaf(sub, "run", cmd_run, "run the daemon in the foreground (SFTP, processing)")
    sp = leaf(sub, "status", cmd_status,
              "the daemon, the queue, the last batches, the agreements' dates, the next jobs")
    sp.add_argument("--format", choices=("text", "json"), default="text")

    policy = sub.add_parser("policy", help="check, explain, test and change agreements")
    policy_sub = policy.add_subparsers(dest="policy_command", metavar="COMMAND", parser_class=Parser)
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

    ledger = sub.add_parser("ledger", help="verify and query the ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", metavar="COMMAND", parser_class=Parser)
    sp = leaf(ledger_sub, "verify", cmd_ledger_verify,
              "recompute the whole hash chain and tree head; check it extends checkpoints")
    sp.add_argument("--against", action="append", metavar="CHECKPOINT",
                    help="a signed checkpoint the ledger must extend (repeatable)")
    sp = leaf(ledger_sub, "query", cmd_ledger_query, "list ledger entries")
    sp.add_argument("--agency", metavar="ID")
    sp.add_argument("--flow", metavar="F")
    sp.add_argument("--batch", metavar="B")
    sp.add_argument("--kind", metavar="K", help="an entry kind; 'batch.' or 'batch.*' for a family")
    sp.add_argument("--since", metavar="T", help="from this date or time (dates in the home's zone)")
    sp.add_argument("--until", metavar="T", help="up to this date (inclusive) or time (exclusive)")
    sp.add_argument("--format", choices=("table", "json", "csv"), default="table")
    sp.add_argument("--follow", action="store_true",
                    help="keep printing new entries as they are written (Ctrl-C stops)")
    sp = leaf(ledger_sub, "stats", cmd_ledger_stats,
              "counts by agency, flow, kind, outcome, reason and month")
    sp.add_argument("--since", metavar="T")
    sp.add_argument("--until", metavar="T")
    sp.add_argument("--format", choices=("table", "json", "csv"), default="table")
    leaf(ledger_sub, "checkpoint", cmd_ledger_checkpoint,
         "sign the ledger's tree head now and deliver it to every agency")
    sp = leaf(ledger_sub, "prove", cmd_ledger_prove,
              "an inclusion proof (--seq N) or a consistency proof (--from CHECKPOINT)")
    sp.add_argument("--seq", type=int, metavar="N", help="prove that entry N is in the ledger")
    sp.add_argument("--from", dest="from_", metavar="CHECKPOINT",
                    help="prove that the ledger extends this older checkpoint")
    sp.add_argument("--checkpoint", metavar="FILE",
                    help="the checkpoint to prove against (default: the latest one)")
    sp.add_argument("--output", metavar="FILE", help="write the proof here (default: stdout)")
    sp = leaf(ledger_sub, "check-proof", cmd_ledger_check_proof,
              "check a proof against checkpoints, with only the exchange's public key")
    sp.add_argument("--proof", required=True, metavar="FILE")
    sp.add_argument("--checkpoint", required=True, action="append", metavar="FILE",
                    help="a signed checkpoint (twice for a consistency proof: old and new)")
    sp.add_argument("--exchange-key", metavar="FILE.asc",
                    help="the exchange's public key (no home needed)")

    connect = Parser(add_help=False)
    connect.add_argument("--server", required=True, metavar="HOST:PORT")
    connect.add_argument("--agency", required=True, metavar="ID", help="the agency's id (login)")
    connect.add_argument("--ssh-key", required=True, metavar="FILE",
                         help="the agency's SSH private key")
    connect.add_argument("--gnupghome", metavar="DIR",
                         help="the agency's GnuPG home (default $GNUPGHOME or ~/.gnupg)")
    connect.add_argument("--exchange-key", metavar="FILE.asc",
                         help="the exchange's public key: needed the first time, then pinned")
    connect.add_argument("--state", metavar="DIR",
                         help="where pins are kept (default ~/.config/exchanged-client)")
    connect.add_argument("--quiet", action="store_true", help="no progress bar")
    sp = sub.add_parser("submit", parents=[connect],
                        help="an agency's client: sign, encrypt, upload, wait, check, decrypt")
    sp.set_defaults(handler=cmd_submit)
    sp.add_argument("--flow", required=True)
    sp.add_argument("file", metavar="FILE.csv")
    sp.add_argument("--batch-id", metavar="ID", help="default: the file's name and the time")
    sp.add_argument("--output", metavar="FILE.csv", help="where to write the answer")
    sp.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS")
    sp.add_argument("--no-wait", action="store_true", help="upload and return at once")
    sp = sub.add_parser("fetch", parents=[connect],
                        help="an agency's client: collect, check and decrypt waiting outcomes")
    sp.set_defaults(handler=cmd_fetch)
    sp.add_argument("--flow", help="only this flow (default: all)")
    sp.add_argument("--output-dir", default=".", metavar="DIR")
    sp.add_argument("--remove", action="store_true",
                    help="remove each outcome from the exchange once it is safely written")

    report = sub.add_parser("report", help="the agreement's periodic reports")
    report_sub = report.add_subparsers(dest="report_command", metavar="COMMAND",
                                       parser_class=Parser)
    for name, help_ in (("berita-acara", "the minutes of the data-matching results "
                                         "(Pasal 3 ayat (2) huruf d), for signing"),
                        ("evaluasi", "the monitoring and evaluation report (Pasal 7)")):
        sp = leaf(report_sub, name, cmd_report, help_)
        sp.set_defaults(report=name)
        sp.add_argument("--agreement", required=True, metavar="ID")
        sp.add_argument("--period", required=True, metavar="2026-H1",
                        help="a half-year (2026-H1, 2026-H2), a quarter (2026-Q3) or a year")
        sp.add_argument("--format", choices=("html", "md", "json"), default="html")
        sp.add_argument("--output", metavar="FILE", help="default: stdout")
        sp.add_argument("--checkpoint", metavar="FILE",
                        help="compute from this signed checkpoint (to re-check a report)")
        sp.add_argument("--no-new-checkpoint", action="store_true",
                        help="use the latest checkpoint instead of signing a new one")

    sp = leaf(sub, "generate", cmd_generate,
              "write synthetic test data (never real people): a register or a KPM batch")
    sp.add_argument("what", choices=("register", "kpm"))
    sp.add_argument("--output", required=True, metavar="FILE.csv")
    sp.add_argument("--rows", type=int, default=1000,
                    help="rows to write (the register's size, or the batch's)")
    sp.add_argument("--seed", type=int, default=1,
                    help="the register's seed; a KPM batch is drawn from the register of the "
                    "same --seed and --register-rows")
    sp.add_argument("--register-rows", type=int, default=1000,
                    help="kpm: the size of the register the batch is drawn from")
    sp.add_argument("--columns", default="ref,nik",
                    help="kpm: the batch's columns, from ref,nik,nama,tanggal_lahir")
    sp.add_argument("--truth", metavar="FILE.csv", help="kpm: also write the expected answers")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # every file exchanged (or gpg, on its behalf) creates is private: 0600, folders 0700
    os.umask(0o077)
    parser = build_parser()
    verbose = "-v" in (argv if argv is not None else sys.argv[1:]) or "--verbose" in (
        argv if argv is not None else sys.argv[1:]
    )
    try:
        args = parser.parse_args(argv)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            raise UsageError("a command is needed (see 'exchanged --help')")
        return handler(args)
    except Error as e:
        if verbose:
            raise
        print(f"exchanged: {e.diagnostics()}", file=sys.stderr)
        return e.exit_code
    except Problem as e:  # the exchange's own files failing it (a full disk, a locked ledger)
        if verbose:
            raise
        print(f"exchanged: cannot go on now: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: one sentence, the traceback only with -v
        if verbose:
            raise
        print(f"exchanged: unexpected error ({type(e).__name__}); run with -v for details",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
