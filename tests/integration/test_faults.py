"""Crash safety, proven by fault injection: the power cord pulled at chosen moments.

The daemon runs in a process group of its own (it and its gpg children), so that a crash
is what a power cut is: everything stops at once. A killer thread waits for a moment
(an upload half written, a batch being decrypted, matched, its answer being encrypted, an
outcome sealed but not yet delivered, or any moment at all), freezes the group with
SIGSTOP, notes from the disk and the database what was in flight, and SIGKILLs it; then
it starts the daemon again. Meanwhile several agencies keep uploading, each upload with
its own ``sftp`` (a failed one is sent again under a new batch id). Afterwards:

- every upload the client saw complete has exactly one outcome and one ``batch.answered``;
- an upload the client saw fail has none, unless the exchange had received it whole (the
  acknowledgement was what the crash cut: it then has exactly one);
- an upload cut half-way was never received (its ``upload.interrupted`` is recorded);
- every received batch is answered exactly once; the ledger verifies;
- ``work/`` and ``spool/uploads/`` are empty, and no NIK is left in the clear anywhere.

The ledger's own crash safety is proven apart (a process that does nothing but append,
killed mid-write), and so are a full disk and an unwritable ledger: intake stops, nothing
is lost, and it resumes, recorded, once the exchange can write again.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from exchanged.ledger import Ledger
from exchanged.testing import crowd, synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import HOST, Agency, Exchange, exchanged, lock, make_exchange

SEED = 20261126
AGENCIES = crowd.agency_ids(4)
REGISTRAR = crowd.REGISTRAR
NAMED_MOMENTS = ("upload", "decrypt", "match", "encrypt", "deliver")


class Daemon(Exchange):
    """An exchange whose daemon leads a process group of its own (it and its gpg)."""

    def __init__(self, bench: crowd.Bench) -> None:
        super().__init__(bench.root)
        self.home = bench.home.root
        self.port = bench.port
        self.fingerprint = bench.fingerprint

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "exchanged", "run", "--home", str(self.home)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("daemon did not listen")

    def freeze(self) -> None:
        """SIGSTOP the whole group and wait until every thread of the daemon has stopped."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        tasks = Path(f"/proc/{self.proc.pid}/task")
        while time.monotonic() < deadline:
            states = []
            for task in tasks.iterdir():
                try:
                    states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
                except (OSError, IndexError):
                    pass
            if all(s in ("T", "t") for s in states):
                return
            time.sleep(0.001)

    def crash(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None


def database(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{home / 'ledger.db'}?mode=ro", uri=True, timeout=2)


def gpg_children(pid: int) -> list[str]:
    """The command lines of the daemon's gpg processes (decrypting a batch, sealing one)."""
    out = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids = children.read_text().split()
        except OSError:
            continue
        for child in pids:
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and os.path.basename(cmd[0]) == b"gpg":
                out.append(b" ".join(cmd).decode(errors="replace"))
    return out


def moments_now(home: Path, pid: int) -> set[str]:
    """Which of the named moments are under way, from the disk and the daemon's processes.

    Either way the pipeline works: decrypting to ``work/<uid>/batch.csv`` then answering
    into ``work/<uid>/answer.csv`` then sealing, or all three streamed at once through gpg
    pipes (then a batch being matched has both its gpg running).
    """
    moments: set[str] = set()
    for part in (home / "spool" / "uploads").glob("*/data.part"):
        try:
            if part.stat().st_size:
                moments.add("upload")
        except OSError:
            pass
    gpgs = gpg_children(pid)
    decrypting = any(" --decrypt" in c for c in gpgs)
    sealing = any(" --encrypt" in c for c in gpgs) or \
        bool(list((home / "spool" / "batches").glob("*/.outcome.tmp")))
    answering = False
    for folder in list((home / "work").iterdir()):
        batch_csv, answer = folder / "batch.csv", folder / "answer.csv"
        if batch_csv.exists() and not answer.exists():
            decrypting = True
        if answer.exists() and \
                not (home / "spool" / "batches" / folder.name / ".outcome.tmp").exists():
            answering = True
    if decrypting:
        moments.add("decrypt")
    if answering or (decrypting and sealing):
        moments.add("match")
    if sealing:
        moments.add("encrypt")
    return moments


def in_flight(home: Path, pid: int) -> dict[str, object]:
    """What was going on, read from the disk, the processes and the database of a frozen
    daemon."""
    moments = moments_now(home, pid)
    uploads = {}
    for folder in (home / "spool" / "uploads").iterdir():
        part = folder / "data.part"
        if part.exists():
            uploads[folder.name] = part.stat().st_size
    with database(home) as db:
        stages = Counter(s for (s,) in db.execute(
            "SELECT stage FROM batches WHERE stage != 'answered'"))
    if stages.get("processed"):
        moments.add("deliver")
    return {"moments": sorted(moments), "uploads": uploads, "stages": dict(stages)}


@dataclass
class Attempt:
    agency: str
    flow: str
    name: str
    kind: str
    rows: int
    returncode: int = -1


@dataclass
class Planned:
    agency: str
    flow: str
    batch: str
    kind: str  # good | unsigned | column | junk | register
    file: Path
    rows: int
    slow: bool = False


@dataclass
class Run:
    attempts: list[Attempt] = field(default_factory=list)
    kills: list[dict[str, object]] = field(default_factory=list)
    #: uploads the killer cut half-way on purpose: (agency, flow, batch id)
    cut: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Ammunition:
    """The killer's own batches: it uploads one and kills at the moment it is processed."""

    big: list[Planned]
    small: list[Planned]
    cut: list[Planned]


def sftp_put(desk: AgencyDesk, port: int, local: Path, remote: str, *, slow: bool
             ) -> int:
    cmd = ["sftp", "-q", "-b", "-", "-P", str(port), "-i", str(desk.ssh_key),
           "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
           "-o", f"UserKnownHostsFile={desk.known_hosts}", "-o", "ConnectTimeout=10"]
    if slow:
        cmd += ["-l", "6000"]  # Kbit/s: a big upload then lasts a couple of seconds
    r = subprocess.run([*cmd, f"{desk.agency}@{HOST}"], input=f'put "{local}" "{remote}"\n'
                       .encode(), capture_output=True, timeout=300, check=False)
    return r.returncode


def killer_batches(bench: crowd.Bench, register: synth.SyntheticRegister,
                   outsiders: synth.SyntheticRegister, work: Path) -> Ammunition:
    def batch(i: int, prefix: str, rows: int) -> Planned:
        agency = AGENCIES[i % len(AGENCIES)]
        name = f"{prefix}-{i:02d}"
        plain = work / f"{name}.csv"
        plain.write_bytes(crowd.batch_csv(register, outsiders, rows, seed=9000 + i))
        out = bench.desks[agency].seal(plain, work / f"{name}.csv.gpg",
                                       recipient=bench.fingerprint)
        plain.unlink()
        return Planned(agency, crowd.check_flow(agency), name, "good", out, rows)

    return Ammunition(big=[batch(i, "kb", 30_000) for i in range(12)],
                      small=[batch(i, "ks", 50) for i in range(16)],
                      cut=[batch(i, "kc", 60_000) for i in range(4)])


def plan_batches(bench: crowd.Bench, register: synth.SyntheticRegister,
                 outsiders: synth.SyntheticRegister, rng: random.Random, work: Path
                 ) -> dict[str, list[Planned]]:
    """25 batches for each agency (small, big, slow, and refusals) and the registrar's loads."""
    plans: dict[str, list[Planned]] = {}
    for a, agency in enumerate(AGENCIES):
        desk = bench.desks[agency]
        kinds = ["good"] * 18 + ["big"] * 3 + ["slow"] * 2 + ["unsigned", "column"]
        rng.shuffle(kinds)
        if a == 0:
            kinds[rng.randrange(len(kinds))] = "junk"
        items = []
        for j, kind in enumerate(kinds):
            batch = f"f{a}-{j:02d}"
            rows = {"big": 30_000, "slow": 30_000}.get(kind, rng.randint(20, 300))
            data = crowd.batch_csv(register, outsiders, rows, seed=a * 100 + j)
            if kind == "column":  # a column the agreement does not list
                lines = data.decode().splitlines()
                data = ("ref,nik,alamat\n" + "".join(f"{line},Jl. Contoh\n"
                                                     for line in lines[1:])).encode()
            plain = work / f"{batch}.csv"
            plain.write_bytes(data)
            out = work / f"{batch}.csv.gpg"
            if kind == "junk":
                junk = os.urandom(5000)  # never a packet tag first: always NOT_OPENPGP
                out.write_bytes(bytes([junk[0] & 0x7F]) + junk[1:])
            else:
                desk.seal(plain, out, recipient=bench.fingerprint, sign=kind != "unsigned")
            plain.unlink()
            items.append(Planned(agency, crowd.check_flow(agency), batch,
                                 "good" if kind in ("big", "slow") else kind, out, rows,
                                 slow=kind == "slow"))
        plans[agency] = items
    registrar = bench.desks[REGISTRAR]
    loads = []
    for j in range(6):
        rows = 20_000 if j % 3 == 0 else 2_000
        plain = work / f"reg-{j}.csv"
        plain.write_bytes(crowd.register_csv(synth.SyntheticRegister(rows, seed=17)))
        out = registrar.seal(plain, work / f"reg-{j}.csv.gpg", recipient=bench.fingerprint)
        plain.unlink()
        loads.append(Planned(REGISTRAR, crowd.DATASET, f"reg-{j}", "register", out, rows))
    plans[REGISTRAR] = loads
    return plans


def uploader(run: Run, daemon: Daemon, desk: AgencyDesk, items: list[Planned], seed: int
             ) -> None:
    rng = random.Random(seed)
    for item in items:
        for _ in range(40):
            # as the README says: a failed upload is sent again under the same name (if the
            # exchange did receive the first, the second is refused as a replay, and the
            # first outcome stands: the batch is never processed twice)
            name = item.batch
            code = sftp_put(desk, daemon.port, item.file, f"/inbox/{item.flow}/{name}.csv.gpg",
                            slow=item.slow)
            with run.lock:
                run.attempts.append(Attempt(item.agency, item.flow, name, item.kind, item.rows,
                                            code))
            if code == 0:
                break
            time.sleep(rng.uniform(0.2, 0.6))
        else:
            raise AssertionError(f"{item.batch} could not be uploaded in 40 tries")
        time.sleep(rng.uniform(0.2, 0.8))


def wait_for(moment: str, daemon: Daemon, timeout: float, batch: str = "") -> bool:
    """Poll (every millisecond or few) until ``moment`` is under way; False on timeout."""
    home = daemon.home
    assert daemon.proc is not None
    pid = daemon.proc.pid
    deadline = time.monotonic() + timeout
    with database(home) as db:
        while time.monotonic() < deadline:
            if moment == "upload":
                for part in (home / "spool" / "uploads").glob("*/data.part"):
                    try:
                        if part.stat().st_size > 256 * 1024:
                            return True
                    except OSError:
                        pass
            elif moment == "deliver":
                # between the outcome sealed (processed) and put in the outbox (answered)
                if db.execute("SELECT 1 FROM ledger WHERE batch = ? AND kind IN "
                              "('batch.processed', 'outcome.sealed') LIMIT 1",
                              (batch,)).fetchone():
                    return True
            elif moment in moments_now(home, pid):
                return True
            time.sleep(0.001 if moment == "deliver" else 0.003)
    return False


def put_until_done(run: Run, daemon: Daemon, bench: crowd.Bench, item: Planned) -> None:
    while True:
        code = sftp_put(bench.desks[item.agency], daemon.port, item.file,
                        f"/inbox/{item.flow}/{item.batch}.csv.gpg", slow=False)
        with run.lock:
            run.attempts.append(Attempt(item.agency, item.flow, item.batch, item.kind,
                                        item.rows, code))
        if code == 0:
            return
        time.sleep(0.3)


def kill_at(target: str, run: Run, daemon: Daemon, bench: crowd.Bench, ammo: Ammunition,
            rng: random.Random) -> dict[str, object]:
    """Bring about the moment (with one of the killer's own batches), freeze, note, kill."""
    client: subprocess.Popen[bytes] | None = None
    if target == "upload" and ammo.cut:
        item = ammo.cut.pop()
        desk = bench.desks[item.agency]
        client = subprocess.Popen(
            ["sftp", "-q", "-b", "-", "-l", "2000", "-P", str(daemon.port), "-i",
             str(desk.ssh_key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             "-o", f"UserKnownHostsFile={desk.known_hosts}", f"{item.agency}@{HOST}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert client.stdin is not None
        client.stdin.write(f'put "{item.file}" "/inbox/{item.flow}/{item.batch}.csv.gpg"\n'
                           .encode())
        client.stdin.close()
        with run.lock:
            run.cut.append((item.agency, item.flow, item.batch))
        wait_for("upload", daemon, timeout=20)
    elif target == "deliver" and ammo.small:
        item = ammo.small.pop()
        put_until_done(run, daemon, bench, item)
        wait_for("deliver", daemon, timeout=20, batch=item.batch)
    elif target in ("decrypt", "match", "encrypt") and ammo.big:
        item = ammo.big.pop()
        put_until_done(run, daemon, bench, item)
        wait_for(target, daemon, timeout=20)
    else:
        time.sleep(rng.uniform(0.0, 1.5))
    assert daemon.proc is not None
    pid = daemon.proc.pid
    daemon.freeze()
    try:
        seen = in_flight(daemon.home, pid)
    finally:
        daemon.crash()
    if client is not None:
        assert client.wait(30) != 0, "an upload cut half-way looked complete to its client"
    seen["target"] = target
    return seen


def killer(run: Run, daemon: Daemon, bench: crowd.Bench, ammo: Ammunition, seed: int,
           rounds: int = 2) -> None:
    """Each named moment ``rounds`` times (an attempt that missed its moment is tried again,
    up to four times, eight for the short deliver window), and four times at random; in the
    order a seeded shuffle gives."""
    rng = random.Random(seed)
    schedule = [*NAMED_MOMENTS] * rounds + ["random"] * 4
    rng.shuffle(schedule)
    for target in schedule:
        # the deliver window (outcome sealed, not yet in the outbox) lasts milliseconds
        for _ in range(8 if target == "deliver" else 4):
            seen = kill_at(target, run, daemon, bench, ammo, rng)
            with run.lock:
                run.kills.append(seen)
            time.sleep(rng.uniform(0.1, 0.6))  # the power is off for a while
            daemon.start()
            time.sleep(rng.uniform(0.2, 1.0))
            if target == "random" or target in seen["moments"]:  # type: ignore[operator]
                break


def niks_in_clear(paths: list[Path], niks: set[bytes]) -> list[str]:
    """The files among ``paths`` that hold any of ``niks`` as a 16-digit run."""
    found = []
    pattern = re.compile(rb"(?<!\d)\d{16}(?!\d)")
    for path in paths:
        if path.is_file() and not path.is_symlink():
            hits = set(pattern.findall(path.read_bytes())) & niks
            if hits:
                found.append(f"{path} ({len(hits)})")
    return found


@pytest.fixture
def chaos() -> Iterator[tuple[crowd.Bench, Daemon]]:
    # a short path: gpg-agent's sockets live in the GnuPG homes, and socket paths are short
    root = Path(tempfile.mkdtemp(prefix="exf-"))
    bench = crowd.prepare(root, AGENCIES)
    daemon = Daemon(bench)
    try:
        yield bench, daemon
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            os.killpg(daemon.proc.pid, signal.SIGCONT)
            daemon.stop()
        bench.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@dataclass
class Tally:
    """What the ledger says happened to every upload."""

    received: dict[tuple[str, str], list[str]]
    answered: Counter[tuple[str, str]]
    answered_uids: Counter[str]
    received_uids: set[str]
    interrupted_uids: set[str]
    failed: set[tuple[str, str]]

    @classmethod
    def of(cls, entries: list[dict[str, Any]]) -> Tally:
        tally = cls({}, Counter(), Counter(), set(), set(), set())
        for e in entries:
            key = (str(e["agency"]), str(e["batch"]))
            if e["kind"] == "batch.received":
                tally.received.setdefault(key, []).append(e["data"]["uid"])
                tally.received_uids.add(e["data"]["uid"])
            elif e["kind"] == "batch.answered":
                tally.answered[key] += 1
                tally.answered_uids[e["data"]["uid"]] += 1
            elif e["kind"] == "upload.interrupted":
                tally.interrupted_uids.add(e["data"]["uid"])
            elif e["kind"] == "batch.failed":
                tally.failed.add(key)
        return tally


def check_outcome_files(bench: crowd.Bench, home: Path, run: Run, tally: Tally
                        ) -> tuple[list[tuple[Attempt, Path]], int, int]:
    """Exactly one outcome per received upload in each outbox: the first, then a replay's
    refusal for each upload received again. Returns the first outcomes, and the counts of
    acknowledgements the client lost and of replays."""
    received, answered = tally.received, tally.answered
    lost_acks = replays = 0
    firsts: list[tuple[Attempt, Path]] = []
    by_batch: dict[tuple[str, str], list[Attempt]] = {}
    for attempt in run.attempts:
        by_batch.setdefault((attempt.agency, attempt.name), []).append(attempt)
    for key, attempts in by_batch.items():
        agency, name = key
        flow = attempts[0].flow
        outbox = home / "drop" / agency / "outbox" / flow
        mine = sorted(n for n in os.listdir(outbox) if n.startswith(f"{name}."))
        complete = sum(a.returncode == 0 for a in attempts)
        got = len(received.get(key, []))
        # every upload the client saw complete was received; no more were received than sent
        assert complete <= got <= len(attempts), (key, complete, got)
        assert complete >= 1, (key, "never completed")
        lost_acks += got - complete
        # exactly one outcome and one batch.answered per received upload: the first outcome,
        # then a replay's refusal for each upload received again
        assert answered[key] == got == len(mine), (key, got, answered[key], mine)
        first = [n for n in mine if ".replay-" not in n]
        assert first in ([f"{name}.result.csv.gpg"], [f"{name}.rejected.json.gpg"]), mine
        again = sorted(n for n in mine if ".replay-" in n)
        assert again == sorted(f"{name}.replay-{i}.rejected.json.gpg" for i in range(1, got)), \
            again
        firsts.append((attempts[0], outbox / first[0]))
        for replay in again:
            replays += 1
            opened = bench.desks[agency].open(outbox / replay)
            assert [r["code"] for r in json.loads(opened.data)["reasons"]] == ["REPLAY"]

    return firsts, lost_acks, replays


def check_first_outcomes(bench: crowd.Bench, firsts: list[tuple[Attempt, Path]],
                         tally: Tally) -> None:
    """What each first outcome says: a result for a good batch, the right refusal else."""
    failed = tally.failed
    for attempt, path in firsts:
        opened = bench.desks[attempt.agency].open(path)
        assert opened.signer == bench.fingerprint
        key = (attempt.agency, attempt.name)
        if path.name.endswith(".result.csv.gpg"):
            assert attempt.kind in ("good", "register"), (attempt, path.name)
            if attempt.kind == "good":
                assert opened.data.count(b"\n") == attempt.rows + 1
            continue
        codes = [r["code"] for r in json.loads(opened.data)["reasons"]]
        expected = {"unsigned": ["NOT_SIGNED"], "column": ["COLUMN_NOT_ALLOWED"],
                    "junk": ["NOT_OPENPGP"], "register": ["STALE_REFERENCE"]}.get(attempt.kind)
        if codes == ["EXCHANGE_ERROR"]:
            assert key in failed  # a poison batch: interrupted at four start-ups
        else:
            assert codes == expected, (attempt, codes)


def test_pulling_the_power_cord_loses_and_doubles_nothing(
        chaos: tuple[crowd.Bench, Daemon], tmp_path: Path) -> None:
    bench, daemon = chaos
    home = daemon.home
    rng = random.Random(SEED)
    register = synth.SyntheticRegister(20_000, seed=17)
    outsiders = synth.SyntheticRegister(2_000, seed=18)
    daemon.start()
    first = bench.desks[REGISTRAR].dir / "reg-initial.csv"
    first.write_bytes(crowd.register_csv(register))
    sealed = bench.desks[REGISTRAR].seal(first, first.with_suffix(".csv.gpg"),
                                         recipient=bench.fingerprint)
    assert sftp_put(bench.desks[REGISTRAR], daemon.port, sealed,
                    f"/inbox/{crowd.DATASET}/reg-initial.csv.gpg", slow=False) == 0
    crowd.wait_answered(bench, 1, timeout=60)

    work = tmp_path / "batches"
    work.mkdir()
    plans = plan_batches(bench, register, outsiders, rng, work)
    ammo = killer_batches(bench, register, outsiders, work)
    run = Run()
    threads = [threading.Thread(target=uploader, args=(run, daemon, bench.desks[agency], items,
                                                       SEED + i), daemon=True)
               for i, (agency, items) in enumerate(plans.items())]
    threads.append(threading.Thread(target=killer, args=(run, daemon, bench, ammo, SEED),
                                    daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
        assert not t.is_alive(), "the uploads or the crashes did not finish"
    if daemon.proc is None:
        daemon.start()

    # every received batch answered, then a clean stop
    deadline = time.monotonic() + 180
    while True:
        with database(home) as db:
            left = db.execute("SELECT count(*) FROM batches WHERE stage != 'answered'"
                              ).fetchone()[0]
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert left == 0, f"{left} batches were never answered"
    assert daemon.stop() == 0

    summary = Counter(m for k in run.kills for m in k["moments"])  # type: ignore[attr-defined]
    print(json.dumps({"kills": len(run.kills), "attempts": len(run.attempts),
                      "moments": summary, "targets": Counter(str(k["target"]) for k in run.kills)},
                     sort_keys=True))
    assert len({(a.agency, a.name) for a in run.attempts if a.returncode == 0}) >= 100
    assert len(run.kills) >= 14
    missed = [m for m in NAMED_MOMENTS if not summary[m]]
    assert not missed, f"no crash happened mid-{', mid-'.join(missed)}"

    entries = [json.loads(line) for line in exchanged(
        "ledger", "query", "--home", str(home), "--format", "json").stdout.splitlines()]
    tally = Tally.of(entries)
    received, answered = tally.received, tally.answered
    answered_uids, received_uids = tally.answered_uids, tally.received_uids
    interrupted_uids = tally.interrupted_uids
    # every received batch is answered exactly once
    assert {u: n for u, n in answered_uids.items() if n != 1} == {}
    assert received_uids == set(answered_uids)
    # an upload cut half-way was never received, and its cutting is on record
    cut = {uid for k in run.kills for uid, size in k["uploads"].items() if size}  # type: ignore[attr-defined]
    assert cut and run.cut, "no upload was cut half-way"
    assert not cut & received_uids, "an upload cut half-way was received"
    assert cut <= interrupted_uids, "an upload cut half-way was not recorded"
    for agency, flow, name in run.cut:
        assert (agency, name) not in received and not answered[(agency, name)]
        assert not [n for n in os.listdir(home / "drop" / agency / "outbox" / flow)
                    if n.startswith(f"{name}.")]

    firsts, lost_acks, replays = check_outcome_files(bench, home, run, tally)
    check_first_outcomes(bench, firsts, tally)

    exchanged("ledger", "verify", "--home", str(home))
    assert not any((home / "work").iterdir())
    assert not any((home / "spool" / "uploads").iterdir())
    niks = {register.row(i).nik.encode() for i in range(register.rows)}
    niks |= {outsiders.row(i).nik.encode() for i in range(outsiders.rows)}
    assert not niks_in_clear([*home.rglob("*"), daemon.log], niks)
    print(json.dumps({"batches": len(firsts), "lost_acknowledgements": lost_acks,
                      "replays": replays}))


# -- the ledger alone, killed mid-write ------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from exchanged.ledger import Ledger
ledger = Ledger(Path(sys.argv[1]))
if not Path(sys.argv[1]).exists():
    ledger.create(exchange_name="crash test")
ledger.open_checked()
print("ready", flush=True)
while True:
    print(ledger.append("exchange.available"), flush=True)
"""


def test_the_ledger_survives_being_killed_mid_write(tmp_path: Path) -> None:
    """A process that does nothing but append (each append a transaction with an fsync) is
    killed 25 times: every append it reported is there, the chain always verifies."""
    path = tmp_path / "ledger.db"
    rng = random.Random(SEED)
    acknowledged = 0
    for _ in range(25):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.01, 0.15))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        done = [int(line) for line in out.split() if line.isdigit()]
        acknowledged = max([acknowledged, *done])
        report = Ledger(path, readonly=True).verify()
        assert report.ok, report.problem
        assert report.head_seq >= acknowledged, "an acknowledged entry was lost"
    assert acknowledged > 100


# -- a full disk, an unwritable ledger ------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 MiB tmpfs to fill (the CI machine runs as root, like the exchange's own tests)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", "tmpfs",
                        str(mount)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here: {r.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True, check=False) \
            .returncode == 0 or subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int = 0) -> Path:
    """Fill the filesystem until at most ``leave`` bytes are free."""
    filler = mount / "filler"
    with open(filler, "wb") as f:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * size
            while os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize > leave + size:
                try:
                    f.write(chunk)
                    f.flush()
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    break
    return filler


def disk_exchange(mount: Path, desks: dict[str, AgencyDesk]) -> tuple[Exchange, Agency, Agency]:
    ex = make_exchange(mount, desks)
    ex.start()
    kemensos, bkn = Agency(desks["kemensos"], ex), Agency(desks["bkn"], ex)
    return ex, kemensos, bkn


def load_register(bkn: Agency, work: Path, batch: str = "reg-disk") -> synth.SyntheticRegister:
    register = synth.SyntheticRegister(300, seed=51)
    path = work / "register.csv"
    synth.write_register_csv(str(path), register)
    bkn.submit("asn-register", bkn.seal(path, f"{batch}.csv.gpg"))
    bkn.outcome("asn-register", f"{batch}.result.csv.gpg")
    return register


def retry_upload(agency: Agency, local: Path, remote: str, timeout: float) -> int:
    """Upload until it succeeds (the exchange tries to write again every few seconds)."""
    deadline = time.monotonic() + timeout
    tries = 0
    while True:
        tries += 1
        if agency.sftp(f'put "{local}" "{remote}"', check=False).returncode == 0:
            return tries
        assert time.monotonic() < deadline, f"intake did not resume within {timeout} s"
        time.sleep(1)


def test_a_full_disk_refuses_uploads_and_loses_nothing(
        small_disk: Path, desks: dict[str, AgencyDesk], work: Path) -> None:
    ex, kemensos, bkn = disk_exchange(small_disk, desks)
    try:
        register = load_register(bkn, work)
        plain = work / "k.csv"
        plain.write_text("ref,nik\n" + "".join(f"R{i},{register.row(i).nik}\n" for i in range(50)))
        kemensos.submit("kpm-verification", kemensos.seal(plain, "before-full.csv.gpg"))
        kemensos.outcome("kpm-verification", "before-full.result.csv.gpg")

        filler = fill(small_disk)
        sealed = kemensos.seal(plain, "while-full.csv.gpg")
        r = kemensos.sftp(f'put "{sealed}" /inbox/kpm-verification/while-full.csv.gpg',
                          check=False)
        assert r.returncode != 0, "an upload was accepted on a full disk"
        # not even a listing: a session the ledger cannot record does not open
        assert kemensos.sftp("ls /outbox/kpm-verification", check=False).returncode != 0
        assert ex.alive()
        filler.unlink()

        tries = retry_upload(kemensos, kemensos.seal(plain, "after-full.csv.gpg"),
                             "/inbox/kpm-verification/after-full.csv.gpg", timeout=30)
        assert kemensos.outcome("kpm-verification", "after-full.result.csv.gpg")
        assert tries >= 1
        assert not ex.ledger("--batch", "while-full", "--kind", "batch.received")
        assert "while-full.result.csv.gpg" not in kemensos.desk.listing(
            HOST, ex.port, "/outbox/kpm-verification")
        ex.verify()
        assert not any((ex.home / "work").iterdir())
        assert not any((ex.home / "spool" / "uploads").iterdir())
    finally:
        ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_an_upload_cut_while_the_ledger_is_unwritable_is_recorded_later(
        tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk], work: Path
) -> None:
    ex = make_exchange(tmp_path_factory.mktemp("cut-unrecorded"), desks)
    ex.start()
    files = [ex.home / "ledger.db", ex.home / "ledger.db-wal"]
    kemensos = Agency(desks["kemensos"], ex)
    try:
        big = work / "cut.csv.gpg"
        big.write_bytes(os.urandom(4 << 20))
        desk = kemensos.desk
        proc = subprocess.Popen(
            ["sftp", "-q", "-b", "-", "-l", "2000", "-P", str(ex.port), "-i", str(desk.ssh_key),
             "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             "-o", f"UserKnownHostsFile={desk.known_hosts}", f"kemensos@{HOST}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert proc.stdin is not None
        proc.stdin.write(f'put "{big}" /inbox/kpm-verification/cut.csv.gpg\n'.encode())
        proc.stdin.flush()
        deadline = time.monotonic() + 10
        while not list((ex.home / "spool" / "uploads").glob("*/data.part")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        lock(files, True)
        try:
            proc.kill()  # the connection drops mid-upload while the ledger is unwritable
            proc.wait()
            time.sleep(2)
        finally:
            lock(files, False)
        deadline = time.monotonic() + 8
        while not ex.ledger("--kind", "upload.interrupted") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ex.ledger("--kind", "upload.interrupted"), "the cut upload left no record"
    finally:
        ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_no_room_to_decrypt_stops_intake_until_there_is(
        small_disk: Path, desks: dict[str, AgencyDesk], work: Path) -> None:
    """A batch is received, but the disk has no room to decrypt it: the batch waits where it is,
    intake stops (new uploads fail), and once there is room the batch is answered, intake
    resumes and the ledger says so (exchange.available)."""
    ex, kemensos, bkn = disk_exchange(small_disk, desks)
    try:
        register = load_register(bkn, work)
        plain = work / "k.csv"
        plain.write_text("ref,nik\n" + "".join(f"R{i},{register.row(i).nik}\n" for i in range(50)))
        sealed = kemensos.seal(plain, "no-room.csv.gpg")
        # room for the upload, not for the 64 MiB the exchange keeps free to decrypt
        filler = fill(small_disk, leave=32 << 20)
        kemensos.submit("kpm-verification", sealed)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if kemensos.sftp(f'put "{sealed}" /inbox/kpm-verification/refused.csv.gpg',
                             check=False).returncode != 0:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("intake did not stop")
        # status says since when and why, and the ledger has the stop
        status: dict[str, object] = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not status.get("intake_stopped"):
            status = json.loads(exchanged("status", "--home", str(ex.home), "--format", "json"
                                          ).stdout)["daemon"]
            time.sleep(0.5)
        stopped = status.get("intake_stopped")
        assert isinstance(stopped, dict) and "MB free" in str(stopped["why"]), status
        assert "STOPPED since" in exchanged("status", "--home", str(ex.home)).stdout
        assert ex.ledger("--kind", "exchange.unavailable")
        assert not ex.ledger("--batch", "no-room", "--kind", "batch.rejected")
        assert not ex.ledger("--batch", "no-room", "--kind", "batch.answered")
        filler.unlink()
        assert kemensos.outcome("kpm-verification", "no-room.result.csv.gpg", timeout=30)
        resumed = ex.ledger("--kind", "exchange.available")
        assert resumed and resumed[-1]["data"]["since"]  # type: ignore[index]
        retry_upload(kemensos, kemensos.seal(plain, "room-again.csv.gpg"),
                     "/inbox/kpm-verification/room-again.csv.gpg", timeout=30)
        assert kemensos.outcome("kpm-verification", "room-again.result.csv.gpg")
        assert len(ex.ledger("--batch", "no-room", "--kind", "batch.answered")) == 1
        ex.verify()
    finally:
        ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_an_unwritable_ledger_stops_intake_until_it_is_writable(
        tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk], work: Path
) -> None:
    """The ledger's files made immutable (chattr +i: even root cannot write them) as a big
    batch is received: the batch cannot record its next stage and waits, no session
    opens (nothing could be recorded), the daemon keeps running; made writable again, the
    batch is answered exactly once, intake resumes and exchange.available is recorded."""
    ex = make_exchange(tmp_path_factory.mktemp("ledger-ro"), desks)
    ex.start()
    files = [ex.home / "ledger.db", ex.home / "ledger.db-wal"]
    kemensos, bkn = Agency(desks["kemensos"], ex), Agency(desks["bkn"], ex)
    locked = False
    try:
        register = synth.SyntheticRegister(5_000, seed=52)
        path = work / "register.csv"
        synth.write_register_csv(str(path), register)
        bkn.submit("asn-register", bkn.seal(path, "reg.csv.gpg"))
        bkn.outcome("asn-register", "reg.result.csv.gpg")
        big = work / "big.csv"
        synth.write_kpm_csv(str(big), synth.kpm_batch(register, 50_000, seed=5))
        sealed_big = kemensos.seal(big, "in-flight.csv.gpg")
        upload = threading.Thread(target=kemensos.submit, args=("kpm-verification", sealed_big))
        upload.start()
        # locked the moment the batch is received: before its processing records anything
        deadline = time.monotonic() + 30
        with database(ex.home) as db:
            while not db.execute("SELECT 1 FROM ledger WHERE batch = 'in-flight' AND kind = "
                                 "'batch.received'").fetchone():
                assert time.monotonic() < deadline
                time.sleep(0.002)
        lock(files, True)
        locked = True
        upload.join()
        plain = work / "k.csv"
        plain.write_text(f"nik\n{register.row(0).nik}\n")
        sealed = kemensos.seal(plain, "while-locked.csv.gpg")
        assert kemensos.sftp(f'put "{sealed}" /inbox/kpm-verification/while-locked.csv.gpg',
                             check=False).returncode != 0
        # nothing can be collected unrecorded either
        got = kemensos.sftp(f'get /outbox/asn-register/reg.result.csv.gpg "{work}/f"',
                            check=False, )
        assert got.returncode != 0 and not (work / "f").exists()
        time.sleep(3)
        assert ex.alive()
        lock(files, False)
        locked = False
        assert len(kemensos.outcome("kpm-verification", "in-flight.result.csv.gpg",
                                    timeout=60).splitlines()) == 50_001
        assert len(ex.ledger("--batch", "in-flight", "--kind", "batch.answered")) == 1
        assert ex.ledger("--kind", "exchange.available")
        retry_upload(kemensos, kemensos.seal(plain, "unlocked.csv.gpg"),
                     "/inbox/kpm-verification/unlocked.csv.gpg", timeout=30)
        assert kemensos.outcome("kpm-verification", "unlocked.result.csv.gpg")
        assert not ex.ledger("--batch", "while-locked")
        assert not any((ex.home / "spool" / "uploads").iterdir())
        assert not any((ex.home / "work").iterdir())
        ex.verify()
    finally:
        if locked:
            lock(files, False)
        ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_an_unwritable_ledger_found_by_a_login_is_on_record_later(
        tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]) -> None:
    ex = make_exchange(tmp_path_factory.mktemp("ledger-ro-idle"), desks)
    ex.start()
    files = [ex.home / "ledger.db", ex.home / "ledger.db-wal"]
    kemensos = Agency(desks["kemensos"], ex)
    try:
        lock(files, True)
        try:
            assert kemensos.sftp("ls /", check=False).returncode != 0
        finally:
            lock(files, False)
        deadline = time.monotonic() + 8
        while not ex.ledger("--kind", "exchange.available") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ex.ledger("--kind", "exchange.available")
    finally:
        ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")
