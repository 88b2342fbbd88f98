"""Event hooks and each agency's front-door settings, as an administrator sets them up.

One daemon, configured in its ``config.yaml`` with:

- three hooks: a URL served by an HTTP server this test starts (its first answer is a
  500, so a retry shows), a URL where nothing listens (every try fails, bounded), and a
  command (a Python script writing what it got);
- the agreement ending in ten days (its reminder is the ``agreement.ending`` event);
- Kemensos allowed only from 198.51.100.0/24, with a quota of 256 KiB in its inbox and
  of two batches a day; BKN only from 127.0.0.0/8;
- the PROXY protocol on, trusting 127.0.0.9: a relay in this test connects from there
  and prepends a v1 or v2 header naming whatever client address the test wants.

Agencies work as in the README: gpg and OpenSSH ``sftp`` (directly, or to the relay's
port). Ten failed logins claimed from one address through the relay ban that address
alone, so the rest of the tests go on from 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from exchanged.home import Home, load_config
from exchanged.home.frontsettings import AgencySettings
from exchanged.sftp.limits import Limits
from exchanged.sftp.proxy import V2_SIGNATURE
from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.frontdoor import FLOW, front_door
from tests.integration.support import (
    AGREEMENT,
    HOST,
    Agency,
    Exchange,
    exchanged,
    free_port,
    lock,
    make_exchange,
)

PROXY = "127.0.0.9"
HOOK_SCRIPT = """\
import json, os, sys
body = sys.stdin.read()
env = {k: v for k, v in os.environ.items() if k.startswith(("EXCHANGED_", "HOOK_"))}
name = os.path.join(os.environ["HOOK_OUT"], os.environ["EXCHANGED_LEDGER_SEQ"] + ".json")
with open(name, "w") as f:
    json.dump({"stdin": json.loads(body), "env": env, "path": os.environ.get("PATH")}, f)
"""


class Receiver:
    """An HTTP server that records every POST; its first answer is a 500."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.failed_once = False
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with owner.lock:
                    first = not owner.failed_once
                    owner.failed_once = True
                    if not first:
                        owner.posts.append((dict(self.headers), json.loads(body)))
                self.send_response(500 if first else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, event: str) -> list[dict[str, Any]]:
        with self.lock:
            return [doc for _, doc in self.posts if doc["event"] == event]

    def wait(self, event: str, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(event)
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"no {event} POSTed; got {[d['event'] for _, d in self.posts]}")


def v1(address: str, port: int = 40001) -> bytes:
    family = "TCP6" if ":" in address else "TCP4"
    dest = "::1" if ":" in address else HOST
    return f"PROXY {family} {address} {dest} {port} 2222\r\n".encode()


def v2(address: str, port: int = 40002) -> bytes:
    src = ipaddress.ip_address(address)
    dst = ipaddress.ip_address("::1" if src.version == 6 else HOST)
    family = 0x21 if src.version == 6 else 0x11
    body = src.packed + dst.packed + port.to_bytes(2, "big") + (2222).to_bytes(2, "big")
    return V2_SIGNATURE + bytes([0x21, family]) + len(body).to_bytes(2, "big") + body


class Relay:
    """A load balancer in miniature: connects from PROXY, sends ``header``, then relays."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.header = b""
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client, self.header), daemon=True).start()

    def _relay(self, client: socket.socket, header: bytes) -> None:
        upstream = socket.create_connection((HOST, self.target), timeout=30,
                                            source_address=(PROXY, 0))
        upstream.sendall(header)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.sock.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Setup:
    def __init__(self, ex: Exchange, receiver: Receiver, relay: Relay, out: Path,
                 desks: dict[str, AgencyDesk]) -> None:
        self.ex = ex
        self.receiver = receiver
        self.relay = relay
        self.out = out
        self.kemensos = Agency(desks["kemensos"], ex)
        self.bkn = Agency(desks["bkn"], ex)
        self.desks = desks

    def via_relay(self, agency: str, header: bytes, *commands: str, key: Path | None = None
                  ) -> int:
        self.relay.header = header
        return self.desks[agency].sftp(HOST, self.relay.port, list(commands), check=False,
                                       key=key).returncode


def config_text(receiver: Receiver, dead: int, script: Path, out: Path) -> str:
    return f"""
