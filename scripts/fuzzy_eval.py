"""Precision and recall of the fuzzy fallback on a labelled synthetic set (docs/matching.md).

    .venv/bin/python scripts/fuzzy_eval.py [--register-rows N] [--rows N] [--seed S]

Builds a synthetic register and its fuzzy index exactly as a register load
does, generates labelled KPM rows (exchanged.testing.synth.variants: positives are
register people written differently, with a NIK the register does not
hold; hard negatives are look-alikes born the same day, or the same name on
another day; background rows are ordinary not-found KPM people), scores
them, and prints precision and recall by threshold, what each kind of row
scored, and the build and search speeds. The last line is one JSON object.

A negative whose normalised name and birth date are exactly those of some
register person cannot be told apart from that person by any name matcher;
such rows are counted separately ("indistinguishable") and left out of the
precision. The synthetic name pools are small, so this happens far more
often here than in real registers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exchanged.matching.fuzzy import FuzzyIndex, FuzzyIndexBuilder  # noqa: E402
from exchanged.matching.names import NameNormaliser  # noqa: E402
from exchanged.testing.synth import SyntheticRegister  # noqa: E402
from exchanged.testing.synth.variants import FUZZY_STATUS, FuzzyCase, fuzzy_cases  # noqa: E402

THRESHOLDS = (0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98, 1.00)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--register-rows", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--precision", type=float, default=0.99,
                        help="the precision a threshold must reach to be acceptable")
    parser.add_argument("--default", type=float, default=0.92,
                        help="the shipped default min_score, reported beside the lowest "
                             "acceptable threshold")
    args = parser.parse_args()

    register = SyntheticRegister(args.register_rows, seed=args.seed)
    cases = list(fuzzy_cases(register, args.rows, seed=args.seed + 7))
    wanted_dobs = {c.tanggal_lahir for c in cases if c.expected_status != FUZZY_STATUS}
    normalise = NameNormaliser()
    register_names: set[tuple[str, tuple[str, ...]]] = set()

    secret = os.urandom(32)
    with tempfile.TemporaryDirectory(prefix="fuzzy-eval-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        target = Path(tmp) / "snapshot.fuzzy"
        started = time.perf_counter()
        builder = FuzzyIndexBuilder(target, secret, work)
        for i in range(len(register)):
            person = register.row(i)
            builder.add(i + 2, person.nama, person.tanggal_lahir)
            if person.tanggal_lahir in wanted_dobs:
                register_names.add((person.tanggal_lahir, normalise(person.nama)))
        report = builder.finish()
        build_seconds = time.perf_counter() - started
        size = target.stat().st_size
        with FuzzyIndex(target, secret) as index:
            started = time.perf_counter()
            scores = index.best_scores((c.nama, c.tanggal_lahir) for c in cases)
            search_seconds = time.perf_counter() - started
            # ordinary KPM rows alone: what most of a real batch is
            background = [(c.nama, c.tanggal_lahir) for c in cases if c.kind == "background"]
            started = time.perf_counter()
            index.best_scores(background)
            background_seconds = time.perf_counter() - started

    def indistinguishable(case: FuzzyCase) -> bool:
        return (case.expected_status != FUZZY_STATUS
                and (case.tanggal_lahir, normalise(case.nama)) in register_names)

    labelled = [(c, s) for c, s in zip(cases, scores, strict=True) if not indistinguishable(c)]
    excluded = Counter(c.kind for c in cases if indistinguishable(c))
    positives = sum(1 for c, _ in labelled if c.expected_status == FUZZY_STATUS)
    rows = []
    for t in THRESHOLDS:
        tp = sum(1 for c, s in labelled if s >= t and c.expected_status == FUZZY_STATUS)
        fp = sum(1 for c, s in labelled if s >= t and c.expected_status != FUZZY_STATUS)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / positives if positives else 0.0
        rows.append({"threshold": t, "tp": tp, "fp": fp, "precision": round(precision, 4),
                     "recall": round(recall, 4)})
    good = [r for r in rows if r["precision"] >= args.precision]
    lowest = min(good, key=lambda r: r["threshold"]) if good else None
    chosen = next((r for r in rows if r["threshold"] == args.default), rows[-1])

    print(f"register {args.register_rows:,} rows (seed {args.seed}); index: "
          f"{report.records:,} people, {report.entries:,} keys, {size / 2**20:.1f} MiB, "
          f"built in {build_seconds:.1f} s ({args.register_rows / build_seconds:,.0f} rows/s)")
    print(f"labelled rows {len(cases):,}: {positives:,} positive, "
          f"{len(labelled) - positives:,} negative; {sum(excluded.values())} negatives "
          f"indistinguishable ({dict(excluded)}); searched in {search_seconds:.1f} s "
          f"({len(cases) / search_seconds:,.0f} rows/s; ordinary not-found rows alone "
          f"{len(background) / background_seconds:,.0f} rows/s)")
    print()
    print("| threshold | KEMUNGKINAN_ASN | true | false | precision | recall |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['threshold']:.2f} | {r['tp'] + r['fp']} | {r['tp']} | {r['fp']} | "
              f"{r['precision']:.4f} | {r['recall']:.4f} |")
    print()
    if lowest is not None:
        print(f"lowest threshold with precision >= {args.precision}: {lowest['threshold']:.2f} "
              f"(recall {lowest['recall']:.4f}); default {chosen['threshold']:.2f}: precision "
              f"{chosen['precision']:.4f}, recall {chosen['recall']:.4f}")
        print()
    by_kind: dict[str, list[float]] = defaultdict(list)
    for c, s in labelled:
        by_kind[c.kind].append(s)
    t = chosen["threshold"]
    print(f"by kind, at the threshold {t:.2f}:")
    print()
    print("| kind | label | rows | at or above | share |")
    print("| --- | --- | ---: | ---: | ---: |")
    for kind in sorted(by_kind, key=lambda k: (k not in _positive_kinds(labelled), k)):
        values = by_kind[kind]
        above = sum(1 for v in values if v >= t)
        label = "positive" if kind in _positive_kinds(labelled) else "negative"
        print(f"| {kind} | {label} | {len(values)} | {above} | {above / len(values):.3f} |")
    print()
    print(json.dumps({
        "register_rows": args.register_rows, "rows": len(cases), "seed": args.seed,
        "positives": positives, "negatives": len(labelled) - positives,
        "indistinguishable": sum(excluded.values()), "threshold": t,
        "lowest_threshold": lowest["threshold"] if lowest else None,
        "precision": chosen["precision"], "recall": chosen["recall"],
        "build_rows_per_second": round(args.register_rows / build_seconds),
        "search_rows_per_second": round(len(cases) / search_seconds),
        "background_rows_per_second": round(len(background) / background_seconds),
        "index_mib": round(size / 2**20, 1),
    }))
    return 0


def _positive_kinds(labelled: list[tuple[FuzzyCase, float]]) -> set[str]:
    return {c.kind for c, _ in labelled if c.expected_status == FUZZY_STATUS}


if __name__ == "__main__":
    raise SystemExit(main())
