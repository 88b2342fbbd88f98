"""The demo: the whole exchange, end to end, on a throw-away home (``./scripts/demo``).

It does what the README tells an administrator and two agencies to do, with
the same commands: ``exchanged init``, ``agency add``, an EXAMPLE addendum so
that the agreement (which ended on 2026-04-03) is in force, ``exchanged run``;
then BKN uploads a synthetic ASN register and Kemensos a synthetic KPM batch,
each sealed with plain ``gpg`` and sent with OpenSSH ``sftp``; the answers are
downloaded, decrypted and checked against the generator's ground truth; the
ledger is verified. All data is synthetic: no real person is in it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from exchanged.testing.daemon import DaemonProcess, free_port

HOST = "127.0.0.1"
AGREEMENT = "pks-kemensos-bkn-2023"
EXAMPLE_REFERENCE = "CONTOH / EXAMPLE ONLY: demo addendum, not a real agreement"


def say(text: str) -> None:
    print(text, flush=True)


def exchanged(*args: str) -> str:
    say("  $ exchanged " + " ".join(a if " " not in a else repr(a) for a in args))
    result = subprocess.run([sys.executable, "-m", "exchanged", *args], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"demo: 'exchanged {args[0]}' failed: {result.stderr.strip()}")
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the demo folder afterwards")
    parser.add_argument("--register-rows", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=5_000)
    args = parser.parse_args(argv)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="exchanged-demo-"))
    home = root / "home"
    port = free_port()
    daemon = DaemonProcess(home, port, root / "daemon.log")
    desks: list[AgencyDesk] = []
    try:
        say(f"exchanged demo in {root} (synthetic data only)\n")
        say("1. The administrator creates the exchange:")
        out = exchanged("init", "--home", str(home), "--name", "Demo Exchange",
                        "--listen", f"{HOST}:{port}")
        fingerprint = next(line.split(": ", 1)[1] for line in out.splitlines()
                           if line.startswith("exchange OpenPGP key:"))
        say(f"     exchange key {fingerprint}")

        say("\n2. Each agency makes its keys (gpg, ssh-keygen) and is registered:")
        for agency, name in (("bkn", "Badan Kepegawaian Negara"),
                             ("kemensos", "Kementerian Sosial Republik Indonesia")):
            desk = AgencyDesk(agency, root / agency)
            desk.create_keys()
            desk.import_key(home / "exchange-public.asc", certify=True)
            desk.trust_host(HOST, port, home / "keys" / "ssh_host_ed25519_key.pub")
            public = desk.export_public(desk.dir / f"{agency}.asc")
            exchanged("agency", "add", "--home", str(home), agency, "--name", name,
                      "--ssh-key", str(desk.ssh_public), "--gpg-key", str(public))
            desks.append(desk)
        bkn, kemensos = desks

        say("\n3. The agreement ended on 2026-04-03; the demo records an EXAMPLE addendum:")
        say(exchanged("policy", "check", "--home", str(home)).strip().splitlines()[-1].join(
            ["     ", ""]))
        exchanged("policy", "extend", "--home", str(home), AGREEMENT, "--until", "2099-12-31",
                  "--reference", EXAMPLE_REFERENCE, "--example")
        say(exchanged("policy", "check", "--home", str(home)).strip().splitlines()[-1].join(
            ["     ", ""]))

        say("\n4. The daemon starts:")
        say(f"  $ exchanged run --home {home} &")
        try:
            daemon.start(timeout=30)
        except RuntimeError as e:
            raise SystemExit(f"demo: {e}") from None
        say(f"     listening on {HOST}:{port}")

        say(f"\n5. BKN sends its ASN register ({args.register_rows} synthetic rows):")
        register = synth.SyntheticRegister(args.register_rows, seed=2023)
        reg_csv = bkn.dir / "register.csv"
        synth.write_register_csv(str(reg_csv), register)
        sealed = bkn.seal(reg_csv, bkn.dir / "asn-2026-11.csv.gpg", recipient=fingerprint)
        say("  $ gpg --sign --encrypt -r EXCHANGE register.csv; sftp put asn-2026-11.csv.gpg "
            "/inbox/asn-register/")
        t0 = time.monotonic()
        bkn.upload(HOST, port, sealed, "/inbox/asn-register/asn-2026-11.csv.gpg")
        bkn.wait_for(HOST, port, "/outbox/asn-register", "asn-2026-11.result.csv.gpg",
                     timeout=120)
        answer = bkn.download(HOST, port, "/outbox/asn-register/asn-2026-11.result.csv.gpg",
                              bkn.dir / "asn-2026-11.result.csv.gpg")
        opened = bkn.open(answer)
        assert opened.signer == fingerprint, "the answer is not signed by the exchange"
        summary = {row["code"]: row["detail"] for row in csv.DictReader(
            io.StringIO(opened.data.decode())) if row["record"] == "summary"}
        say(f"     answered in {time.monotonic() - t0:.1f} s, signed by the exchange: "
            f"{summary['ROWS_LOADED']} rows loaded, {summary['ROWS_INVALID']} invalid")

        say(f"\n6. Kemensos sends a KPM batch ({args.rows} synthetic rows) to verify:")
        kpm_csv = kemensos.dir / "kpm.csv"
        truth_csv = kemensos.dir / "truth.csv"
        synth.write_kpm_csv(str(kpm_csv), synth.kpm_batch(register, args.rows, seed=7),
                            columns=("ref", "nik"), truth_path=str(truth_csv))
        sealed = kemensos.seal(kpm_csv, kemensos.dir / "kpm-2026-11-w4.csv.gpg",
                               recipient=fingerprint)
        say("  $ gpg --sign --encrypt -r EXCHANGE kpm.csv; sftp put kpm-2026-11-w4.csv.gpg "
            "/inbox/kpm-verification/")
        t0 = time.monotonic()
        kemensos.upload(HOST, port, sealed, "/inbox/kpm-verification/kpm-2026-11-w4.csv.gpg")
        kemensos.wait_for(HOST, port, "/outbox/kpm-verification",
                          "kpm-2026-11-w4.result.csv.gpg", timeout=120)
        answer = kemensos.download(HOST, port,
                                   "/outbox/kpm-verification/kpm-2026-11-w4.result.csv.gpg",
                                   kemensos.dir / "kpm-2026-11-w4.result.csv.gpg")
        opened = kemensos.open(answer)
        assert opened.signer == fingerprint, "the answer is not signed by the exchange"
        elapsed = time.monotonic() - t0
        rows = list(csv.DictReader(io.StringIO(opened.data.decode())))
        truth = list(csv.DictReader(truth_csv.open(encoding="utf-8")))
        agree = sum(1 for a, t in zip(rows, truth, strict=True)
                    if a["status"] == t["expected_status"]
                    and a.get("jenis_asn", "") == t["expected_jenis_asn"]
                    and a.get("instansi", "") == t["expected_instansi"])
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        say(f"     answered in {elapsed:.1f} s: " + ", ".join(
            f"{k} {v}" for k, v in sorted(counts.items())))
        say(f"     columns: {', '.join(rows[0].keys())} (the register's NIP, name and birth date "
            "are never disclosed)")
        say(f"     {agree} of {len(truth)} rows match the generator's ground truth")
        if agree != len(truth):
            raise SystemExit("demo: the answer does not match the ground truth")

        say("\n7. Compliance checks the ledger:")
        say("     " + exchanged("ledger", "verify", "--home", str(home)).strip())
        for line in exchanged("ledger", "query", "--home", str(home), "--batch",
                              "kpm-2026-11-w4", "--format", "json").splitlines():
            entry = json.loads(line)
            data = entry["data"]
            detail = ", ".join(f"{k}={data[k]}" for k in ("rows", "counts", "decision", "rules",
                                                           "outcome_name") if k in data)
            say(f"     {entry['seq']:>4} {entry['ts'][:19]} {entry['kind']:<20} {detail}")

        leftovers = _plaintext_left(home, kpm_csv)
        say(f"\n8. Plaintext of the KPM batch left in the home: {leftovers or 'none'}")
        if leftovers:
            raise SystemExit("demo: plaintext was left behind")
        say(f"\ndone in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        daemon.stop()
        for desk in desks:
            stop_gpg_agent(desk.gnupg)
        stop_gpg_agent(home / "keys" / "gnupg")
        if args.keep:
            say(f"(kept {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _plaintext_left(home: Path, batch: Path) -> list[str]:
    """Files in the home that contain any NIK of the batch in the clear."""
    niks = set()
    with batch.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            nik = row["nik"].strip()
            if len(nik) == 16 and nik.isdigit():
                niks.add(nik.encode())
    sample = list(niks)[:200]
    found = []
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(n in data for n in sample):
                found.append(str(path.relative_to(home)))
    return found


if __name__ == "__main__":
    sys.exit(main())
