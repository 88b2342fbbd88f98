"""The SFTP front door: modern algorithms only, a defender that bans, quotas, connection limits.

Two kinds of test: against the real daemon (the algorithms an old client
offers, a ban of an address that keeps failing), and against the front door
alone, in-process with small limits (a quota of a megabyte, an idle time of
two seconds, a ban of two seconds), driven by the real OpenSSH ``sftp`` and,
where OpenSSH cannot do it, by paramiko.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from paramiko.sftp import CMD_STATUS, CMD_WRITE, SFTP_BAD_MESSAGE

from exchanged.batch.spool import META_FILE, UPLOAD_FILE, UploadMeta
from exchanged.sftp.handles import MAX_TRANSFER
from exchanged.sftp.limits import Limits
from exchanged.sftp.server import ALLOWED
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.frontdoor import FLOW, HOST, Door, front_door
from tests.integration.support import Agency, Exchange, exchanged, make_exchange

# -- the real daemon: what it offers, and what an old client gets ---------------------------

WEAK = {
    "ciphers": ("cbc", "3des", "arcfour", "blowfish", "cast128", "none"),
    "macs": ("sha1", "md5", "ripemd", "umac-64"),
    "kex": ("sha1",),
    "keys": ("ssh-rsa", "ssh-dss"),
}


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
             ) -> Iterator[Exchange]:
    ex = make_exchange(tmp_path_factory.mktemp("front-door"), desks)
    ex.start()
    yield ex
    if ex.alive():
        ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")


def server_kexinit(port: int) -> dict[str, list[str]]:
    """The algorithms the server offers, read from its SSH_MSG_KEXINIT (sent in the clear)."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(b"SSH-2.0-exchanged_probe\r\n")
        stream = sock.makefile("rb")
        while not stream.readline().startswith(b"SSH-"):
            pass
        length = int.from_bytes(stream.read(4), "big")
        padding = stream.read(1)[0]
        payload = stream.read(length - 1)[: length - 1 - padding]
    assert payload[0] == 20, "the first packet is not a KEXINIT"
    names = ("kex", "host_keys", "ciphers_in", "ciphers_out", "macs_in", "macs_out",
             "compression_in", "compression_out")
    out: dict[str, list[str]] = {}
    pos = 17  # message number and the 16-byte cookie
    for name in names:
        size = int.from_bytes(payload[pos:pos + 4], "big")
        out[name] = payload[pos + 4:pos + 4 + size].decode("ascii").split(",")
        pos += 4 + size
    return out


def test_the_server_offers_only_modern_algorithms(exchange: Exchange) -> None:
    offered = server_kexinit(exchange.port)
    assert offered["host_keys"] == ["ssh-ed25519"]
    for kind, key in (("ciphers_in", "ciphers"), ("ciphers_out", "ciphers"),
                      ("macs_in", "macs"), ("macs_out", "macs")):
        assert offered[kind] and set(offered[kind]) <= set(ALLOWED[key]), offered[kind]
        assert not [a for a in offered[kind] if any(w in a for w in WEAK[key])]
    kex = [a for a in offered["kex"] if not a.startswith(("kex-strict-", "ext-info-"))]
    assert kex and set(kex) <= set(ALLOWED["kex"]) and not [a for a in kex if "sha1" in a]
    # the Terrapin counter-measure (strict key exchange) is offered
    assert "kex-strict-s-v00@openssh.com" in offered["kex"]
    assert offered["compression_in"] == ["none"]


def test_a_packet_declared_over_the_limit_ends_the_connection(exchange: Exchange) -> None:
    """A stranger's first packet declares 2 GiB: the exchange ends the connection at once
    instead of reading (and holding) whatever follows until the handshake's deadline."""
    with socket.create_connection((HOST, exchange.port), timeout=10) as sock:
        sock.sendall(b"SSH-2.0-exchanged_probe\r\n")
        stream = sock.makefile("rb")
        while not stream.readline().startswith(b"SSH-"):
            pass
        # 2 GiB and 4 bytes: a length paramiko's check of the cipher's blocking accepts
        sock.sendall(((2 << 30) + 4).to_bytes(4, "big") + b"\x04" + b"\x14" + bytes(10))
        deadline = time.monotonic() + 10
        while "declared an SSH packet of 2147483648 bytes" not in exchange.log.read_text():
            assert time.monotonic() < deadline, "the connection was not ended by the cap"
            time.sleep(0.05)
        sock.settimeout(15)
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(4096):
                pass
    assert exchange.alive()


