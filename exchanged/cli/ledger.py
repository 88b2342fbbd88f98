"""The ``ledger`` commands: verify, query, count, checkpoint and prove the ledger."""

from __future__ import annotations

import argparse
import json
import sys
import time as clock
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from exchanged.cli.common import Leaf, Parser, csv_out, home_of, parse_moment
from exchanged.errors import CheckFailed, UsageError
from exchanged.home import load_config


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    from exchanged.ledger import open_ledger
    from exchanged.ledger.checkpoints import read_checkpoint
    from exchanged.ledger.merkle import root

    home = home_of(args)
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

    home = home_of(args)
    ledger = open_ledger(home)
    made = make_checkpoint(home, ledger, actor="admin")
    print(f"checkpoint of {made.head.tree_size} entries, tree head {made.head.root_hash}")
    print(f"signed into {made.path}; delivered to /outbox/ledger/ of "
          f"{', '.join(made.delivered) or 'no agency yet'}")
    _timestamps(home, ledger)
    return 0


def _timestamps(home: Any, ledger: Any) -> None:
    from exchanged.home import load_config
    from exchanged.ledger.timestamps import stamp_pending

    run = stamp_pending(home, ledger, load_config(home))
    for s in run.stamped:
        print(f"checkpoint {s.size} timestamped by the authority at {s.gen_time} "
              f"(token SHA-256 {s.sha256})")
    if run.failed:
        print(f"warning: not timestamped now ({run.failed}); it is asked for again later",
              file=sys.stderr)


def cmd_ledger_witnesses(args: argparse.Namespace) -> int:
    from exchanged.ledger.witness import describe, witness_keys

    home = home_of(args)
    for agency, key in sorted(witness_keys(home).items()):
        print(f"witness {agency}: {key.vkey()}")
    for note in describe(home)[-args.last:]:
        print(f"checkpoint {note['tree_size']} root {note['root_hash']}: co-signed by "
              f"{', '.join(note['cosigned_by']) or 'no one yet'}")
    return 0


def cmd_ledger_timestamp(args: argparse.Namespace) -> int:
    from exchanged.ledger import open_ledger

    home = home_of(args)
    _timestamps(home, open_ledger(home))
    return 0


def cmd_ledger_check_timestamp(args: argparse.Namespace) -> int:
    from exchanged.errors import UsageError
    from exchanged.ledger.notes import parse_note
    from exchanged.ledger.timestamps import verify_token

    try:
        token, note = Path(args.token).read_bytes(), Path(args.note).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {e.filename}: {e.strerror}") from None
    info = verify_token(token, parse_note(note).text.encode(), Path(args.tsa_chain)).tst_info
    print(f"checkpoint {parse_note(note).checkpoint().tree_size} existed at "
          f"{info.gen_time.isoformat()} (RFC 3161 token of a timestamping authority of "
          f"{args.tsa_chain})")
    return 0


def cmd_ledger_prove(args: argparse.Namespace) -> int:
    from exchanged.ledger import open_ledger
    from exchanged.ledger.checkpoints import latest, read_checkpoint
    from exchanged.ledger.treehead import consistency, inclusion

    home = home_of(args)
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
    home = None if key is not None else home_of(args)
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


def _span(args: argparse.Namespace, config: Any) -> tuple[str | None, str | None]:
    """--period, or --since and --until, as ledger timestamps."""
    if getattr(args, "period", None):
        from exchanged.reports.figures import parse_span

        if args.since or args.until:
            raise UsageError("give --period or --since/--until, not both")
        period = parse_span(args.period, config.zone)
        return period.since, period.until
    return (parse_moment(args.since, config) if args.since else None,
            parse_moment(args.until, config, end=True) if args.until else None)


def _check_names(home: Any, ledger: Any, agency: str | None, flow: str | None) -> None:
    """An unknown --agency or --flow is an error that lists the known ones."""
    if agency is None and flow is None:
        return
    from exchanged.ledger.stats import recorded
    from exchanged.policy.known import known_names

    known_names(home).check(agency=agency, flow=flow, more=lambda what: recorded(ledger, what))