hooks:
  - name: ops
    events: [batch.answered, batch.rejected, ban, intake.stopped, intake.resumed,
             agreement.ending]
    url: "http://{HOST}:{receiver.port}/exchanged"
    timeout_seconds: 5
  - name: nowhere
    events: [batch.rejected]
    url: "http://{HOST}:{dead}/gone"
    timeout_seconds: 2
  - name: script
    events: [batch.answered, agreement.ending]
    command: ["{sys.executable}", "{script}"]
    env: {{HOOK_OUT: "{out}"}}
    timeout_seconds: 30
hook_retry_delays: [0.5, 0.5]
agency_settings:
  kemensos:
    allow_from: ["198.51.100.0/24"]
    quota_bytes: 262144
    period_files: 2
  bkn:
    allow_from: ["127.0.0.0/8"]
proxy_protocol: true
proxy_trusted: ["{PROXY}/32"]
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
          ) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("hooks")
    ex = make_exchange(root / "ex", desks, extend=False)
    until = (datetime.now(UTC).astimezone(load_config(Home(ex.home)).zone).date()
             + timedelta(days=10))
    exchanged("policy", "extend", "--home", str(ex.home), AGREEMENT, "--until",
              until.isoformat(), "--reference", "EXAMPLE ONLY", "--example")
    receiver = Receiver()
    out = root / "hook-out"
    out.mkdir()
    script = root / "hook.py"
    script.write_text(HOOK_SCRIPT)
    with (ex.home / "config.yaml").open("a") as f:
        f.write(config_text(receiver, free_port(), script, out))
    ex.start()
    relay = Relay(ex.port)
    host_key = (ex.home / "keys" / "ssh_host_ed25519_key.pub").read_text().split()
    for desk in desks.values():
        with desk.known_hosts.open("a") as f:
            f.write(f"[{HOST}]:{relay.port} {host_key[0]} {host_key[1]}\n")
    yield Setup(ex, receiver, relay, out, desks)
    relay.close()
    receiver.server.shutdown()
    if ex.alive():
        ex.stop()
    stop_gpg_agent(ex.home / "keys" / "gnupg")


def wait_ledger(ex: Exchange, *filters: str, count: int = 1, timeout: float = 30
                ) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = ex.ledger(*filters)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


NIK_LIKE = re.compile(r"\b\d{16}\b|\b\d{18}\b")


def test_hooks_tell_of_answers_rejections_and_the_agreement_ending(setup: Setup,
                                                                   work: Path) -> None:
    ex, receiver = setup.ex, setup.receiver
    register = synth.SyntheticRegister(40, seed=15)
    plain = work / "register.csv"
    synth.write_register_csv(str(plain), register)
    setup.bkn.submit("asn-register", setup.bkn.seal(plain, "reg-hook.csv.gpg"))
    setup.bkn.outcome("asn-register", "reg-hook.result.csv.gpg")
    bad = work / "not-openpgp.csv.gpg"
    bad.write_bytes(os.urandom(2048))
    setup.bkn.submit("asn-register", bad)
    setup.bkn.outcome("asn-register", "not-openpgp.rejected.json.gpg")

    ending = receiver.wait("agreement.ending")[0]
    assert ending["agreement"] == AGREEMENT and ending["clause"] == "Pasal 6 ayat (2)"
    answered = next(d for d in receiver.wait("batch.answered") if d["batch"] == "reg-hook")
    assert answered["agency"] == "bkn" and answered["flow"] == "asn-register"
    assert answered["outcome"] == "result" and answered["rows"] == 40 and answered["uid"]
    rejected = next(d for d in receiver.wait("batch.rejected") if d["batch"] == "not-openpgp")
    assert rejected["outcome"] == "rejected" and rejected["reasons"]
    # what a receiver may rely on: an id to drop a second delivery by, the event in a header
    headers = next(h for h, d in receiver.posts if d is answered)
    assert headers["Idempotency-Key"] == answered["id"]
    assert headers["X-Exchanged-Event"] == "batch.answered"
    assert headers["Content-Type"] == "application/json"
    # no personal data: nothing in any document looks like a NIK or NIP
    assert not NIK_LIKE.search(json.dumps([d for _, d in receiver.posts]))

    delivered = wait_ledger(ex, "--kind", "hook.delivered", count=3)
    ops = [e for e in delivered if e["data"]["hook"] == "ops"]
    # the receiver's first answer was a 500: delivered at the second try
    assert ops[0]["data"]["attempts"] == 2 and ops[0]["data"]["status"] == "HTTP 204"
    assert all(e["data"]["target"] == "url" for e in ops)

    # the command hook: the document on its standard input, the fields as variables
    deadline = time.monotonic() + 30
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        got = [json.loads(p.read_text()) for p in setup.out.glob("*.json")]
        if any(g["env"].get("EXCHANGED_BATCH") == "reg-hook" for g in got):
            break
        time.sleep(0.3)
    reg = next(g for g in got if g["env"].get("EXCHANGED_BATCH") == "reg-hook")
    assert reg["env"]["EXCHANGED_EVENT"] == "batch.answered"
    assert reg["env"]["EXCHANGED_AGENCY"] == "bkn" and reg["env"]["HOOK_OUT"]
    assert reg["env"]["EXCHANGED_HOOK"] == "script"
    assert reg["stdin"]["uid"] == answered["uid"] and reg["stdin"]["counts"]
    assert reg["path"] and "/usr/bin" in reg["path"]
    assert any(g["env"]["EXCHANGED_EVENT"] == "agreement.ending" for g in got)
    assert not any(g["env"]["EXCHANGED_EVENT"] == "batch.rejected" for g in got)

    # nothing listens for 'nowhere': three tries, then hook.failed, and intake went on
    failed = wait_ledger(ex, "--kind", "hook.failed")
    assert failed and failed[0]["data"]["hook"] == "nowhere"
    assert failed[0]["data"]["attempts"] == 3 and failed[0]["batch"] == "not-openpgp"
    assert failed[0]["data"]["event_seq"] == rejected["ledger_seq"]
    ex.verify()


