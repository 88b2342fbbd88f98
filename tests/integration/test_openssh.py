"""OpenSSH mode against a real sshd on a loopback port: chroots, the watcher, the outboxes."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from exchanged.testing.sshd import SSHD, Sshd
from tests.integration.hostile import OpenSession
from tests.integration.support import HOST, Agency, Exchange, exchanged

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Path(SSHD).exists(),
                                reason="OpenSSH mode needs root (system users, chroots) and sshd")


@pytest.fixture(scope="module")
def openssh(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
            ) -> Iterator[tuple[Exchange, Sshd]]:
    work = tmp_path_factory.mktemp("openssh")
    # sshd wants every part of a chroot's path owned by root and writable by nobody
    # else, which /tmp (1777) is not: the chroots go under /srv
    chroots = Path("/srv") / f"exchanged-test-{uuid.uuid4().hex[:8]}"
    ex = Exchange(work)
    ex.init()
    config = ex.home / "config.yaml"
    # the daemon runs as root here, so root is the user added to each agency's group
    config.write_text(config.read_text() + f"front_door: openssh\nopenssh_root: {chroots}\n"
                      'openssh_daemon_user: root\nmetrics_listen: ""\n')
    blocks = []
    try:
        for agency, name in (("kemensos", "Kementerian Sosial"), ("bkn", "BKN")):
            desk = desks[agency]
            public = desk.export_public(desk.dir / f"{agency}-ossh.asc")
            out = exchanged("agency", "add", "--home", str(ex.home), agency, "--name", name,
                            "--ssh-key", str(desk.ssh_public), "--gpg-key", str(public)).stdout
            blocks.append(out.split("then reload sshd:\n", 1)[1].split("under systemd:")[0])
            assert f"ReadWritePaths={chroots}" in out
            desk.import_key(ex.public_key, certify=True)
        exchanged("policy", "extend", "--home", str(ex.home), "pks-kemensos-bkn-2023",
                  "--until", "2099-12-31", "--reference", "EXAMPLE ONLY", "--example")
        sshd = Sshd(work, "".join(blocks))
        for desk in desks.values():
            desk.trust_host(HOST, sshd.port, sshd.host_key_pub)
        ex.port = sshd.port  # agencies now reach the exchange through sshd
        proc = subprocess.Popen([sys.executable, "-m", "exchanged", "run", "--home", str(ex.home)],
                                stdout=open(ex.log, "ab"), stderr=subprocess.STDOUT)
        ex.proc = proc
        deadline = time.monotonic() + 20
        while "ready" not in ex.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield ex, sshd
    finally:
        if ex.proc is not None and ex.proc.poll() is None:
            ex.proc.terminate()
            ex.proc.wait(30)
        if "sshd" in locals():
            sshd.stop()
        for agency in ("kemensos", "bkn"):
            subprocess.run(["userdel", agency], capture_output=True, check=False)
            subprocess.run(["groupdel", agency], capture_output=True, check=False)
        shutil.rmtree(chroots, ignore_errors=True)
        stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_agency_add_prints_the_match_block_and_makes_the_chroot(
        openssh: tuple[Exchange, Sshd]) -> None:
    ex, sshd = openssh
    config = sshd.config.read_text()
    assert "Match User kemensos" in config and "ForceCommand internal-sftp -u 0007" in config
    root = Path(next(line.split()[1] for line in config.splitlines()
                     if line.strip().startswith("ChrootDirectory") and "kemensos" in line))
    st = root.stat()
    assert st.st_uid == 0 and oct(st.st_mode & 0o777) == "0o755"
    inbox = root / "inbox" / "kpm-verification"
    assert oct(inbox.stat().st_mode & 0o7777) == "0o2770"


def test_batches_through_sshd(openssh: tuple[Exchange, Sshd], desks: dict[str, AgencyDesk],
                              work: Path) -> None:
    ex, _ = openssh
    bkn, kemensos = Agency(desks["bkn"], ex), Agency(desks["kemensos"], ex)
    register = synth.SyntheticRegister(400, seed=40)
    reg = work / "reg.csv"
    synth.write_register_csv(str(reg), register)
    sealed = bkn.seal(reg, "ossh-reg.csv.gpg")
    # the upload-then-rename convention
    bkn.sftp(f'put "{sealed}" /inbox/asn-register/.ossh-reg.csv.gpg.part',
             "rename /inbox/asn-register/.ossh-reg.csv.gpg.part "
             "/inbox/asn-register/ossh-reg.csv.gpg")
    assert '"ROWS_LOADED","400"' in bkn.outcome("asn-register", "ossh-reg.result.csv.gpg").decode()
    # a plain put: taken when the client closes the file
    batch, truth = work / "kpm.csv", work / "truth.csv"
    synth.write_kpm_csv(str(batch), synth.kpm_batch(register, 80, seed=3), truth_path=str(truth))
    kemensos.submit("kpm-verification", kemensos.seal(batch, "ossh-kpm.csv.gpg"))
    answer = kemensos.outcome("kpm-verification", "ossh-kpm.result.csv.gpg").decode()
    expected = [line.split(",")[2] for line in truth.read_text().splitlines()[1:]]
    assert [row[2] for row in csv.reader(io.StringIO(answer))][1:] == expected
    kemensos.sftp("rm /outbox/kpm-verification/ossh-kpm.result.csv.gpg")
    assert ex.ledger("--batch", "ossh-kpm", "--kind", "batch.answered")


def test_the_chroot_holds_an_agency_in(openssh: tuple[Exchange, Sshd],
                                       desks: dict[str, AgencyDesk]) -> None:
    ex, _ = openssh
    kemensos = Agency(desks["kemensos"], ex)
    out = kemensos.sftp("cd ../..", "ls -1 /", "ls -1 /outbox").stdout.decode()
    names = {line.strip().rstrip("/").rsplit("/", 1)[-1] for line in out.splitlines()
             if line.strip() and not line.startswith("sftp>")}
    assert names == {"inbox", "outbox", "kpm-verification", "jabfung-integration", "kpm-register",
                     "ledger", "notices"}
    assert kemensos.sftp("ls /outbox/asn-register", check=False).returncode != 0
    r = kemensos.sftp("ls /", check=False, user="bkn")
    assert r.returncode != 0  # kemensos' key does not log in bkn


def test_openssh_refuses_links_to_agencies(openssh: tuple[Exchange, Sshd],
                                           desks: dict[str, AgencyDesk], work: Path) -> None:
    """The printed Match block denies internal-sftp's link requests (-P symlink,hardlink):
    an agency cannot make a link in its chroot, and still renames its uploads."""
    ex, sshd = openssh
    assert "ForceCommand internal-sftp -u 0007 -P symlink,hardlink\n" in sshd.config.read_text()
    kemensos = Agency(desks["kemensos"], ex)
    folder = "/inbox/kpm-verification"
    part = work / "links.part"
    part.write_bytes(b"not yet complete")
    kemensos.sftp(f'put "{part}" {folder}/.links.part')
    chroot_inbox = chroot_of(sshd, "kemensos") / "inbox" / "kpm-verification"
    try:
        for command in (f"symlink {folder}/.links.part {folder}/.sym.part",
                        f"ln -s {folder}/.links.part {folder}/.sym2.part",
                        f"ln {folder}/.links.part {folder}/.hard.part"):
            assert kemensos.sftp(command, check=False).returncode != 0, command
        assert sorted(p.name for p in chroot_inbox.iterdir()) == [".links.part"]
        assert (chroot_inbox / ".links.part").stat().st_nlink == 1
        kemensos.sftp(f"rename {folder}/.links.part {folder}/.renamed.part")
        assert sorted(p.name for p in chroot_inbox.iterdir()) == [".renamed.part"]
    finally:
        kemensos.sftp(f"rm {folder}/.renamed.part", f"rm {folder}/.links.part", check=False)


def test_a_link_in_a_chroot_inbox_is_never_taken(openssh: tuple[Exchange, Sshd]) -> None:
    """Links planted by someone else on the host (an agency cannot make them): a symbolic link
    renamed into place is left alone by the watcher; a hard link passes the watcher's look
    at the name and is refused by the spool's check of the open descriptor (one link). Neither
    is received, the files they lead to are untouched, the daemon goes on."""
    ex, sshd = openssh
    inbox = chroot_of(sshd, "kemensos") / "inbox" / "kpm-verification"
    secret = ex.home / "keys" / "register.key"
    before = secret.read_bytes()
    elsewhere = inbox.parents[2] / "elsewhere.csv.gpg"  # same file system as the inbox
    elsewhere.write_bytes(b"not the agency's")
    (inbox / ".grab-sym.part").symlink_to(secret)
    os.link(elsewhere, inbox / ".grab-hard.part")
    try:
        os.rename(inbox / ".grab-sym.part", inbox / "grab-sym.csv.gpg")
        os.rename(inbox / ".grab-hard.part", inbox / "grab-hard.csv.gpg")
        wanted = ("a symbolic link in the inbox kemensos/kpm-verification was left alone",
                  "an upload in kemensos/kpm-verification could not be taken (NotAPlainFile)")
        deadline = time.monotonic() + 15
        while not all(w in ex.log.read_text() for w in wanted):
            assert time.monotonic() < deadline, ex.log.read_text()[-2000:]
            time.sleep(0.1)
        assert (inbox / "grab-sym.csv.gpg").is_symlink()
        assert (inbox / "grab-hard.csv.gpg").stat().st_nlink == 2
        assert not ex.ledger("--batch", "grab-sym") and not ex.ledger("--batch", "grab-hard")
        assert secret.read_bytes() == before and elsewhere.read_bytes() == b"not the agency's"
        assert ex.proc is not None and ex.proc.poll() is None
    finally:
        for name in ("grab-sym.csv.gpg", "grab-hard.csv.gpg", ".grab-sym.part",
                     ".grab-hard.part"):
            if os.path.lexists(inbox / name):
                (inbox / name).unlink()
        elsewhere.unlink()


def chroot_of(sshd: Sshd, agency: str) -> Path:
    """The agency's chroot, as its Match block names it."""
    return Path(next(line.split()[1] for line in sshd.config.read_text().splitlines()
                     if line.strip().startswith("ChrootDirectory") and agency in line))


