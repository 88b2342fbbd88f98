"""``scripts/bench``: the real daemon, over SFTP, against the gpg floor of the same run.

What it does, as an agency and an administrator would:

1. builds with the project's generator (fixed seed) a register and a KPM batch
   of the sizes asked, as CSV (kept in ``--cache`` between runs: generating ten
   million rows takes longer than processing them);
2. creates a throw-away exchange home, registers Kemensos and BKN with fresh
   keys (``exchanged init``, ``agency add``, an *example* addendum so that the
   agreement is in force), and starts ``exchanged run`` as a subprocess;
3. seals each CSV with ``gpg --sign --encrypt`` as the agency
   (:class:`~exchanged.testing.agencydesk.AgencyDesk`) and uploads it over SFTP with the
   agency's key (a paramiko session, see :class:`Uploader`); for ``kpm-verification``
   the register is loaded first and the daemon restarted, so that its memory
   high-water mark is the batch's own;
4. times the measured upload from the moment ``sftp``'s ``put`` returned (the
   upload is closed) to the moment the outcome is in the agency's outbox on
   disk, while sampling the resident memory of the daemon and its gpg children;
5. downloads and checks the answer (row count; statuses against the
   generator's ground truth), then measures the **floor** on the same machine in
   the same run: ``gpg`` decrypting the upload as the agency sealed it, then
   ``gpg`` signing and encrypting an answer of the same size (the answer itself)
   *without compression*, as two separate commands
   (:class:`exchanged.crypto.gpg.Gpg`). The floor holds none of the exchange's
   choices: how the daemon compresses answers (``--answer-compression``, its
   ``answer_compression`` setting) is part of what is measured.

The last line printed is one JSON object: ``flow``, ``rows``, ``register_rows``,
``seconds``, ``floor_seconds``, ``ratio``, ``peak_rss_mb``, ``rows_per_second``
(and a few details). ``--repeat N`` runs N batches (or N register loads), each
followed by its floor, and reports the medians (the 1,000-row latency target, and
``scripts/bench targets``, where one run alone moves with the host).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from exchanged.crypto.gpg import Gpg
from exchanged.crypto.streams import decrypt_args, seal_args
from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from exchanged.testing.daemon import DaemonProcess, free_port

HOST = "127.0.0.1"
AGREEMENT = "pks-kemensos-bkn-2023"
SEED = 20211130  # the day of the 2021 match; any fixed number would do
POLL_SECONDS = 0.002
SAMPLE_SECONDS = 0.02


@dataclass(frozen=True)
class Timing:
    seconds: float
    #: CPU time of the daemon and its gpg processes over the same window
    cpu_seconds: float
    peak_rss_mb: float
    processing_rss_mb: float
    outcome: Path
    outcome_mb: float


@dataclass(frozen=True)
class Floor:
    decrypt: float
    seal: float
    #: CPU time of the two gpg commands
    cpu_seconds: float

    @property
    def seconds(self) -> float:
        return self.decrypt + self.seal


def exchanged_cli(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "exchanged", *args], capture_output=True,
                            text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise SystemExit(f"exchanged {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


# -- data ---------------------------------------------------------------------------------------


def register_csv(cache: Path, rows: int) -> Path:
    path = cache / f"register-{rows}-{SEED}.csv"
    if not path.exists():
        print(f"bench: generating a register of {rows:,} rows (kept in {cache})", file=sys.stderr)
        tmp = path.with_suffix(".tmp")
        synth.write_register_csv(str(tmp), synth.SyntheticRegister(rows, seed=SEED))
        tmp.replace(path)
    return path


def kpm_csv(cache: Path, rows: int, register_rows: int) -> tuple[Path, Path]:
    path = cache / f"kpm-{rows}-{register_rows}-{SEED}.csv"
    truth = path.with_suffix(".truth.csv")
    if not (path.exists() and truth.exists()):
        print(f"bench: generating a KPM batch of {rows:,} rows (kept in {cache})", file=sys.stderr)
        tmp, tmp_truth = path.with_suffix(".tmp"), truth.with_suffix(".tmp")
        register = synth.SyntheticRegister(register_rows, seed=SEED)
        synth.write_kpm_csv(str(tmp), synth.kpm_batch(register, rows, seed=SEED + 1),
                            columns=("ref", "nik"), truth_path=str(tmp_truth))
        tmp_truth.replace(truth)
        tmp.replace(path)
    return path, truth


# -- the exchange -------------------------------------------------------------------------------


class Daemon:
    """One exchange home and its ``exchanged run`` process."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.port = free_port()
        self.log = root / "daemon.log"
        self.process = DaemonProcess(self.home, self.port, self.log)
        self.fingerprint = ""

    def init(self, desks: Sequence[AgencyDesk]) -> None:
        out = exchanged_cli("init", "--home", str(self.home), "--listen", f"{HOST}:{self.port}")
        for line in out.splitlines():
            if line.startswith("exchange OpenPGP key: "):
                self.fingerprint = line.split(": ", 1)[1].strip()
        names = {"kemensos": "Kementerian Sosial", "bkn": "Badan Kepegawaian Negara"}
        for desk in desks:
            public = desk.export_public(desk.dir / f"{desk.agency}.asc")
            exchanged_cli("agency", "add", "--home", str(self.home), desk.agency, "--name",
                          names[desk.agency], "--ssh-key", str(desk.ssh_public),
                          "--gpg-key", str(public))
            desk.import_key(self.home / "exchange-public.asc", certify=True)
            desk.trust_host(HOST, self.port, self.home / "keys" / "ssh_host_ed25519_key.pub")
        exchanged_cli("policy", "extend", "--home", str(self.home), AGREEMENT, "--until",
                      "2099-12-31", "--reference",
                      "EXAMPLE ONLY - benchmark addendum, not a real agreement", "--example")

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.process.proc

    def outbox(self, agency: str, flow: str) -> Path:
        return self.home / "drop" / agency / "outbox" / flow


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gpg, gpg-agent is not one: it daemonises)."""
    out = [pid]
    for p in out:
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    out.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of a process, of its children it has waited for, and of
    its live descendants: the daemon with every gpg it ran. Unlike wall time, it does not
    grow when other work shares the machine (much)."""
    ticks = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        if p == pid:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: gpg runs that ended
    return ticks / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler:
    """The highest resident memory of a process tree: sampled sums of VmRSS, and each
    process's own high-water mark (VmHWM) as last seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self.before_kb = 0
        self._hwm: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        total = 0
        for p in _tree(self.pid):
            total += _status_kb(p, "VmRSS")
            hwm = _status_kb(p, "VmHWM")
            if hwm:
                self._hwm[p] = max(self._hwm.get(p, 0), hwm)
        self.peak_kb = max(self.peak_kb, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(SAMPLE_SECONDS)

    def mark(self) -> None:
        """The upload is closed: keep its peak apart and measure the processing afresh
        (``clear_refs`` 5 resets a process's high-water mark)."""
        self._sample()
        self.before_kb = max(self.peak_kb, sum(self._hwm.values()))
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return  # not allowed here: the peak then includes the upload
        self._hwm = {}
        self.peak_kb = 0

    @property
    def processing_mb(self) -> float:
        """From the upload's close to the outcome: the daemon's and its children's
        high-water marks, or the sampled sum, whichever is higher."""
        return max(self.peak_kb, sum(self._hwm.values())) / 1024

    @property
    def peak_mb(self) -> float:
        """The whole window, upload included."""
        return max(self.processing_mb, self.before_kb / 1024)


class Uploader:
    """An agency's SFTP session, held open (paramiko, with the desk's key and pinned host
    key): its ``put`` returns when the server has acknowledged the close, which is the
    moment the clock starts. (OpenSSH ``sftp -b`` returns only after tearing down its
    connection, by when a small batch is already answered.)"""

    def __init__(self, desk: AgencyDesk, port: int) -> None:
        self._client = paramiko.SSHClient()
        self._client.load_host_keys(str(desk.known_hosts))
        self._client.set_missing_host_key_policy(paramiko.RejectPolicy())
        self._client.connect(HOST, port=port, username=desk.agency,
                             key_filename=str(desk.ssh_key), look_for_keys=False,
                             allow_agent=False, timeout=20)
        self._sftp = self._client.open_sftp()

    def put(self, local: Path, remote: str) -> None:
        # no stat after the close: the exchange takes the file out of the inbox at once
        self._sftp.put(str(local), remote, confirm=False)

    def close(self) -> None:
        self._sftp.close()
        self._client.close()


def submit_and_time(daemon: Daemon, desk: AgencyDesk, flow: str, sealed: Path, batch: str,
                    timeout: float) -> Timing:
    assert daemon.proc is not None
    outbox = daemon.outbox(desk.agency, flow)
    names = (outbox / f"{batch}.result.csv.gpg", outbox / f"{batch}.rejected.json.gpg")
    uploader = Uploader(desk, daemon.port)
    try:
        with MemorySampler(daemon.proc.pid) as memory:
            uploader.put(sealed, f"/inbox/{flow}/{batch}.csv.gpg")
            start = time.perf_counter()  # put returned: the upload is closed
            cpu_start = cpu_seconds(daemon.proc.pid)
            memory.mark()
            deadline = time.monotonic() + timeout
            while not any(n.exists() for n in names):
                if time.monotonic() > deadline:
                    raise SystemExit(f"no outcome for {batch} within {timeout:.0f} s")
                time.sleep(POLL_SECONDS)
            seconds = time.perf_counter() - start
            cpu = cpu_seconds(daemon.proc.pid) - cpu_start
    finally:
        uploader.close()
    outcome = next(n for n in names if n.exists())
    if outcome.name.endswith(".rejected.json.gpg"):
        body = desk.open(outcome).data.decode()
        raise SystemExit(f"{batch} was rejected: {body}")
    return Timing(seconds, cpu, memory.peak_mb, memory.processing_mb, outcome,
                  outcome.stat().st_size / 1e6)


def floor(daemon: Daemon, upload: Path, answer: Path, recipient: str) -> Floor:
    """gpg alone: decrypt the upload as the agency sealed it, then sign and encrypt an
    answer of the same size *without compression* (``--compress-level 0``): the honest
    floor, which holds none of the exchange's own choices (how it compresses is part of
    what is measured)."""
    gpg = Gpg(daemon.home / "keys" / "gnupg")

    used = resource.getrusage(resource.RUSAGE_CHILDREN)

    def timed(args: list[str], src: Path, dst: Path | None) -> float:
        with open(src, "rb") as stdin, open(dst or os.devnull, "wb") as stdout:
            start = time.perf_counter()
            proc, status = gpg.spawn(args, stdin=stdin, stdout=stdout)
            failed = proc.wait() != 0
            seconds = time.perf_counter() - start
            said = status.status().keywords("FAILURE", "ERROR", "INV_RECP", "INV_SGNR")
            if failed:
                raise SystemExit(f"the floor's gpg failed ({', '.join(said)})")
            return seconds

    decrypt = timed(decrypt_args(None), upload, None)
    out = answer.with_suffix(".floor.gpg")
    seal = timed(seal_args(recipient, daemon.fingerprint, answer.name, 0), answer, out)
    out.unlink()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (used.ru_utime + used.ru_stime)
    return Floor(decrypt, seal, cpu)


def check_kpm_answer(answer: Path, truth: Path, rows: int) -> None:
    """Row by row against the generator's ground truth (statuses and disclosed fields)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    def read(path: Path, columns: list[str]) -> pa.Table:
        return pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
            column_types={c: pa.string() for c in columns}, include_columns=columns,
            strings_can_be_null=False))

    got = read(answer, ["ref", "status", "jenis_asn", "instansi"])
    want = read(truth, ["ref", "expected_status", "expected_jenis_asn", "expected_instansi"])
    if got.num_rows != rows or want.num_rows != rows:
        raise SystemExit(f"the answer has {got.num_rows} rows, {rows} expected")
    for a, b in (("ref", "ref"), ("status", "expected_status"),
                 ("jenis_asn", "expected_jenis_asn"), ("instansi", "expected_instansi")):
        if not got.column(a).equals(want.column(b)):
            raise SystemExit(f"the answer's {a} column differs from the ground truth")


# -- the cases ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, object]:
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="exchanged-bench-", dir=args.workdir))
    os.chmod(root, 0o700)
    kemensos = AgencyDesk("kemensos", root / "kemensos")
    bkn = AgencyDesk("bkn", root / "bkn")
    for desk in (kemensos, bkn):
        desk.create_keys()
    daemon = Daemon(root)
    daemon.init([kemensos, bkn])
    with open(daemon.home / "config.yaml", "a", encoding="utf-8") as config:
        config.write(f"answer_compression: {args.answer_compression}\n")
    register_rows = args.register_rows
    try:
        daemon.start()
        register = register_csv(cache, register_rows)
        sealed_register = bkn.seal(register, root / "register.csv.gpg",
                                   recipient=daemon.fingerprint)
        if args.flow == "asn-register":
            rows = register_rows
            timings, floors = [], []
            # each load replaces the snapshot before it, and is paired with a floor
            # measured right after it (the host's speed moves between runs)
            for n in range(args.repeat):
                timing = submit_and_time(daemon, bkn, "asn-register", sealed_register,
                                         f"asn-bench-{n}", args.timeout)
                answer = root / "answer.csv"
                answer.write_bytes(bkn.open(timing.outcome).data)
                if f'"ROWS_LOADED","{register_rows}"' not in answer.read_text():
                    raise SystemExit("the register did not load completely")
                timings.append(timing)
                floors.append(floor(daemon, sealed_register, answer, bkn.fingerprint))
        else:
            rows = args.rows
            setup = submit_and_time(daemon, bkn, "asn-register", sealed_register, "asn-setup",
                                    args.timeout)
            bkn.open(setup.outcome)
            # a fresh process: its high-water mark is then the batch's, not the load's
            daemon.stop()
            daemon.start()
            batch, truth = kpm_csv(cache, rows, register_rows)
            timings, floors = [], []
            for n in range(args.repeat):
                sealed = kemensos.seal(batch, root / f"kpm-{n}.csv.gpg",
                                       recipient=daemon.fingerprint)
                timing = submit_and_time(daemon, kemensos, "kpm-verification", sealed,
                                         f"kpm-bench-{n}", args.timeout)
                answer = root / f"answer-{n}.csv"
                opened = kemensos.open(timing.outcome)
                answer.write_bytes(opened.data)
                del opened
                if args.check:
                    check_kpm_answer(answer, truth, rows)
                timings.append(timing)
                floors.append(floor(daemon, sealed, answer, kemensos.fingerprint))
                answer.unlink()
                sealed.unlink()
    finally:
        daemon.stop()
        for desk in (kemensos, bkn):
            stop_gpg_agent(desk.gnupg)
        stop_gpg_agent(daemon.home / "keys" / "gnupg")
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    seconds = statistics.median(t.seconds for t in timings)
    floor_seconds = statistics.median(f.seconds for f in floors)
    return {
        "flow": args.flow,
        "rows": rows,
        "register_rows": register_rows,
        "seconds": round(seconds, 3),
        "floor_seconds": round(floor_seconds, 3),
        "ratio": round(seconds / floor_seconds, 3),
        # what the machine's load moves least: the daemon's and gpg's CPU time against the
        # floor's gpg CPU time (on two cores the wall time can approach half the CPU time)
        "cpu_seconds": round(statistics.median(t.cpu_seconds for t in timings), 3),
        "floor_cpu_seconds": round(statistics.median(f.cpu_seconds for f in floors), 3),
        "cpu_ratio": round(statistics.median(t.cpu_seconds for t in timings)
                           / statistics.median(f.cpu_seconds for f in floors), 3),
        "peak_rss_mb": round(max(t.peak_rss_mb for t in timings), 1),
        "processing_peak_rss_mb": round(max(t.processing_rss_mb for t in timings), 1),
        "rows_per_second": round(rows / seconds),
        "floor_decrypt_seconds": round(statistics.median(f.decrypt for f in floors), 3),
        "floor_seal_seconds": round(statistics.median(f.seal for f in floors), 3),
        "answer_compression": args.answer_compression,
        "answer_mb": round(statistics.median(t.outcome_mb for t in timings), 1),
        "runs": len(timings),
        "all_seconds": [round(t.seconds, 3) for t in timings],
        "load_average": os.getloadavg()[0],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--flow", choices=("kpm-verification", "asn-register"),
                        default="kpm-verification")
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="rows of the KPM batch (kpm-verification)")
    parser.add_argument("--register-rows", type=int, default=1_000_000,
                        help="rows of the ASN register (the load measured for asn-register)")
    parser.add_argument("--repeat", type=int, default=1, help="batches to run; medians reported")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "exchanged-bench"),
                        help="where generated CSVs are kept between runs")
    parser.add_argument("--workdir", default=None, help="where the throw-away home goes")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip the row-by-row check against ground truth")
    parser.add_argument("--keep", action="store_true", help="keep the home and its log")
    parser.add_argument("--answer-compression", default="fast",
                        choices=("none", "fast", "default", "best"),
                        help="the daemon's answer_compression setting (config.yaml)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.register_rows < 1 or args.repeat < 1:
        parser.error("--rows, --register-rows and --repeat must be positive")
    result = run(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
