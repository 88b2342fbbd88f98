"""A crowd of agencies on one exchange: a fictional agreement with one data registrar and
N agencies, each with a ``nik-lookup`` flow of its own against the registrar's dataset.

Used by the load benchmark (``scripts/bench load``) and the fault-injection tests. Every
agency's keys are made with ``gpg`` and ``ssh-keygen`` through
:mod:`exchanged.testing.agencydesk`, as an agency would; the agreement is clearly labelled
fictional: its parties, numbers and dates are invented.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from exchanged.admin.agencies import add_agency
from exchanged.admin.init import init_home
from exchanged.home import Home
from exchanged.ledger import Ledger, Query
from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from exchanged.testing.daemon import DaemonProcess, free_port

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
        "# Every party, number and date is invented (benchmarks.load).",
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
            out.append(desk.seal(plain, folder / f"{batch_id}.csv.gpg",
                                 recipient=bench.fingerprint))
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
