"""An agency sees only its own tree: no other agency's files, no escape, no links, no shell."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from exchanged.testing.agencydesk import AgencyDesk
from tests.integration.support import HOST, Agency, Exchange, write_csv


def test_root_shows_only_inbox_and_outbox(kemensos: Agency) -> None:
    out = kemensos.sftp("ls -1 /", "ls -1 /inbox", "ls -1 /outbox").stdout.decode()
    names = [line.strip().rstrip("/").rsplit("/", 1)[-1] for line in out.splitlines()
             if line.strip() and not line.startswith("sftp>")]
    flows = ["jabfung-integration", "kpm-register", "kpm-verification"]
    # every agency also collects the ledger's signed checkpoints, and puts its cosignatures
    # of them in /inbox/ledger (an addition to the contract: docs/ledger.md)
    assert names == ["inbox", "outbox", *flows, "ledger", *flows, "ledger", "notices"]


def test_another_agencys_tree_does_not_exist(kemensos: Agency, bkn: Agency, work: Path) -> None:
    for command in ("ls /outbox/asn-register", "ls /inbox/asn-register",
                    "get /outbox/asn-register/anything.result.csv.gpg",
                    "ls /drop", "ls /bkn"):
        assert kemensos.sftp(command, check=False).returncode != 0, command
    # a flow it may not use: the upload is refused outright
    f = write_csv(work / "r.csv.gpg", "x")
    assert kemensos.sftp(f'put "{f}" /inbox/asn-register/r.csv.gpg', check=False).returncode != 0


def test_dotdot_and_absolute_paths_stay_inside(kemensos: Agency, work: Path) -> None:
    out = kemensos.sftp("cd ../../..", "pwd").stdout.decode()
    assert "Remote working directory: /" in out
    for command in ("get ../../etc/passwd", "get /etc/passwd", "ls /../../etc",
                    "get /inbox/../../../../etc/shadow", "ls /home/../keys"):
        result = kemensos.sftp(command, check=False)
        assert result.returncode != 0, command
    assert not list(work.glob("passwd"))


def test_no_symlinks_no_mkdir_no_writes_outside_inbox(kemensos: Agency, work: Path) -> None:
    f = write_csv(work / "x.csv.gpg", "x")
    for command in ("symlink /outbox/kpm-verification /inbox/kpm-verification/l",
                    "ln -s /etc/passwd /inbox/kpm-verification/p",
                    "mkdir /inbox/new", "rmdir /inbox/kpm-verification",
                    f'put "{f}" /outbox/kpm-verification/x.csv.gpg',
                    f'put "{f}" /x.csv.gpg', f'put "{f}" /inbox/x.csv.gpg',
                    "rename /outbox/kpm-verification /inbox/kpm-verification/y"):
        assert kemensos.sftp(command, check=False).returncode != 0, command


def test_planted_symlink_is_invisible(exchange: Exchange, kemensos: Agency, work: Path) -> None:
    outbox = exchange.home / "drop" / "kemensos" / "outbox" / "kpm-verification"
    (outbox / "planted.result.csv.gpg").symlink_to("/etc/passwd")
    try:
        listing = kemensos.desk.listing(HOST, exchange.port, "/outbox/kpm-verification")
        assert "planted.result.csv.gpg" not in listing
        got = kemensos.sftp(f'get /outbox/kpm-verification/planted.result.csv.gpg "{work}/p"',
                            check=False)
        assert got.returncode != 0 and not (work / "p").exists()
    finally:
        (outbox / "planted.result.csv.gpg").unlink()


def test_unknown_key_and_unknown_user_are_refused_and_recorded(
    exchange: Exchange, kemensos: Agency, desks: dict[str, AgencyDesk]
) -> None:
    intruder = desks["intruder"]
    before = len(exchange.ledger("--kind", "login.failed"))
    r = kemensos.sftp("ls /", check=False, key=intruder.ssh_key)
    assert r.returncode != 0
    r = kemensos.sftp("ls /", check=False, user="nobody")
    assert r.returncode != 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        failed = exchange.ledger("--kind", "login.failed")
        if len(failed) >= before + 2:
            break
        time.sleep(0.2)
    failed = exchange.ledger("--kind", "login.failed")[before:]
    assert len(failed) == 2
    assert failed[0]["agency"] == "kemensos" and failed[0]["data"]["known_user"] is True  # type: ignore[index]
    assert failed[1]["agency"] is None and "nobody" not in str(failed[1])
    assert exchange.alive()


def test_no_shell_no_exec(exchange: Exchange, kemensos: Agency) -> None:
    desk = kemensos.desk
    base = ["ssh", "-p", str(exchange.port), "-i", str(desk.ssh_key), "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={desk.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", f"kemensos@{HOST}"]
    target = base.pop()
    for command in ([*base, target, "id"],  # exec
                    [*base, "-T", target],  # shell
                    [*base, "-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:22",
                     target]):  # forwarding
        r = subprocess.run(command, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode != 0, command


def test_cut_off_upload_is_discarded_and_recorded(exchange: Exchange, kemensos: Agency,
                                                  work: Path) -> None:
    big = work / "cutoff.csv.gpg"
    big.write_bytes(os.urandom(4 * 1024 * 1024))
    desk = kemensos.desk
    proc = subprocess.Popen(
        ["sftp", "-q", "-b", "-", "-l", "2000", "-P", str(exchange.port), "-i", str(desk.ssh_key),
         "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-o", f"UserKnownHostsFile={desk.known_hosts}", f"kemensos@{HOST}"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None
    proc.stdin.write(f'put "{big}" /inbox/kpm-verification/cutoff.csv.gpg\n'.encode())
    proc.stdin.flush()
    time.sleep(3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    entries: list[dict[str, object]] = []
    while time.monotonic() < deadline and not entries:
        entries = exchange.ledger("--kind", "upload.interrupted", "--agency", "kemensos")
        time.sleep(0.2)
    assert entries, "the cut-off upload was not recorded"
    assert not exchange.ledger("--batch", "cutoff"), "a cut-off upload must never be received"
    assert not any((exchange.home / "spool" / "uploads").iterdir())
    assert exchange.alive()


def test_an_ssh_key_logs_in_one_agency_only(exchange: Exchange, desks: dict[str, AgencyDesk],
                                            work: Path) -> None:
    from tests.integration.support import exchanged

    other = desks["intruder"].export_public(work / "intruder.asc")
    r = exchanged("agency", "add", "--home", str(exchange.home), "kemendagri", "--name", "X",
                  "--ssh-key", str(desks["kemensos"].ssh_public), "--gpg-key", str(other),
                  check=False)
    assert r.returncode == 2 and "already logs in agency kemensos" in r.stderr