def test_an_agency_logs_in_only_from_its_networks(setup: Setup) -> None:
    ex = setup.ex
    # Kemensos from 127.0.0.1 (directly): outside 198.51.100.0/24
    assert setup.kemensos.sftp("ls /", check=False).returncode != 0
    refused = wait_ledger(ex, "--kind", "login.refused", "--agency", "kemensos")
    assert refused and refused[0]["data"]["why"] == "network"
    assert str(refused[0]["data"]["remote"]).startswith(f"{HOST}:")
    # through the load balancer, from inside its network: in (v1 and v2 headers)
    assert setup.via_relay("kemensos", v1("198.51.100.7"), "ls /inbox") == 0
    assert setup.via_relay("kemensos", v2("198.51.100.8", 41234), "ls /inbox") == 0
    # each session is on record as it ends (session.ended), under the address the header named
    deadline = time.monotonic() + 15
    while True:
        ok = [str(e["data"]["remote"]) for e in ex.ledger("--kind", "session.ended",
                                                           "--agency", "kemensos")]
        if ("198.51.100.7:40001" in ok and "198.51.100.8:41234" in ok) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "198.51.100.7:40001" in ok and "198.51.100.8:41234" in ok
    # ... and from outside it, even through the load balancer: out, on record, scored
    assert setup.via_relay("kemensos", v2("203.0.113.9"), "ls /") != 0
    refused = wait_ledger(ex, "--kind", "login.refused", "--agency", "kemensos", count=2)
    assert str(refused[-1]["data"]["remote"]).startswith("203.0.113.9:")
    failed = wait_ledger(ex, "--kind", "login.failed", "--agency", "kemensos", count=2)
    assert any(str(e["data"]["remote"]).startswith("203.0.113.9:") for e in failed)
    # BKN's own list holds 127.0.0.1
    assert setup.bkn.sftp("ls /", check=False).returncode == 0


def test_a_proxy_header_from_anyone_else_is_refused(setup: Setup) -> None:
    with socket.create_connection((HOST, setup.ex.port), timeout=10) as sock:
        sock.sendall(v1("198.51.100.7"))
        sock.settimeout(10)
        try:
            answer = sock.recv(64)
        except ConnectionResetError:  # closed with the header unread: a reset
            answer = b""
        assert answer == b"", "the server answered a forged PROXY header"
    refused = wait_ledger(setup.ex, "--kind", "login.refused")
    assert any(e["data"]["why"] == "proxy-header" and e["agency"] is None for e in refused)
    # a trusted proxy's connection without a header is refused too (its client is unknown)
    assert setup.via_relay("bkn", b"", "ls /") != 0