def cmd_ledger_stats(args: argparse.Namespace) -> int:
    from exchanged.ledger import open_ledger
    from exchanged.ledger.stats import stats

    home = home_of(args)
    config = load_config(home)
    ledger = open_ledger(home, readonly=True)
    _check_names(home, ledger, args.agency, args.flow)
    since, until = _span(args, config)
    result = stats(ledger, since, until, agency=args.agency, flow=args.flow)
    if args.format == "json":
        print(json.dumps({"entries": result.entries,
                          **{name: dict(rows) for name, rows in result.sections()}},
                         ensure_ascii=False))
    elif args.format == "csv":
        with csv_out(["by", "key", "count"]) as w:
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


BATCH_COLUMNS = ["received", "agency", "flow", "batch", "uid", "rows", "outcome",
                 "counts_or_reasons", "answered", "downloaded"]


def cmd_ledger_batches(args: argparse.Namespace) -> int:
    from exchanged.home.keyed import existing_hasher
    from exchanged.ledger import open_ledger
    from exchanged.ledger.batches import BatchFilter, batches

    home = home_of(args)
    config = load_config(home)
    ledger = open_ledger(home, readonly=True)
    _check_names(home, ledger, args.agency, args.flow)
    since, until = _span(args, config)
    rows = batches(ledger, BatchFilter(agency=args.agency, flow=args.flow, batch=args.batch,
                                       since=since, until=until, outcome=args.outcome),
                   name_hash=existing_hasher(home.ledger_hmac_key))
    if args.format == "json":
        for row in rows:
            print(json.dumps(row.as_dict(), ensure_ascii=False))
        return 0
    if args.format == "csv":
        with csv_out(BATCH_COLUMNS) as w:
            for row in rows:
                w.write([row.received, row.agency, row.flow, row.batch, row.uid,
                         "" if row.rows is None else str(row.rows), row.outcome, row.summary(),
                         row.answered or "", row.downloaded or ""])
        return 0
    print(f"{'received (UTC)':<20} {'agency':<10} {'flow':<20} {'batch':<24} {'uid':<26} "
          f"{'rows':>8}  {'outcome':<9} {'downloaded':<20} counts or reasons")
    for row in rows:
        print(f"{row.received[:19]:<20} {row.agency:<10} {row.flow:<20} {row.batch:<24} "
              f"{row.uid:<26} {'-' if row.rows is None else row.rows:>8}  {row.outcome:<9} "
              f"{(row.downloaded or '-')[:19]:<20} {row.summary() or '-'}")
    return 0


