"""``scripts/bench targets``: every case of issue 14 against its honest floor, in one run.

Runs, one after the other on this machine, what ``scripts/bench`` and ``scripts/bench
sftp`` measure case by case (docs/performance.md, "Against the honest floor"):

* ``kpm-verification``, 1 M rows against the 6 M register, answers compressed ``fast``
  (the default) and ``none`` (3 batches each, medians);
* the same at 10 M rows, ``fast`` (one batch; its answer is not checked row by row);
* the ``asn-register`` load of 6 M rows (3 loads, each followed by its floor, medians);
* the embedded SFTP front door against OpenSSH's ``internal-sftp`` (512 MiB, 3 uploads
  to each; needs root for sshd);

then the whole of DTKS (140 M rows) projected from the 10 M run. It prints a table and,
as its last line, one JSON object: each case's figures, its target and whether it was
met, and the load average (other work on the machine makes every wall time longer; the
CPU ratios move much less). About twelve minutes, most of it loading the register.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from benchmarks import matching, sftp

#: DTKS, the social-assistance register, in rows (docs/DOMAIN.md)
DTKS_ROWS = 140_000_000


def _case(main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> dict[str, object]:
    """One benchmark's JSON result (its last printed line)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(list(argv))
    result: dict[str, object] = json.loads(out.getvalue().strip().splitlines()[-1])
    return result


def _num(result: dict[str, object], key: str) -> float:
    value = result[key]
    assert isinstance(value, (int, float))
    return float(value)


@dataclass(frozen=True)
class Case:
    name: str
    target: str
    value: float
    met: bool
    detail: str


def _matching(name: str, result: dict[str, object], bound: float) -> Case:
    ratio = _num(result, "ratio")
    return Case(name, f"ratio <= {bound}", ratio, ratio <= bound,
                f"{result['seconds']} s vs floor {result['floor_seconds']} s, CPU ratio "
                f"{result['cpu_ratio']}, peak {result['processing_peak_rss_mb']} MB")


def run(args: argparse.Namespace) -> dict[str, object]:
    common = ["--cache", args.cache] if args.cache else []
    cases: list[Case] = []
    results: dict[str, dict[str, object]] = {}
    for compression in ("fast", "none"):
        r = results[f"kpm-1m-{compression}"] = _case(matching.main, [
            "--rows", "1000000", "--register-rows", "6000000", "--repeat", "3",
            "--answer-compression", compression, *common])
        cases.append(_matching(f"kpm-verification 1 M / 6 M, {compression}", r, 1.5))
    r = results["kpm-10m-fast"] = _case(matching.main, [
        "--rows", "10000000", "--register-rows", "6000000", "--no-check", *common])
    cases.append(_matching("kpm-verification 10 M / 6 M, fast", r, 1.5))
    r = results["register-6m"] = _case(matching.main, [
        "--flow", "asn-register", "--register-rows", "6000000", "--repeat", "3", *common])
    cases.append(_matching("asn-register load 6 M", r, 2.0))
    if not args.no_sftp:
        r = results["sftp"] = _case(sftp.main, [])
        ratio = _num(r, "ratio")
        cases.append(Case("SFTP upload, embedded / OpenSSH", "ratio >= 0.75", ratio,
                          ratio >= 0.75,
                          f"{r['embedded_mb_per_s']} vs {r['openssh_mb_per_s']} MB/s, "
                          f"CPU ratio {r['cpu_ratio']}"))
    ten = results["kpm-10m-fast"]
    scale = DTKS_ROWS / 10_000_000
    projection = {
        "rows": DTKS_ROWS,
        "seconds": round(scale * _num(ten, "seconds"), 1),
        "floor_seconds": round(scale * _num(ten, "floor_seconds"), 1),
        "peak_rss_mb": ten["processing_peak_rss_mb"],
        "answer_mb": round(scale * _num(ten, "answer_mb"), 1),
    }
    for case in cases:
        print(f"{'met' if case.met else 'NOT'}  {case.name:<36} {case.value:>6.3f} "
              f"({case.target}): {case.detail}")
    print(f"DTKS, {DTKS_ROWS:,} rows, projected from 10 M: {projection['seconds']} s "
          f"(floor {projection['floor_seconds']} s), peak {projection['peak_rss_mb']} MB")
    return {"cases": [asdict(c) for c in cases], "dtks_projection": projection,
            "results": results, "load_average": os.getloadavg()[0]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench targets",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default="", help="where generated CSVs are kept "
                        "(scripts/bench's default if not given)")
    parser.add_argument("--no-sftp", action="store_true",
                        help="leave out the SFTP case (it needs root, for sshd)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