def old_client(agency: Agency, *options: str, key: Path | None = None
               ) -> subprocess.CompletedProcess[bytes]:
    desk = agency.desk
    # another exchange made by a test in between has the shared desk trust its own host key
    desk.trust_host(HOST, agency.exchange.port,
                    agency.exchange.home / "keys" / "ssh_host_ed25519_key.pub")
    cmd = ["sftp", "-b", "-", "-P", str(agency.exchange.port), "-i", str(key or desk.ssh_key),
           "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
           "-o", f"UserKnownHostsFile={desk.known_hosts}", "-o", "ConnectTimeout=20"]
    for option in options:
        cmd += ["-o", option]
    return subprocess.run([*cmd, f"{agency.id}@{HOST}"], input=b"ls /\n", capture_output=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("options", [
    ("Ciphers=aes128-cbc,aes192-cbc,aes256-cbc,3des-cbc",),
    ("Ciphers=aes128-ctr,aes256-ctr", "MACs=hmac-sha1,hmac-sha1-96,hmac-md5"),
    ("KexAlgorithms=diffie-hellman-group14-sha1,diffie-hellman-group1-sha1,"
     "diffie-hellman-group-exchange-sha1",),
    ("HostKeyAlgorithms=ssh-rsa,ssh-dss",),
    # a client of 2010 offers all of them at once
    ("Ciphers=aes128-cbc", "MACs=hmac-sha1", "KexAlgorithms=diffie-hellman-group14-sha1",
     "HostKeyAlgorithms=ssh-rsa"),
], ids=["cbc", "sha1-mac", "sha1-kex", "rsa-sha1-host-key", "all-old"])
def test_an_old_client_cannot_connect(exchange: Exchange, desks: dict[str, AgencyDesk],
                                      options: tuple[str, ...]) -> None:
    kemensos = Agency(desks["kemensos"], exchange)
    r = old_client(kemensos, *options)
    assert r.returncode != 0
    # refused in the negotiation, not for some other reason (an option the client lacks)
    assert b"no matching" in r.stderr, r.stderr[-400:]
    # the same client with its defaults gets in: the refusal was the algorithms
    assert old_client(kemensos).returncode == 0
    assert exchange.alive()


def test_no_sha1_signature_logs_in(exchange: Exchange, desks: dict[str, AgencyDesk],
                                   work: Path) -> None:
    """An RSA login key (3072 bits) works with SHA-2 signatures, never with ssh-rsa (SHA-1)."""
    kemensos = Agency(desks["kemensos"], exchange)
    rsa = work / "rsa_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", str(rsa)],
                   check=True, capture_output=True)
    exchanged("agency", "update", "--home", str(exchange.home), "kemensos",
              "--ssh-key", str(rsa.with_suffix(".pub")), "--add")
    ok = old_client(kemensos, "PubkeyAcceptedAlgorithms=rsa-sha2-512,rsa-sha2-256", key=rsa)
    assert ok.returncode == 0, ok.stderr[-400:]
    sha1 = old_client(kemensos, "PubkeyAcceptedAlgorithms=ssh-rsa", key=rsa)
    assert sha1.returncode != 0


