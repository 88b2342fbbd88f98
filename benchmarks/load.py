"""The load benchmark: many agencies uploading many batches at once, over real SFTP.

    python -m benchmarks.load [--agencies 20] [--batches 50] [--rows 100] [--workers 2]
                                  [--register-rows 10000] [--keep DIR]

builds a throw-away home under a fictional agreement (clearly labelled: its
parties, numbers and dates are invented) with one data registrar and N
agencies, each with a ``nik-lookup`` flow of its own against the registrar's
dataset; makes every agency's keys with ``gpg`` and ``ssh-keygen`` (through
:mod:`exchanged.testing.agencydesk`, as an agency would); starts the real daemon;
loads the register; seals every batch in advance; then lets all the agencies
upload all their batches at the same moment, each over its own OpenSSH
``sftp`` session, and waits until every batch is answered.

It checks that every batch was answered exactly once (one ``batch.answered``
entry and one outcome file each, a result and not a refusal), and prints, as
its last line, one JSON object with the figures: the latency of each batch
from its receipt to its answer (``batch.received`` to ``batch.answered`` in
the ledger; p50, p95, max), the throughput over the whole run (batches and
rows a second, from the first upload to the last answer) and how long the
uploads took. The exit code is 1 if a batch was lost or answered twice.

All data is synthetic (:mod:`exchanged.testing.synth`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from exchanged.ledger import Query
from exchanged.testing import synth
from exchanged.testing.crowd import (
    DATASET,
    REGISTRAR,
    Bench,
    agency_ids,
    batch_csv,
    check_flow,
    prepare,
    register_csv,
    seal_all,
    wait_answered,
)


def seconds_between(start: str, end: str) -> float:
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def figures(bench: Bench, expected: dict[str, set[str]], wall: float, upload_s: float,
            rows: int) -> dict[str, Any]:
    """Exactly once, by the ledger and by the outboxes; latencies from the ledger."""
    ledger = bench.ledger()
    try:
        received: dict[tuple[str, str], str] = {}
        answered: dict[tuple[str, str], list[str]] = {}
        outcomes: dict[tuple[str, str], str] = {}
        for entry in ledger.query(Query(kind="batch.received")):
            if entry.agency in expected:
                received[(entry.agency, str(entry.batch))] = entry.ts
        for entry in ledger.query(Query(kind="batch.answered")):
            if entry.agency in expected:
                key = (entry.agency, str(entry.batch))
                answered.setdefault(key, []).append(entry.ts)
                outcomes[key] = str(entry.data.get("outcome"))
    finally:
        ledger.close()
    wanted = {(a, b) for a, ids in expected.items() for b in ids}
    missing = sorted(wanted - set(answered))
    twice = sorted(k for k, v in answered.items() if len(v) > 1)
    refused = sorted(k for k, v in outcomes.items() if v != "result")
    files_wrong = []
    for agency, ids in expected.items():
        names = os.listdir(bench.home.outbox(agency, check_flow(agency)))
        for batch_id in ids:
            mine = [n for n in names if n.startswith(f"{batch_id}.")]
            if mine != [f"{batch_id}.result.csv.gpg"]:
                files_wrong.append((agency, batch_id, mine))
    latencies = [seconds_between(received[k], answered[k][0]) for k in wanted
                 if k in received and k in answered]
    total = len(wanted)
    return {
        "agencies": len(expected),
        "batches": total,
        "rows_per_batch": rows,
        "answered": len(answered),
        "missing": len(missing),
        "answered_twice": len(twice),
        "refused": len(refused),
        "outcome_files_wrong": len(files_wrong),
        "latency_p50_s": round(percentile(latencies, 0.50), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "latency_max_s": round(max(latencies, default=0.0), 3),
        "latency_mean_s": round(statistics.fmean(latencies), 3) if latencies else 0.0,
        "upload_s": round(upload_s, 2),
        "wall_s": round(wall, 2),
        "throughput_batches_per_s": round(total / wall, 2) if wall else 0.0,
        "throughput_rows_per_s": round(total * rows / wall, 1) if wall else 0.0,
        "ok": not (missing or twice or refused or files_wrong),
    }


def run(root: Path, *, agencies: int = 20, batches: int = 50, rows: int = 100,
        register_rows: int = 10_000, workers: int = 2, timeout: float = 1800,
        say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The whole benchmark in ``root``; returns the figures (see the module's comment)."""
    ids = agency_ids(agencies)
    bench = prepare(root, ids, workers=workers, say=say)
    register = synth.SyntheticRegister(register_rows, seed=17)
    try:
        bench.start()
        say(f"loading a register of {register_rows} rows")
        registrar = bench.desks[REGISTRAR]
        plain = registrar.dir / "register.csv"
        plain.write_bytes(register_csv(register))
        sealed = registrar.seal(plain, registrar.dir / "register-1.csv.gpg",
                                recipient=bench.fingerprint)
        result = bench.upload(REGISTRAR, [sealed], DATASET)
        if result.returncode != 0:
            raise RuntimeError("the register could not be uploaded")
        wait_answered(bench, 1, timeout=300)
        outsiders = synth.SyntheticRegister(max(1, register_rows // 10), seed=18)
        plan = {a: [(f"b{j:03d}", batch_csv(register, outsiders, rows, seed=i * 1000 + j))
                    for j in range(batches)] for i, a in enumerate(ids)}
        say(f"sealing {agencies * batches} batches of {rows} rows")
        files = seal_all(bench, plan)
        say(f"{agencies} agencies upload {batches} batches each, all at once")
        barrier = threading.Barrier(len(ids) + 1)
        failures: list[str] = []
        retries: list[str] = []

        def agency_uploads(agency: str) -> None:
            # all agencies connect from this one address, where the front door lets only a
            # few log in at the same moment: like any agency's script, retry what was not
            # received (never what was: that would be a replay)
            pending = files[agency]
            barrier.wait()
            for attempt in range(20):
                if bench.upload(agency, pending, check_flow(agency)).returncode == 0:
                    return
                retries.append(agency)
                got = bench.received(agency)
                pending = [f for f in pending if f.name.removesuffix(".csv.gpg") not in got]
                if not pending:
                    return
                time.sleep(0.05 * (attempt + 1) + 0.01 * (hash(agency) % 10))
            failures.append(agency)

        threads = [threading.Thread(target=agency_uploads, args=(a,)) for a in ids]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.monotonic()
        for t in threads:
            t.join()
        upload_s = time.monotonic() - started
        if failures:
            raise RuntimeError(f"uploads failed for {', '.join(sorted(failures))}")
        wait_answered(bench, 1 + agencies * batches, timeout=timeout)
        wall = time.monotonic() - started
        expected = {a: {b for b, _ in plan[a]} for a in ids}
        out = figures(bench, expected, wall, upload_s, rows)
        out["workers"] = workers
        out["session_retries"] = len(retries)
        out["register_rows"] = register_rows
        return out
    finally:
        bench.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--agencies", type=int, default=20)
    parser.add_argument("--batches", type=int, default=50, help="batches per agency")
    parser.add_argument("--rows", type=int, default=100, help="rows per batch")
    parser.add_argument("--register-rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="the daemon's workers")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    args = parser.parse_args(argv)
    if not 1 <= args.agencies <= 99:
        parser.error("--agencies must be 1 to 99")

    def say(text: str) -> None:
        print(f"loadbench: {text}", file=sys.stderr, flush=True)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="exchanged-load-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        out = run(root, agencies=args.agencies, batches=args.batches, rows=args.rows,
                  register_rows=args.register_rows, workers=args.workers, say=say)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, sort_keys=True))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
