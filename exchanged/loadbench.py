"""The load benchmark: many agencies uploading many batches at once, over real SFTP.

    python -m exchanged.loadbench [--agencies 20] [--batches 50] [--rows 100] [--workers 2]
                                  [--register-rows 10000] [--keep DIR]

builds a throw-away home under a fictional agreement (clearly labelled: its
parties, numbers and dates are invented) with one data registrar and N
agencies, each with a ``nik-lookup`` flow of its own against the registrar's
dataset; makes every agency's keys with ``gpg`` and ``ssh-keygen`` (through
:mod:`exchanged.agencydesk`, as an agency would); starts the real daemon;
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

All data is synthetic (:mod:`exchanged.synth`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from exchanged import synth
from exchanged.admin import add_agency, init_home
from exchanged.agencydesk import AgencyDesk, stop_gpg_agent
from exchanged.daemonproc import DaemonProcess, free_port
from exchanged.home import Home
from exchanged.ledger import Ledger, Query

AGREEMENT = "contoh-uji-beban"
REGISTRAR = "pusat-data"
DATASET = "daftar-uji"
HOST = "127.0.0.1"


def agency_ids(count: int) -> list[str]:
    """``lembaga-01`` ... (fictional agencies)."""
    return [f"lembaga-{i:02d}" for i in range(1, count + 1)]


def check_flow(agency: str) -> str:
    return f"cek-{agency}"


def agreement_text(agencies: Sequence[str]) -> str:
    """A fictional agreement: a registrar loads a register, each agency checks NIKs against it."""
    parties = [REGISTRAR, *agencies]
    lines = [
        "# FICTIONAL AGREEMENT FOR THE LOAD BENCHMARK - NOT A REAL AGREEMENT.",
        "# Every party, number and date is invented (exchanged.loadbench).",
        "format: exchanged/agreement-v1",
        "agreement:",
        f"  id: {AGREEMENT}",
        "  title: (FIKTIF / FICTIONAL) Perjanjian uji beban",
        "  numbers:",
        *[f'    {p}: "FIKTIF/{i:03d}"' for i, p in enumerate(parties, start=1)],
        "  signed: {date: 2019-12-01, place: Kota Contoh}",
        "  validity: {from: 2020-01-01, until: 2099-12-31, clause: Pasal 5}",
        "  purposes:",
        "    uji-beban: {text: Uji beban pertukaran data (fiktif)., clause: Pasal 1}",
        "parties:",
    ]
    for i, party in enumerate(parties):
        lines += [
            f"  {party}:",
            f"    role: PIHAK {i + 1}",
            f"    name: {party} (fiktif)",
            f"    contact: {{unit: Unit data (fiktif), email: {party}@contoh.invalid, "
            "clause: Pasal 7}",
        ]
    lines += [
        "confidentiality: {answers_only_to_requester: true, answers_clause: Pasal 6, "
        "purpose_limitation: true, purpose_clause: Pasal 6}",
        "flows:",
        "  daftar-uji:",
        "    kind: reference-load",
        "    purpose: uji-beban",
        "    clause: Pasal 3",
        f"    sender: {REGISTRAR}",
        f"    dataset: {DATASET}",
        "    columns:",
        "      clause: Pasal 3",
        "      list:",
        "        nik: {type: nik, required: true}",
        "        status: {type: enum, required: true, values: [AKTIF, NONAKTIF]}",
        "    keeps: [status]",
        "    limits: {clause: Pasal 3, max_bytes: 1073741824, max_rows: 10000000}",
    ]
    for agency in agencies:
        lines += [
            f"  {check_flow(agency)}:",
            "    kind: nik-lookup",
            "    purpose: uji-beban",
            "    clause: Pasal 4",
            f"    sender: {agency}",
            f"    reference: {DATASET}",
            "    columns:",
            "      clause: Pasal 4",
            "      list:",
            "        nik: {type: nik, required: true}",
            "        ref: {type: text, max_length: 64}",
            "    answer: {clause: Pasal 4, found: DITEMUKAN, not_found: TIDAK_DITEMUKAN, "
            "invalid: TIDAK_VALID}",
            "    discloses: {clause: Pasal 4, fields: [status], never: []}",
            "    limits: {clause: Pasal 3, max_bytes: 1073741824, max_rows: 1000000}",
        ]
    return "\n".join(lines) + "\n"


def register_csv(register: synth.SyntheticRegister) -> bytes:
    """The registrar's upload: every person of the register, active or not."""
    rows = [f"{register.row(i).nik},{'AKTIF' if i % 4 else 'NONAKTIF'}"
            for i in range(register.rows)]
    return ("nik,status\n" + "\n".join(rows) + "\n").encode("ascii")