def test_an_address_that_keeps_failing_is_banned(tmp_path_factory: pytest.TempPathFactory,
                                                 desks: dict[str, AgencyDesk]) -> None:
    """Ten failed logins from one address: it is banned, even with the right key, and the
    daemon goes on. (Its own daemon: the ban covers 127.0.0.1, where every test connects.)"""
    ex = make_exchange(tmp_path_factory.mktemp("banned"), desks)
    ex.start()
    try:
        kemensos = Agency(desks["kemensos"], ex)
        intruder_key = desks["intruder"].ssh_key
        for _ in range(10):
            assert kemensos.sftp("ls /", check=False, key=intruder_key).returncode != 0
        time.sleep(1)  # the server scores a connection as it closes it, after the client left
        refused = kemensos.sftp("ls /", check=False)
        assert refused.returncode != 0, "a banned address logged in"
        # turned away before the SSH handshake: not even the server's banner
        with socket.create_connection((HOST, ex.port), timeout=10) as sock:
            sock.settimeout(10)
            assert sock.recv(64) == b""
        assert ex.alive()
        failed = ex.ledger("--kind", "login.failed")
        # the ten failures are recorded (three at once, the rest aggregated before the ban);
        # the connections turned away after them are not
        assert sum(e["data"]["connections"] for e in failed) == 10  # type: ignore[index,misc]
        assert len(failed) == 4, len(failed)
    finally:
        ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_a_ban_is_recorded_in_the_ledger(tmp_path_factory: pytest.TempPathFactory,
                                         desks: dict[str, AgencyDesk]) -> None:
    ex = make_exchange(tmp_path_factory.mktemp("ban-ledger"), desks)
    ex.start()
    try:
        kemensos = Agency(desks["kemensos"], ex)
        for _ in range(10):
            kemensos.sftp("ls /", check=False, key=desks["intruder"].ssh_key)
        time.sleep(1)
        deadline = time.monotonic() + 3
        bans: list[dict[str, object]] = []
        while not bans and time.monotonic() < deadline:
            bans = ex.ledger("--kind", "login.banned")
            time.sleep(0.2)
        assert len(bans) == 1
        data = bans[0]["data"]
        assert isinstance(data, dict)
        assert data["address"] == HOST and data["seconds"] >= 900 and data["count"] == 1
        ex.verify()
    finally:
        ex.stop()
        stop_gpg_agent(ex.home / "keys" / "gnupg")


# -- the front door alone, with small limits ---------------------------------------------------

SMALL = Limits(quota_bytes=1 << 20, quota_files=3, max_sessions_per_agency=2,
               max_channels_per_connection=2, idle_seconds=2.0, login_grace_seconds=2.0,
               ban_threshold=4, ban_seconds=2.0, max_unauthenticated_per_address=3,
               max_connections=6, handshake_seconds=2.0)


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    with front_door(tmp_path, SMALL) as d:
        yield d