def test_agency_add_refuses_when_the_daemons_user_is_missing(
        tmp_path: Path, desks: dict[str, AgencyDesk]) -> None:
    ex = Exchange(tmp_path)
    ex.init()
    chroots = Path("/srv") / f"exchanged-test-{uuid.uuid4().hex[:8]}"
    missing = f"nosuch{uuid.uuid4().hex[:8]}"
    config = ex.home / "config.yaml"
    config.write_text(config.read_text() + f"front_door: openssh\nopenssh_root: {chroots}\n"
                      f"openssh_daemon_user: {missing}\n")
    desk = desks["kemensos"]
    public = desk.export_public(desk.dir / "kemensos-missing.asc")
    try:
        r = exchanged("agency", "add", "--home", str(ex.home), "kemensos-x", "--name", "K",
                      "--ssh-key", str(desk.ssh_public), "--gpg-key", str(public), check=False)
        assert r.returncode == 2, r
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert f"the daemon's user {missing}" in r.stderr
        # nothing was made: no system user, no chroot, no registered agency
        assert subprocess.run(["id", "kemensos-x"], capture_output=True).returncode != 0
        assert not chroots.exists()
        assert "kemensos-x" not in exchanged("agency", "list", "--home", str(ex.home)).stdout
    finally:
        shutil.rmtree(chroots, ignore_errors=True)
        stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_a_replaced_key_ends_the_agencys_sshd_sessions(openssh: tuple[Exchange, Sshd],
                                                       desks: dict[str, AgencyDesk],
                                                       work: Path) -> None:
    """Issue 11 part 9 in OpenSSH mode: sshd checks a key only at login, so 'agency update'
    (run as root) ends the agency's sessions itself when it removes a key; a real sftp
    session of the removed key can do nothing more, the remaining key logs in."""
    ex, sshd = openssh
    kemensos = Agency(desks["kemensos"], ex)
    second = work / "second_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(second)],
                   check=True, capture_output=True)
    home = str(ex.home)
    exchanged("agency", "update", "--home", home, "kemensos", "--ssh-key", f"{second}.pub",
              "--add")
    inbox = chroot_of(sshd, "kemensos") / "inbox" / "kpm-verification"
    part = work / "cut.part"
    part.write_bytes(b"not yet complete")
    session = OpenSession(kemensos, second)
    try:
        assert session.run(f'put "{part}" /inbox/kpm-verification/.before.part',
                           (inbox / ".before.part").exists), "the added key's session failed"
        out = exchanged("agency", "update", "--home", home, "kemensos", "--ssh-key",
                        str(kemensos.desk.ssh_public)).stdout
        assert "open sessions of the agency ended" in out
        assert not session.run(f'put "{part}" /inbox/kpm-verification/.after.part',
                               (inbox / ".after.part").exists, timeout=5)
        assert session.proc.wait(10) != 0
    finally:
        session.close()
        for name in (".before.part", ".after.part"):
            if (inbox / name).exists():
                (inbox / name).unlink()
    entry = ex.ledger("--kind", "agency.updated", "--agency", "kemensos")[-1]
    assert entry["data"]["sessions_ended"] >= 1  # type: ignore[index,operator]
    assert kemensos.sftp("ls /inbox").returncode == 0
    assert kemensos.sftp("ls /", key=second, check=False).returncode != 0