def test_an_agency_s_own_quotas(setup: Setup, work: Path) -> None:
    """Kemensos: 256 KiB in its inbox at once, two batches a day (through the relay)."""
    big = work / "big.csv.gpg"
    big.write_bytes(os.urandom(400 * 1024))
    header = v1("198.51.100.7")
    assert setup.via_relay("kemensos", header,
                           f'put "{big}" /inbox/kpm-verification/big.csv.gpg') != 0
    small = work / "small.csv.gpg"
    small.write_bytes(os.urandom(1024))
    for name in ("q1", "q2"):
        assert setup.via_relay("kemensos", header,
                               f'put "{small}" /inbox/kpm-verification/{name}.csv.gpg') == 0
    assert setup.via_relay("kemensos", header,
                           f'put "{small}" /inbox/kpm-verification/q3.csv.gpg') != 0
    received = setup.ex.ledger("--kind", "batch.received", "--agency", "kemensos")
    assert sorted(str(e["batch"]) for e in received) == ["q1", "q2"]
    interrupted = setup.ex.ledger("--kind", "upload.interrupted", "--agency", "kemensos")
    assert interrupted, "the upload over the quota left no record"
    # BKN has no such quotas
    assert setup.bkn.sftp(f'put "{small}" /inbox/asn-register/bkn-q3.csv.gpg',
                          check=False).returncode == 0


def test_the_defender_bans_the_real_client_behind_the_proxy(setup: Setup) -> None:
    intruder = setup.desks["intruder"].ssh_key
    header = v2("192.0.2.66")
    for _ in range(10):
        assert setup.via_relay("kemensos", header, "ls /", key=intruder) != 0
    bans = wait_ledger(setup.ex, "--kind", "login.banned")
    assert [b["data"]["address"] for b in bans] == ["192.0.2.66"]
    ban = setup.receiver.wait("ban")[0]
    assert ban["address"] == "192.0.2.66" and ban["seconds"] >= 900
    # the banned client is turned away even with the right key; everyone else is not
    assert setup.via_relay("kemensos", header, "ls /") != 0
    assert setup.via_relay("kemensos", v1("198.51.100.7"), "ls /") == 0
    assert setup.bkn.sftp("ls /", check=False).returncode == 0


def test_intake_stopped_and_resumed_reach_the_hooks(setup: Setup) -> None:
    ex = setup.ex
    files = [ex.home / "ledger.db", ex.home / "ledger.db-wal"]
    lock(files, True)
    try:
        # a login the ledger cannot record: intake stops (fail closed)
        assert setup.bkn.sftp("ls /", check=False).returncode != 0
    finally:
        lock(files, False)
    stopped = setup.receiver.wait("intake.stopped", timeout=40)[0]
    assert stopped["since"] and stopped["why"]
    resumed = setup.receiver.wait("intake.resumed", timeout=40)[0]
    assert resumed["since"] == stopped["since"]
    assert resumed["ledger_seq"] > stopped["ledger_seq"]
    ex.verify()


# -- the front door alone (in-process, real sftp): a quota of bytes per period ----------------

def test_a_period_quota_of_bytes_fails_at_the_write_that_passes_it(tmp_path: Path) -> None:
    limits = Limits(agencies={"alpha": AgencySettings(period_bytes=100_000, period_hours=1)})
    with front_door(tmp_path, limits, sent=(60_000, 1)) as door:
        big = tmp_path / "big.csv.gpg"
        big.write_bytes(os.urandom(50_000))
        assert door.sftp("alpha", f'put "{big}" /inbox/{FLOW}/big.csv.gpg').returncode != 0
        [(name, size, why)] = door.door.discarded
        assert name == "big.csv.gpg" and size <= 40_000 and "period" in why
        small = tmp_path / "small.csv.gpg"
        small.write_bytes(os.urandom(30_000))
        assert door.sftp("alpha", f'put "{small}" /inbox/{FLOW}/small.csv.gpg').returncode == 0
        # beta has no period quota
        assert door.sftp("beta", f'put "{big}" /inbox/{FLOW}/big.csv.gpg').returncode == 0
        # what alpha sent cannot be counted: nothing more is taken from it (fail closed)
        door.door.sent = None
        assert door.sftp("alpha", f'put "{small}" /inbox/{FLOW}/again.csv.gpg').returncode != 0
        assert door.sftp("beta", f'put "{small}" /inbox/{FLOW}/again.csv.gpg').returncode == 0
