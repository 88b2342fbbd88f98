"""``scripts/bench tokens``: matching on keyed tokens against the plain path, same data, same run.

1. the plain path first, exactly as ``scripts/bench`` measures it
   (:func:`benchmarks.matching.run`: a register loaded, then a KPM batch
   matched, timed from the upload's close to the outcome, against the gpg floor);
2. then the same register and batch on tokens: a new token key
   (``exchanged client token-key new``'s library call), an exchange whose
   addendum puts ``asn-register`` and ``kpm-verification`` on that key, the
   register and the batch tokenized on the agency's side
   (:func:`exchanged.client.tokens.tokenize`, in a child process importing only
   the client, whose peak memory is read from the kernel), sealed and uploaded,
   the daemon timed as in step 1, the answer given its NIKs back
   (:func:`~exchanged.client.tokens.restore`, in a child process too) and
   checked row by row against the ground truth.

The last line is one JSON object: the plain and the token figures side by side,
and the agency's own costs (tokenizing, restoring: seconds and peak memory).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import matching
from exchanged.client.tokens import new_token_key
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent

AGREEMENT = matching.AGREEMENT


def addendum(fingerprint: str) -> str:
    tokens = (f"tokens: {{key_fingerprint: '{fingerprint}', clause: Pasal 9 ayat (9), "
              "reference: EXAMPLE ONLY - benchmark}")
    return (f"format: exchanged/addendum-v1\naddendum:\n  agreement: {AGREEMENT}\n  number: 2\n"
            "  reference: EXAMPLE ONLY - matching on keyed tokens, benchmark\n"
            "  recorded: '2026-01-01'\n  clause: Pasal 12 ayat (2)\n  example: true\n"
            f"  amend_flows:\n    asn-register:\n      {tokens}\n"
            f"    kpm-verification:\n      {tokens}\n")


#: the agency-side step, alone in a child process: what the client imports, and the work
#: timed from inside (so the figure is the step's, not the interpreter's start-up)
CHILD = """
import sys, time
from pathlib import Path
from exchanged.client.tokens import read_token_key, restore, tokenize
step, *paths = sys.argv[1:]
key = read_token_key(Path(paths[-1]))
start = time.perf_counter()
if step == "tokenize":
    tokenize(Path(paths[0]), Path(paths[1]), key)
else:
    restore(Path(paths[0]), Path(paths[1]), Path(paths[2]), key)
seconds = time.perf_counter() - start
# this process's own high-water mark (exec gave it a fresh one: the parent's pages, which a
# forked child's rusage may count, are not in it)
with open("/proc/self/status") as f:
    peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(seconds, peak_kb)
"""


def child(step: str, *paths: str) -> tuple[float, float]:
    """Run one agency-side step in a child process: (seconds, its own peak resident MB)."""
    done = subprocess.run([sys.executable, "-c", CHILD, step, *paths], stdout=subprocess.PIPE,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the client's {step} failed")
    seconds, peak_kb = done.stdout.split()
    return float(seconds), int(peak_kb) / 1024


def run_tokens(args: argparse.Namespace) -> dict[str, object]:
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="exchanged-bench-tokens-", dir=args.workdir))
    os.chmod(root, 0o700)
    kemensos, bkn = AgencyDesk("kemensos", root / "kemensos"), AgencyDesk("bkn", root / "bkn")
    for desk in (kemensos, bkn):
        desk.create_keys()
    key_file = root / "token.key"
    fingerprint = new_token_key(key_file)
    daemon = matching.Daemon(root)
    daemon.init([kemensos, bkn])
    (daemon.home / "policies" / f"{AGREEMENT}.addendum-002.yaml").write_text(
        addendum(fingerprint))
    figures: dict[str, object] = {}
    try:
        register = matching.register_csv(cache, args.register_rows)
        batch, truth = matching.kpm_csv(cache, args.rows, args.register_rows)
        reg_tokens, kpm_tokens = root / "register.tokens.csv", root / "kpm.tokens.csv"
        reg_s, reg_mb = child("tokenize", str(register), str(reg_tokens), str(key_file))
        kpm_s, kpm_mb = child("tokenize", str(batch), str(kpm_tokens), str(key_file))
        daemon.start()
        sealed_register = bkn.seal(reg_tokens, root / "register.csv.gpg",
                                   recipient=daemon.fingerprint)
        load = matching.submit_and_time(daemon, bkn, "asn-register", sealed_register,
                                        "asn-tokens", args.timeout)
        if '"ROWS_LOADED","' not in bkn.open(load.outcome).data.decode():
            raise SystemExit("the tokenized register did not load")
        daemon.stop()
        daemon.start()  # a fresh process: its high-water mark is the batch's
        sealed = kemensos.seal(kpm_tokens, root / "kpm.csv.gpg", recipient=daemon.fingerprint)
        timing = matching.submit_and_time(daemon, kemensos, "kpm-verification", sealed,
                                          "kpm-tokens", args.timeout)
        seen = root / "answer.tokens.csv"
        seen.write_bytes(kemensos.open(timing.outcome).data)
        answer = root / "answer.csv"
        restore_s, restore_mb = child("restore", str(seen), str(batch), str(answer),
                                      str(key_file))
        matching.check_kpm_answer(answer, truth, args.rows)
        floor = matching.floor(daemon, sealed, seen, kemensos.fingerprint)
        figures = {
            "seconds": round(timing.seconds, 3),
            "floor_seconds": round(floor.seconds, 3),
            "ratio": round(timing.seconds / floor.seconds, 3),
            "processing_peak_rss_mb": round(timing.processing_rss_mb, 1),
            "rows_per_second": round(args.rows / timing.seconds),
            "register_load_seconds": round(load.seconds, 3),
            "register_load_peak_rss_mb": round(load.processing_rss_mb, 1),
            "upload_bytes": sealed.stat().st_size,
            "client_tokenize_batch_seconds": round(kpm_s, 3),
            "client_tokenize_register_seconds": round(reg_s, 3),
            "client_restore_seconds": round(restore_s, 3),
            "client_peak_rss_mb": round(max(reg_mb, kpm_mb, restore_mb), 1),
        }
    finally:
        daemon.stop()
        for desk in (kemensos, bkn):
            stop_gpg_agent(desk.gnupg)
        stop_gpg_agent(daemon.home / "keys" / "gnupg")
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench tokens",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--register-rows", type=int, default=1_000_000)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "exchanged-bench"))
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--no-plain", dest="plain", action="store_false",
                        help="skip the plain path (only the token figures)")
    args = parser.parse_args(argv)
    plain: dict[str, object] = {}
    if args.plain:
        plain_args = argparse.Namespace(flow="kpm-verification", rows=args.rows,
                                        register_rows=args.register_rows, repeat=1,
                                        cache=args.cache, workdir=args.workdir,
                                        timeout=args.timeout, check=True, keep=False)
        plain = matching.run(plain_args)
        print(f"plain:  {json.dumps(plain)}", file=sys.stderr)
    tokens = run_tokens(args)
    print(f"tokens: {json.dumps(tokens)}", file=sys.stderr)
    result: dict[str, object] = {"rows": args.rows, "register_rows": args.register_rows,
                                 "plain": plain, "tokens": tokens,
                                 "load_average": os.getloadavg()[0]}
    if plain:
        result["tokens_over_plain"] = round(float(str(tokens["seconds"]))
                                            / float(str(plain["seconds"])), 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