def batch_csv(register: synth.SyntheticRegister, outsiders: synth.SyntheticRegister, rows: int,
              seed: int) -> bytes:
    """An agency's batch: NIKs of the register, and about one in ten of people outside it."""
    out = ["ref,nik"]
    for i in range(rows):
        x = (seed * 7919 + i * 104729) % (register.rows * 10 // 9 + 1)
        nik = register.row(x).nik if x < register.rows else outsiders.row(x % outsiders.rows).nik
        out.append(f"R{seed}-{i},{nik}")
    return ("\n".join(out) + "\n").encode("ascii")


@dataclass
class Bench:
    """A prepared home: the agreement, the agencies' desks, the daemon's address."""

    root: Path
    home: Home
    port: int
    fingerprint: str
    desks: dict[str, AgencyDesk]

    def __post_init__(self) -> None:
        self.process = DaemonProcess(self.home.root, self.port, self.log)

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def close(self) -> None:
        self.stop()
        stop_gpg_agent(self.home.gnupg)
        for desk in self.desks.values():
            stop_gpg_agent(desk.gnupg)

    def upload(self, agency: str, files: Sequence[Path], flow: str) -> subprocess.CompletedProcess[
            bytes]:
        """All ``files`` in one SFTP session, as an agency's script would send them."""
        commands = [f'put "{f}" "/inbox/{flow}/{f.name}"' for f in files]
        return self.desks[agency].sftp(HOST, self.port, commands, check=False)

    def ledger(self) -> Ledger:
        return Ledger(self.home.ledger, readonly=True)

    def received(self, agency: str) -> set[str]:
        """The batch ids of the agency's uploads the exchange received."""
        ledger = self.ledger()
        try:
            return {str(e.batch) for e in ledger.query(Query(agency=agency,
                                                             kind="batch.received"))}
        finally:
            ledger.close()


def prepare(root: Path, agencies: Sequence[str], *, workers: int = 2,
            config_extra: str = "", say: Callable[[str], None] = lambda _: None) -> Bench:
    """A new home at ``root/home`` with the fictional agreement and the agencies registered."""
    port = free_port()
    home = Home(root / "home")
    say(f"creating the home in {home.root}")
    report = init_home(home, name="Uji beban (fiktif)", listen=f"{HOST}:{port}")
    config = home.config_file.read_text(encoding="utf-8").replace("workers: 2\n",
                                                                  f"workers: {workers}\n")
    home.config_file.write_text(config + config_extra, encoding="utf-8")
    (home.policies / f"{AGREEMENT}.yaml").write_text(agreement_text(agencies), encoding="utf-8")
    parties = [REGISTRAR, *agencies]
    desks = {p: AgencyDesk(p, root / "desks" / p) for p in parties}
    say(f"making the keys of {len(parties)} agencies")
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda d: d.create_keys(), desks.values()))
    for party, desk in desks.items():
        public = desk.export_public(desk.dir / f"{party}.asc")
        add_agency(home, party, name=f"{party} (fiktif)", ssh_key=desk.ssh_public,
                   gpg_key=public)
        desk.import_key(home.exchange_public, certify=True)
        desk.trust_host(HOST, port, home.ssh_host_key.with_suffix(".pub"))
    return Bench(root, home, port, report.fingerprint, desks)


def seal_all(bench: Bench, batches: dict[str, list[tuple[str, bytes]]]) -> dict[str, list[Path]]:
    """Seal every agency's batches (gpg --sign --encrypt), several agencies at a time."""
    def seal(agency: str) -> list[Path]:
        desk = bench.desks[agency]
        folder = desk.dir / "batches"
        folder.mkdir(exist_ok=True)
        out = []
        for batch_id, data in batches[agency]:
            plain = folder / f"{batch_id}.csv"
            plain.write_bytes(data)
            out.append(desk.seal(plain, folder / f"{batch_id}.csv.gpg", recipient=bench.fingerprint))
            plain.unlink()
        return out

    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2))) as pool:
        return dict(zip(batches, pool.map(seal, batches)))


def wait_answered(bench: Bench, count: int, timeout: float) -> None:
    """Until ``count`` batches are answered (by the ledger), or the timeout."""
    ledger = bench.ledger()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            row = ledger.connection().execute(
                "SELECT count(*) FROM ledger WHERE kind = 'batch.answered'").fetchone()
            if int(row[0]) >= count:
                return
            time.sleep(0.2)
    finally:
        ledger.close()
    raise RuntimeError(f"not every batch was answered within {timeout:.0f} s")


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
    parser = argparse.ArgumentParser(prog="python -m exchanged.loadbench",
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
