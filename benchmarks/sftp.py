"""``scripts/bench sftp``: the embedded SFTP front door against OpenSSH's internal-sftp.

Both servers run on this machine, on loopback ports: the exchange (``exchanged run``, its
own SFTP server, with a registered agency) and the system's ``sshd`` (started by the
benchmark with a throw-away configuration: ``internal-sftp``, the agency's key authorised
for the user running the benchmark). The same OpenSSH ``sftp`` client, with its default
flags (only the key, the pinned host key and batch mode are given), uploads the same file
of random bytes to each, ``--repeat`` times in turns; the best time of each is kept (the
machine's other work only ever makes a run slower). The upload goes under a temporary
name (``*.part``), which the exchange holds without opening, so that only the front door
is measured.

The last line printed is one JSON object: ``mb``, ``embedded_mb_per_s``,
``openssh_mb_per_s``, ``ratio`` (embedded / OpenSSH; the target is at least 0.75), the
ciphers each negotiated, every time measured, and the CPU time each server spent on each
upload (``cpu_ratio``: OpenSSH's CPU time over the exchange's; with other work on the
machine the wall times wander and the CPU times much less). sshd needs root (privilege separation).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.matching import Daemon
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from exchanged.testing.daemon import HOST
from exchanged.testing.sshd import SSHD, Sshd

REMOTE = "bench.bin.part"


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """CPU time (user + system) of a process, or of its finished children: a measure that
    other work on the machine disturbs far less than a wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    at = 13 if children else 11  # cutime, cstime / utime, stime (fields 16-17 / 14-15)
    return (int(fields[at]) + int(fields[at + 1])) / os.sysconf("SC_CLK_TCK")


def upload(desk: AgencyDesk, port: int, user: str, local: Path, remote: str) -> tuple[float, str]:
    """One ``sftp`` put with the client's default flags: seconds, and the cipher used."""
    cmd = ["sftp", "-v", "-b", "-", "-P", str(port), "-i", str(desk.ssh_key),
           "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
           "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={desk.known_hosts}",
           f"{user}@{HOST}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, input=f'put "{local}" "{remote}"\n'.encode(),
                          capture_output=True, timeout=3600)
    seconds = time.perf_counter() - start
    said = done.stderr.decode(errors="replace")
    if done.returncode != 0:
        raise SystemExit(f"sftp to port {port} failed: {said.splitlines()[-3:]}")
    cipher = re.search(r"debug1: kex: client->server cipher: (\S+) MAC: (\S+)", said)
    return seconds, (f"{cipher[1]} {cipher[2]}" if cipher else "?")


def run(args: argparse.Namespace) -> dict[str, object]:
    if os.geteuid() != 0 or not Path(SSHD).exists():
        raise SystemExit("scripts/bench sftp needs root and /usr/sbin/sshd (OpenSSH's server)")
    root = Path(tempfile.mkdtemp(prefix="exchanged-bench-sftp-", dir=args.workdir))
    os.chmod(root, 0o700)
    kemensos = AgencyDesk("kemensos", root / "kemensos")
    bkn = AgencyDesk("bkn", root / "bkn")
    for desk in (kemensos, bkn):
        desk.create_keys()
    data = root / "upload.bin"
    with open(data, "wb") as f:
        for _ in range(args.mb):
            f.write(os.urandom(1 << 20))
    daemon = Daemon(root)
    daemon.init([kemensos, bkn])
    authorized = root / "authorized_keys"
    authorized.write_text(Path(f"{kemensos.ssh_key}.pub").read_text())
    user = os.environ.get("USER") or "root"
    sshd_dir = root / "openssh"
    sshd_dir.mkdir(mode=0o700)
    times: dict[str, list[float]] = {"embedded": [], "openssh": []}
    cpu: dict[str, list[float]] = {"embedded": [], "openssh": []}
    ciphers: dict[str, str] = {}
    sshd: Sshd | None = None
    try:
        daemon.start()
        sshd = Sshd(sshd_dir, "PermitRootLogin prohibit-password\nForceCommand internal-sftp\n",
                    authorized_keys=str(authorized), strict_modes=False, log_level="INFO")
        targets = {"embedded": (daemon.port, "kemensos", f"/inbox/kpm-verification/{REMOTE}",
                                daemon.home / "keys" / "ssh_host_ed25519_key.pub"),
                   "openssh": (sshd.port, user, str(sshd_dir / REMOTE), sshd.host_key_pub)}
        assert daemon.proc is not None
        servers = {"embedded": (daemon.proc.pid, False), "openssh": (sshd.proc.pid, True)}
        for _ in range(args.repeat):
            for name, (port, login, remote, host_key) in targets.items():
                kemensos.trust_host(HOST, port, host_key)
                pid, children = servers[name]
                before = cpu_seconds(pid, children=children)
                seconds, ciphers[name] = upload(kemensos, port, login, data, remote)
                time.sleep(0.2)  # sshd reaps the session's processes
                cpu[name].append(cpu_seconds(pid, children=children) - before)
                times[name].append(seconds)
    finally:
        if sshd is not None:
            sshd.stop()
        daemon.stop()
        for desk in (kemensos, bkn):
            stop_gpg_agent(desk.gnupg)
        stop_gpg_agent(daemon.home / "keys" / "gnupg")
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    embedded = args.mb / min(times["embedded"])
    openssh = args.mb / min(times["openssh"])
    return {
        "case": "sftp-upload",
        "mb": args.mb,
        "embedded_mb_per_s": round(embedded, 1),
        "openssh_mb_per_s": round(openssh, 1),
        "ratio": round(embedded / openssh, 3),
        "embedded_cipher": ciphers["embedded"],
        "openssh_cipher": ciphers["openssh"],
        "cpu_ratio": round(min(cpu["openssh"]) / max(min(cpu["embedded"]), 1e-9), 3),
        "embedded_cpu_seconds": [round(t, 2) for t in cpu["embedded"]],
        "openssh_cpu_seconds": [round(t, 2) for t in cpu["openssh"]],
        "embedded_seconds": [round(t, 3) for t in times["embedded"]],
        "openssh_seconds": [round(t, 3) for t in times["openssh"]],
        "load_average": os.getloadavg()[0],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench sftp", description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=512, help="size of the uploaded file, MiB")
    parser.add_argument("--repeat", type=int, default=3, help="uploads to each server")
    parser.add_argument("--workdir", default=None, help="where the throw-away files go")
    parser.add_argument("--keep", action="store_true", help="keep the files and the logs")
    args = parser.parse_args(argv)
    if args.mb < 1 or args.repeat < 1:
        parser.error("--mb and --repeat must be positive")
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