def blob(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def test_an_upload_over_the_quota_fails_at_the_quota(door: Door, tmp_path: Path) -> None:
    big = blob(tmp_path / "big.csv.gpg", 3 << 20)
    r = door.sftp("alpha", f'put "{big}" /inbox/{FLOW}/big.csv.gpg')
    assert r.returncode != 0
    assert not door.door.received
    [(name, size, why)] = door.door.discarded
    # the exchange never stored a byte over the quota
    assert name == "big.csv.gpg" and size <= SMALL.quota_bytes and "quota" in why
    assert not any(door.door.home.uploads.iterdir())
    # the quota is the agency's: another agency uploads as before
    small = blob(tmp_path / "small.csv.gpg", 100_000)
    assert door.sftp("beta", f'put "{small}" /inbox/{FLOW}/small.csv.gpg').returncode == 0
    # and once its big upload is gone, so is alpha's usage
    assert door.sftp("alpha", f'put "{small}" /inbox/{FLOW}/small.csv.gpg').returncode == 0


def test_held_files_count_towards_the_quota(door: Door, tmp_path: Path) -> None:
    part = blob(tmp_path / "p", 700_000)
    assert door.sftp("alpha", f'put "{part}" /inbox/{FLOW}/one.csv.gpg.filepart').returncode == 0
    r = door.sftp("alpha", f'put "{part}" /inbox/{FLOW}/two.csv.gpg.filepart')
    assert r.returncode != 0
    assert [d[2] for d in door.door.discarded] == [
        f"the agency's inbox is over its quota of {SMALL.quota_bytes} bytes"]
    # renaming the held file hands it over; it no longer counts as held
    assert door.sftp("alpha", f"rename /inbox/{FLOW}/one.csv.gpg.filepart "
                              f"/inbox/{FLOW}/one.csv.gpg").returncode == 0
    assert door.door.received == [("one.csv.gpg", 700_000)]


def test_batches_waiting_for_an_answer_count_towards_the_quota(tmp_path: Path) -> None:
    with front_door(tmp_path, SMALL, queued=(900_000, 1)) as d:
        f = blob(tmp_path / "f", 200_000)
        assert d.sftp("alpha", f'put "{f}" /inbox/{FLOW}/f.csv.gpg').returncode != 0
        d.door.queued = (0, 3)
        assert d.sftp("alpha", f'put "{f}" /inbox/{FLOW}/f.csv.gpg').returncode != 0
        d.door.queued = (0, 2)
        assert d.sftp("alpha", f'put "{f}" /inbox/{FLOW}/f.csv.gpg').returncode == 0


def test_a_queue_that_cannot_be_counted_refuses_uploads(tmp_path: Path) -> None:
    with front_door(tmp_path, SMALL, queue_broken=True) as d:
        f = blob(tmp_path / "f", 1000)
        assert d.sftp("alpha", f'put "{f}" /inbox/{FLOW}/f.csv.gpg').returncode != 0
        assert not d.door.received and not any(d.door.home.uploads.iterdir())


def test_the_quota_of_files(door: Door, tmp_path: Path) -> None:
    f = blob(tmp_path / "f", 1000)
    for i in range(3):
        assert door.sftp("alpha", f'put "{f}" /inbox/{FLOW}/h{i}.csv.gpg.part').returncode == 0
    assert door.sftp("alpha", f'put "{f}" /inbox/{FLOW}/h3.csv.gpg.part').returncode != 0
    assert len(list(door.door.inbox_dir("alpha", FLOW).iterdir())) == 3
    # removing a held upload makes room again
    assert door.sftp("alpha", f"rm /inbox/{FLOW}/h0.csv.gpg.part").returncode == 0
    assert door.sftp("alpha", f'put "{f}" /inbox/{FLOW}/h3.csv.gpg.part').returncode == 0


def test_a_write_past_the_flow_limit_fails_there(tmp_path: Path) -> None:
    with front_door(tmp_path, Limits(), upload_limit=100_000) as d:
        f = blob(tmp_path / "f", 1 << 20)
        assert d.sftp("alpha", f'put "{f}" /inbox/{FLOW}/f.csv.gpg').returncode != 0
        [(_, size, why)] = d.door.discarded
        assert size <= 100_000 and "limit of 100000 bytes" in why


def test_openssh_clients_write_255_kib_at_a_time(door: Door, tmp_path: Path) -> None:
    # the server answers limits@openssh.com: OpenSSH's sftp then writes 255 KiB per request
    # instead of 32 KiB (docs/performance.md), and the upload arrives whole
    data = blob(tmp_path / "whole.csv.gpg", 3 * MAX_TRANSFER + 12_345)
    desk = door.desks["beta"]
    r = subprocess.run(
        ["sftp", "-vvv", "-b", "-", "-P", str(door.port), "-i", str(desk.ssh_key),
         "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={desk.known_hosts}", f"beta@{HOST}"],
        input=f'put "{data}" /inbox/{FLOW}/whole.csv.gpg\n'.encode(), capture_output=True,
        timeout=60, check=False)
    said = r.stderr.decode(errors="replace")
    assert r.returncode == 0, said[-2000:]
    assert f"using {MAX_TRANSFER} / {MAX_TRANSFER}" in said
    assert door.door.received == [("whole.csv.gpg", data.stat().st_size)]
    [batch] = door.door.home.batches.iterdir()
    assert (batch / UPLOAD_FILE).read_bytes() == data.read_bytes()
    assert UploadMeta.from_json((batch / META_FILE).read_bytes()).sha256 == \
        hashlib.sha256(data.read_bytes()).hexdigest()


def test_an_outcome_is_downloaded_whole_in_255_kib_reads(door: Door, tmp_path: Path) -> None:
    # the client reads 255 KiB per request too (limits@openssh.com): an outcome of several
    # such reads arrives whole
    body = b"-----BEGIN PGP MESSAGE-----\n" + os.urandom(3 * MAX_TRANSFER + 999)
    outbox = door.door.outbox_dir("beta", FLOW)
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / "big.result.csv.gpg").write_bytes(body)
    local = tmp_path / "got.gpg"
    r = door.sftp("beta", f'get /outbox/{FLOW}/big.result.csv.gpg "{local}"')
    assert r.returncode == 0, r.stderr[-500:]
    assert local.read_bytes() == body


