"""The ledger's benchmark: durable appends per second, verifying and querying a million entries.

    python -m benchmarks.ledger [--entries 1000000] [--appends 5000]

Last line: one JSON object with the figures. Targets (issue 4): at least 2,000
durable appends per second; ``ledger verify`` over 1 million entries under 10
seconds; a query by batch over 1 million entries under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from exchanged.admin.browse import build_view
from exchanged.ledger import Ledger, Query, merkle
from exchanged.ledger.batches import BatchFilter, batches
from exchanged.ledger.treehead import tree_head


def fill(ledger: Ledger, entries: int) -> None:
    """Entries shaped like a busy exchange's, written in large transactions (setup only)."""
    kinds = ("batch.received", "batch.opened", "batch.admitted", "batch.processed",
             "batch.answered")
    with ledger.transaction() as txn:
        for i in range(entries):
            b = i // 5
            if i % 5 == 0:  # an upload's uid: the second it began, before it was received
                began = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            txn.append(kinds[i % 5], agency="kemensos" if b % 3 else "bkn",
                       flow="kpm-verification" if b % 3 else "asn-register", batch=f"batch-{b}",
                       uid=f"{began}-{b:08x}", rows=1000 + b % 977,
                       upload_sha256=f"{b:064x}", counts={"ASN": b % 17, "TIDAK_DITEMUKAN": 983})


def compliance_desk(ledger: Ledger, root: Path, size: int) -> dict[str, float]:
    """`ledger batches` (one row per upload), a look-up by uid, and `ledger browse`'s copy."""
    t0 = time.perf_counter()
    uploads = sum(1 for _ in batches(ledger))
    listing = time.perf_counter() - t0
    print(f"ledger batches over {size:,} entries: {uploads:,} uploads in {listing:.2f} s",
          flush=True)
    timings = []
    for b in range(0, uploads, max(1, uploads // 20)):
        [uid] = [e.data["uid"] for e in ledger.query(Query(batch=f"batch-{b}",
                                                           kind="batch.received"))]
        t0 = time.perf_counter()
        found = list(batches(ledger, BatchFilter(batch=uid)))
        timings.append(time.perf_counter() - t0)
        assert len(found) == 1
    by_uid_ms = statistics.median(timings) * 1000
    print(f"ledger batches --batch UID over {size:,} entries: median {by_uid_ms:.1f} ms",
          flush=True)
    t0 = time.perf_counter()
    view = build_view(ledger, root / "view.db")
    copy = time.perf_counter() - t0
    print(f"ledger browse's read-only copy of {view.entries:,} entries and {view.uploads:,} "
          f"uploads: {copy:.2f} s", flush=True)
    return {"batches_listing_seconds": round(listing, 2), "batches_by_uid_ms": round(by_uid_ms, 1),
            "browse_copy_seconds": round(copy, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=5_000)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="exchanged-ledger-bench-"))
    try:
        ledger = Ledger(root / "ledger.db")
        ledger.create(exchange_name="bench")
        # durable appends: one transaction (and one fsync) each, as the daemon writes them
        t0 = time.perf_counter()
        for i in range(args.appends):
            ledger.append("login.succeeded", agency="kemensos", actor="kemensos",
                          remote=f"10.0.0.{i % 250}:22")
        appends = args.appends / (time.perf_counter() - t0)
        print(f"durable appends: {appends:,.0f} per second ({args.appends} appends)", flush=True)
        fill(ledger, args.entries - args.appends - 1)
        size = ledger.head()[0]
        t0 = time.perf_counter()
        report = ledger.verify()
        verify_seconds = time.perf_counter() - t0
        assert report.ok, report.problem
        print(f"verify over {size:,} entries: {verify_seconds:.2f} s (chain and tree head)",
              flush=True)
        t0 = time.perf_counter()
        tree_head(ledger, exchange="bench", fingerprint="0" * 40)
        head_seconds = time.perf_counter() - t0
        print(f"tree head over {size:,} entries: {head_seconds:.2f} s", flush=True)
        # what a checkpoint's note adds (ledger/witness.py): the consistency proof from the
        # checkpoint before it (here 1,000 entries earlier), and an agency's check of it
        leaves = ledger.leaves(size)
        t0 = time.perf_counter()
        proof = merkle.consistency_proof(leaves, size - 1000)
        proof_seconds = time.perf_counter() - t0
        old, new = merkle.root(leaves[:size - 1000]), merkle.root(leaves)
        t0 = time.perf_counter()
        assert merkle.verify_consistency(size - 1000, size, old, new, proof)
        check_ms = (time.perf_counter() - t0) * 1000
        print(f"consistency proof for a note over {size:,} entries: {proof_seconds:.2f} s; "
              f"checked by the agency in {check_ms:.2f} ms", flush=True)
        timings = []
        for b in range(0, size // 5, max(1, size // 5 // 50)):
            t0 = time.perf_counter()
            found = list(ledger.query(Query(batch=f"batch-{b}")))
            timings.append(time.perf_counter() - t0)
            assert len(found) == 5
        query_ms = statistics.median(timings) * 1000
        print(f"query by batch over {size:,} entries: median {query_ms:.2f} ms, "
              f"max {max(timings) * 1000:.2f} ms ({len(timings)} queries)", flush=True)
        desk = compliance_desk(ledger, root, size)
        print(json.dumps({"entries": size, "appends_per_second": round(appends),
                          "verify_seconds": round(verify_seconds, 2),
                          "tree_head_seconds": round(head_seconds, 2),
                          "note_proof_seconds": round(proof_seconds, 2),
                          "note_proof_check_ms": round(check_ms, 3),
                          "query_by_batch_ms": round(query_ms, 2), **desk}))
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