def cmd_ledger_browse(args: argparse.Namespace) -> int:
    from exchanged.admin.browse import serve

    serve(home_of(args), host=args.host, port=args.port)
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

    home = home_of(args)
    config = load_config(home)
    if args.kind is not None:
        from exchanged.ledger.kinds import KINDS

        prefix = args.kind.rstrip("*")
        family = args.kind.endswith(("*", "."))
        if not (args.kind in KINDS or family and any(k.startswith(prefix) for k in KINDS)):
            families = sorted({k.split(".")[0] + "." for k in KINDS})
            raise UsageError(f"{args.kind!r} is not a ledger entry kind (families: "
                             f"{', '.join(families)}; see docs/ledger.md)")
    ledger = open_ledger(home, readonly=True)
    _check_names(home, ledger, args.agency, args.flow)
    batch, uid = (None, None)
    if args.batch is not None:
        from exchanged.ledger.batches import resolve_batch

        batch, uid = resolve_batch(ledger, args.batch)
    query = Query(
        agency=args.agency,
        flow=args.flow,
        batch=batch,
        uid=uid,
        kind=args.kind,
        since=parse_moment(args.since, config) if args.since else None,
        until=parse_moment(args.until, config, end=True) if args.until else None,
    )
    out = sys.stdout
    with ExitStack() as stack:
        writer = (stack.enter_context(csv_out(["seq", "ts", "kind", "agency", "flow", "batch",
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


PERIOD_HELP = "a month (2026-03), a quarter (2026-Q3), a half-year (2026-H1) or a year (2026)"


def add_parsers(sub: argparse._SubParsersAction[Parser], leaf: Leaf) -> None:
    """Add the parsers of ledger verify, query, stats, batches, checkpoint, prove, check-proof."""
    ledger = sub.add_parser("ledger", help="verify and query the ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", metavar="COMMAND",
                                       parser_class=Parser)
    sp = leaf(ledger_sub, "verify", cmd_ledger_verify,
              "recompute the whole hash chain and tree head; check it extends checkpoints")
    sp.add_argument("--against", action="append", metavar="CHECKPOINT",
                    help="a signed checkpoint the ledger must extend (repeatable)")
    sp = leaf(ledger_sub, "query", cmd_ledger_query, "list ledger entries")
    sp.add_argument("--agency", metavar="ID")
    sp.add_argument("--flow", metavar="F")
    sp.add_argument("--batch", metavar="B", help="a batch id, or the exchange's uid of an upload")
    sp.add_argument("--kind", metavar="K", help="an entry kind; 'batch.' or 'batch.*' for a family")
    sp.add_argument("--since", metavar="T",
                    help="from this date or time (dates in the home's zone)")
    sp.add_argument("--until", metavar="T", help="up to this date (inclusive) or time (exclusive)")
    sp.add_argument("--format", choices=("table", "json", "csv"), default="table")
    sp.add_argument("--follow", action="store_true",
                    help="keep printing new entries as they are written (Ctrl-C stops)")
    sp = leaf(ledger_sub, "stats", cmd_ledger_stats,
              "counts by agency, flow, kind, outcome, reason and month")
    sp.add_argument("--agency", metavar="ID", help="only this agency's entries")
    sp.add_argument("--flow", metavar="F", help="only this flow's entries")
    sp.add_argument("--period", metavar="P", help=PERIOD_HELP)
    sp.add_argument("--since", metavar="T")
    sp.add_argument("--until", metavar="T")
    sp.add_argument("--format", choices=("table", "json", "csv"), default="table")
    sp = leaf(ledger_sub, "batches", cmd_ledger_batches,
              "one row per upload: received, rows, outcome, counts or reasons, downloaded")
    sp.add_argument("--agency", metavar="ID")
    sp.add_argument("--flow", metavar="F")
    sp.add_argument("--batch", metavar="B", help="a batch id, or the exchange's uid of an upload")
    sp.add_argument("--period", metavar="P", help=PERIOD_HELP + " (by the time received)")
    sp.add_argument("--since", metavar="T", help="received from this date or time")
    sp.add_argument("--until", metavar="T", help="received up to this date (inclusive) or time")
    sp.add_argument("--outcome", choices=("result", "rejected", "pending"))
    sp.add_argument("--format", choices=("table", "json", "csv"), default="table")
    sp = leaf(ledger_sub, "browse", cmd_ledger_browse,
              "the ledger read-only in a browser (Datasette) on 127.0.0.1, with saved queries")
    sp.add_argument("--port", type=int, default=8001, metavar="N",
                    help="the port on 127.0.0.1 (default 8001)")
    sp.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                    help="127.0.0.1 only: any other address is refused")
    leaf(ledger_sub, "checkpoint", cmd_ledger_checkpoint,
         "sign the ledger's tree head now and deliver it to every agency")
    sp = leaf(ledger_sub, "witnesses", cmd_ledger_witnesses,
              "the agencies' witness keys, and who co-signed each recent checkpoint")
    sp.add_argument("--last", type=int, default=10, metavar="N",
                    help="the N newest checkpoints (default 10)")
    leaf(ledger_sub, "timestamp", cmd_ledger_timestamp,
         "ask the timestamping authority now for every checkpoint without a token")
    sp = leaf(ledger_sub, "check-timestamp", cmd_ledger_check_timestamp,
              "check a checkpoint's RFC 3161 token, with only the authority's certificates")
    sp.add_argument("--token", required=True, metavar="FILE.tsr")
    sp.add_argument("--note", required=True, metavar="FILE.note")
    sp.add_argument("--tsa-chain", required=True, metavar="FILE.pem",
                    help="the authority's certificate chain up to its root")
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