def test_other_extensions_are_still_paramikos(door: Door, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    with door.client("alpha") as sftp:
        sftp.putfo(io.BytesIO(data), f"/inbox/{FLOW}/p.csv.gpg.part")
        # posix-rename@openssh.com: answered by paramiko, past limits@openssh.com
        sftp.posix_rename(f"/inbox/{FLOW}/p.csv.gpg.part", f"/inbox/{FLOW}/p.csv.gpg")
    assert door.door.received == [("p.csv.gpg", 300_000)]
    # a held upload is not hashed as it arrives, but whole when it is handed over
    [batch] = door.door.home.batches.iterdir()
    assert UploadMeta.from_json((batch / META_FILE).read_bytes()).sha256 == \
        hashlib.sha256(data).hexdigest()


def test_a_malformed_write_is_answered_and_the_session_goes_on(door: Door) -> None:
    # writes are parsed by the exchange's own code (sftp/handles.py), not paramiko's
    with door.client("alpha") as sftp:
        f = sftp.open(f"/inbox/{FLOW}/m.csv.gpg.part", "wb")
        handle = bytes(f.handle)  # type: ignore[call-overload]

        def status(handle: bytes, data: bytes, cut: int = 0) -> int:
            msg = paramiko.Message()
            msg.add_int(7_000_001)
            msg.add_string(handle)
            msg.add_int64(2**32 + 1)
            msg.add_string(data)
            raw = msg.asbytes()
            sftp._send_packet(CMD_WRITE, paramiko.Message(raw[:len(raw) - cut]))  # type: ignore[attr-defined]
            kind, reply = sftp._read_packet()  # type: ignore[attr-defined]
            assert kind == CMD_STATUS
            answer = paramiko.Message(reply)
            assert answer.get_int() == 7_000_001
            return int(answer.get_int())

        assert status(b"no-such-handle", b"data") == SFTP_BAD_MESSAGE
        # the data's length says more than the request holds
        assert status(handle, b"x" * 100, cut=10) == SFTP_BAD_MESSAGE
        # the session goes on, and the handle still takes writes
        f.write(b"y" * 10)
        f.close()
        assert "m.csv.gpg.part" in sftp.listdir(f"/inbox/{FLOW}")


def test_sessions_per_agency(door: Door) -> None:
    with door.client("alpha") as one, door.client("alpha") as two:
        assert one.listdir("/") == two.listdir("/") == ["inbox", "outbox"]
        with pytest.raises(paramiko.SSHException):
            with door.client("alpha") as three:
                three.listdir("/")
        # the limit is per agency
        with door.client("beta") as other:
            assert other.listdir("/inbox") == [FLOW]
    # slots are given back when the connections end
    time.sleep(1.5)
    with door.client("alpha") as again:
        assert again.listdir("/") == ["inbox", "outbox"]


def test_channels_per_connection(door: Door) -> None:
    with door.transport("alpha") as transport:
        channels = [transport.open_session() for _ in range(SMALL.max_channels_per_connection)]
        with pytest.raises(paramiko.ChannelException):
            transport.open_session()
        for channel in channels:
            channel.close()


def test_an_idle_connection_is_closed_and_its_open_upload_discarded(door: Door) -> None:
    with door.transport("alpha") as transport:
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        f = sftp.open(f"/inbox/{FLOW}/stalled.csv.gpg", "wb")
        f.write(b"x" * 1000)
        f.flush()
        deadline = time.monotonic() + SMALL.idle_seconds + 5
        while transport.is_active() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not transport.is_active(), "an idle connection was kept"
    deadline = time.monotonic() + 5
    while not door.door.discarded and time.monotonic() < deadline:
        time.sleep(0.1)
    [(name, _, why)] = door.door.discarded
    assert name == "stalled.csv.gpg" and "connection ended" in why
    assert not door.door.received


def test_a_busy_connection_is_not_idle(door: Door, tmp_path: Path) -> None:
    with door.client("alpha") as sftp:
        for _ in range(4):
            sftp.listdir("/inbox")
            time.sleep(SMALL.idle_seconds * 0.6)
        assert sftp.listdir("/") == ["inbox", "outbox"]


def test_logins_must_come_quickly(door: Door) -> None:
    with socket.create_connection((HOST, door.port), timeout=10) as sock:
        sock.settimeout(15)
        assert sock.recv(64).startswith(b"SSH-2.0-")
        started = time.monotonic()
        while sock.recv(4096):
            pass
        # closed for want of a login (the banner exchange never came)
        assert time.monotonic() - started < SMALL.login_grace_seconds + 5


def test_connections_waiting_at_the_door_are_limited(door: Door) -> None:
    socks = [socket.create_connection((HOST, door.port), timeout=10)
             for _ in range(SMALL.max_unauthenticated_per_address)]
    try:
        for s in socks:
            s.settimeout(10)
            assert s.recv(8).startswith(b"SSH-")
        with socket.create_connection((HOST, door.port), timeout=10) as extra:
            extra.settimeout(10)
            assert extra.recv(8) == b"", "a connection over the limit got a banner"
    finally:
        for s in socks:
            s.close()


def test_a_ban_turns_an_address_away_for_a_while_and_doubles(door: Door) -> None:
    intruder = door.desks["beta"].ssh_key
    for _ in range(4):
        assert door.sftp("alpha", "ls /", key=intruder).returncode != 0
    deadline = time.monotonic() + 5
    while not door.door.bans and time.monotonic() < deadline:
        time.sleep(0.05)
    [(address, score, seconds, count)] = door.door.bans
    assert (address, score, seconds, count) == (HOST, 4, 2, 1)
    # even the right key is refused while the ban lasts
    assert door.sftp("alpha", "ls /").returncode != 0
    time.sleep(2.5)
    assert door.sftp("alpha", "ls /").returncode == 0
    failed = [e for e in door.door.events if e[0] == "login.failed"]
    assert len(failed) == 4, "a banned address's connections must not be recorded one by one"
    # the next ban of the same address lasts twice as long
    for _ in range(4):
        door.sftp("alpha", "ls /", key=intruder)
    deadline = time.monotonic() + 5
    while len(door.door.bans) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert door.door.bans[1][2:] == (4, 2)


def settle(door: Door) -> None:
    """Until the connections before have ended (the door lets only a few wait at once)."""
    deadline = time.monotonic() + 5
    while door.server.gate.connections and time.monotonic() < deadline:
        time.sleep(0.05)


def test_health_checks_do_not_count_scanners_do(door: Door) -> None:
    """Bare TCP connections (a load balancer's health check) score nothing; connections that
    speak SSH and never log in (a scanner, an old client) score one each."""
    for _ in range(10):
        with socket.create_connection((HOST, door.port), timeout=10) as sock:
            sock.settimeout(10)
            assert sock.recv(8) == b"SSH-2.0-"  # it reads the banner, and says nothing
        settle(door)
    assert door.sftp("alpha", "ls /", key=door.desks["beta"].ssh_key).returncode != 0
    settle(door)
    assert ("login.failed", "alpha", "1") in door.door.events
    time.sleep(0.5)
    assert not door.door.bans, "health checks were counted as failed logins"
    assert door.sftp("alpha", "ls /").returncode == 0
    for _ in range(3):
        # one at a time: the door lets only a few connections wait at once, and closes
        # any over that before a word is said (those would score nothing)
        settle(door)
        with socket.create_connection((HOST, door.port), timeout=10) as sock:
            sock.settimeout(10)
            assert sock.recv(8) == b"SSH-2.0-"
            sock.sendall(b"SSH-2.0-scanner\r\n")
            sock.recv(64)
    deadline = time.monotonic() + 5
    while not door.door.bans and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [b[:2] for b in door.door.bans] == [(HOST, 4)]
