"""Settings of the hooks and of each agency's front door, PROXY headers, a command hook's
timeout (real sockets and a real child process; no fakes)."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from exchanged.daemon.hooks import HookWorker, Outcome, run_command
from exchanged.errors import ConfigError
from exchanged.home import Home, load_config
from exchanged.home.frontsettings import AgencySettings
from exchanged.home.hooksettings import HookSettings
from exchanged.ledger import Ledger, Query
from exchanged.sftp.proxy import (
    V2_SIGNATURE,
    NoHeader,
    ProxyError,
    read_header,
    sends_header,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "config.example.yaml"


def home_with(tmp_path: Path, text: str) -> Home:
    (tmp_path / "config.yaml").write_text(text)
    return Home(tmp_path)


def test_the_example_loads_with_every_commented_block_on(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    # the commented blocks of the example, switched on: "# key:" and "#   more"
    text = re.sub(r"^# (?=[a-z_]+:|  )", "", text, flags=re.M)
    config = load_config(home_with(tmp_path, text))
    assert [h.name for h in config.hooks] == ["ops", "ticket"]
    assert config.hooks[1].command[0] == "/usr/local/bin/exchanged-ticket"
    assert config.hooks[1].env["TICKET_PROJECT"] == "PDK"
    assert config.hook_retry_delays == (5.0, 30.0, 120.0, 600.0)
    kemensos = config.agency_settings["kemensos"]
    assert kemensos.period_files == 500 and kemensos.allows("10.20.3.4")
    assert not kemensos.allows("10.21.0.1") and not kemensos.allows("2001:db8::1")
    assert config.proxy_protocol and config.proxy_trusted


@pytest.mark.parametrize(("text", "says"), [
    ("hooks: [{name: a, events: [ban]}]", "either url or command"),
    ("hooks: [{name: a, events: [ban], url: 'ftp://x/'}]", "http:// or https://"),
    ("hooks: [{name: a, events: [nope], url: 'http://x/'}]", "events must list"),
    ("hooks: [{name: a, events: [ban], command: 'rm -rf /'}]", "no shell"),
    ("hooks: [{name: a, events: [ban], command: [sh, -c, x]}]", "absolute program"),
    ("hooks: [{name: a, events: [ban], url: 'http://x/'},"
     " {name: a, events: [ban], url: 'http://y/'}]", "a name of its own"),
    ("hooks: [{name: a, events: [ban], url: 'http://x/', timeout_seconds: 0}]", "1 to 300"),
    ("agency_settings: {kemensos: {allow_from: ['10.0.0.1/8']}}", "host bits"),
    ("agency_settings: {kemensos: {quota_bytes: 0}}", "from 1"),
    ("agency_settings: {kemensos: {speed: 1}}", "unknown setting 'speed'"),
    ("proxy_protocol: true", "proxy_trusted"),
    ("proxy_protocol: 1", "true or false"),
])
def test_bad_settings_are_refused_in_one_sentence(tmp_path: Path, text: str, says: str
                                                 ) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(home_with(tmp_path, text + "\n"))
    assert says in str(caught.value)


def test_an_agency_without_allow_from_logs_in_from_anywhere() -> None:
    assert AgencySettings().allows("203.0.113.1") and AgencySettings().allows("::1")


def pair_with(data: bytes) -> socket.socket:
    ours, theirs = socket.socketpair()
    theirs.sendall(data)
    theirs.close()
    return ours


def v2(family: int, body: bytes, command: int = 1) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, family]) + len(body).to_bytes(2, "big") + body


def test_proxy_headers_v1_and_v2() -> None:
    peer = "10.0.0.5"
    assert read_header(pair_with(b"PROXY TCP4 198.51.100.7 10.0.0.7 40001 2222\r\nSSH-"),
                       peer, 2) == ("198.51.100.7", 40001)
    assert read_header(pair_with(b"PROXY TCP6 2001:db8::7 2001:db8::1 5 2222\r\n"),
                       peer, 2) == ("2001:db8::7", 5)
    assert read_header(pair_with(b"PROXY UNKNOWN\r\n"), peer, 2) == (peer, 0)
    body4 = bytes([192, 0, 2, 9, 10, 0, 0, 7]) + (40002).to_bytes(2, "big") + b"\x08\xae"
    assert read_header(pair_with(v2(0x11, body4)), peer, 2) == ("192.0.2.9", 40002)
    body6 = bytes(15) + b"\x01" + bytes(16) + (7).to_bytes(2, "big") + b"\x08\xae"
    assert read_header(pair_with(v2(0x21, body6)), peer, 2) == ("::1", 7)
    # LOCAL: the proxy's own health check
    assert read_header(pair_with(v2(0x00, b"", command=0)), peer, 2) == (peer, 0)


@pytest.mark.parametrize("data", [
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"PROXY TCP4 198.51.100.7 10.0.0.7 40001\r\n",
    b"PROXY TCP4 2001:db8::7 10.0.0.7 1 2\r\n",
    b"PROXY TCP4 " + b"1" * 200 + b"\r\n",
    V2_SIGNATURE + b"\x31\x11\x00\x00",
    V2_SIGNATURE + b"\x21\x31\x00\x00",
    b"PROXY TCP4 198.51",  # cut off
])
def test_bad_proxy_headers_are_refused(data: bytes) -> None:
    with pytest.raises(ProxyError):
        read_header(pair_with(data), "10.0.0.5", 2)


def test_a_proxy_s_health_check_is_told_apart() -> None:
    with pytest.raises(NoHeader):
        read_header(pair_with(b""), "10.0.0.5", 2)


def test_a_header_from_elsewhere_is_seen_without_being_taken() -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
    assert sends_header(ours)
    assert ours.recv(6) == b"PROXY "
    ours, theirs = socket.socketpair()
    theirs.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
    assert not sends_header(ours)
    assert ours.recv(4) == b"SSH-"


def test_a_command_hook_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    hook = HookSettings("slow", ("ban",), command=(sys.executable, "-c",
                                                   "import time; time.sleep(30)"),
                        timeout_seconds=1)
    started = time.monotonic()
    outcome = run_command(hook, b"{}", {})
    assert not outcome.ok and outcome.status == "timeout after 1 s"
    assert time.monotonic() - started < 10


def test_a_command_hook_s_exit_status_decides(tmp_path: Path) -> None:
    ok = HookSettings("ok", ("ban",), command=(sys.executable, "-c",
                                               "import sys; sys.stdin.read()"))
    assert run_command(ok, b"{}", {}).status == "exit 0"
    bad = HookSettings("bad", ("ban",), command=(sys.executable, "-c", "raise SystemExit(3)"))
    assert run_command(bad, b"{}", {}).status == "exit 3"
    missing = HookSettings("missing", ("ban",), command=("/nonexistent/hook",))
    assert not run_command(missing, b"{}", {}).ok


# -- a hook's worker over a real ledger (the delivery is the test's own receiver) ------------

def hook_ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.create(exchange_name="test")
    return ledger


def answered(ledger: Ledger, batch: str, outcome: str = "result") -> int:
    with ledger.transaction() as txn:
        if outcome == "result":
            txn.append("batch.processed", agency="bkn", flow="asn-register", batch=batch,
                       uid=f"u-{batch}", rows=3, counts={"loaded": 3})
        else:
            txn.append("batch.rejected", agency="bkn", flow="asn-register", batch=batch,
                       uid=f"u-{batch}", codes=["NOT_OPENPGP"])
        return txn.append("batch.answered", agency="bkn", flow="asn-register", batch=batch,
                          uid=f"u-{batch}", outcome=outcome)


class Receiver:
    def __init__(self, fail: int = 0) -> None:
        self.got: list[dict[str, object]] = []
        self.fail = fail

    def __call__(self, hook: HookSettings, body: bytes, event: str, event_id: str,
                 env: dict[str, str]) -> Outcome:
        if self.fail:
            self.fail -= 1
            return Outcome(False, "HTTP 503")
        self.got.append(json.loads(body))
        return Outcome(True, "HTTP 204")


def run_until(worker: HookWorker, stop: threading.Event, done: Callable[[], bool]) -> None:
    worker.start()
    deadline = time.monotonic() + 10
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    worker.join(5)
    assert done()


def test_a_hook_delivers_in_order_and_resumes_after_its_last_delivery(tmp_path: Path) -> None:
    ledger = hook_ledger(tmp_path)
    answered(ledger, "before")  # before the hook existed: not delivered
    hook = HookSettings("ops", ("batch.answered", "batch.rejected"), url="http://x/")
    stop, receiver = threading.Event(), Receiver(fail=1)
    worker = HookWorker(hook, ledger, (0.1,), "test", stop, deliver=receiver)
    worker.prepare()
    first = answered(ledger, "one")
    answered(ledger, "two", "rejected")
    run_until(worker, stop, lambda: len(receiver.got) == 2)
    assert [(d["event"], d["batch"]) for d in receiver.got] == [
        ("batch.answered", "one"), ("batch.rejected", "two")]
    assert receiver.got[0]["counts"] == {"loaded": 3} and receiver.got[0]["uid"] == "u-one"
    assert receiver.got[1]["reasons"] == ["NOT_OPENPGP"]
    delivered = list(ledger.query(Query(kind="hook.delivered")))
    assert [e.data["event_seq"] for e in delivered] == [first, first + 2]
    assert delivered[0].data["attempts"] == 2  # the first try got a 503
    # a restart: the new worker resumes after 'two', and delivers only what came since
    answered(ledger, "three")
    stop, again = threading.Event(), Receiver()
    worker = HookWorker(hook, ledger, (0.1,), "test", stop, deliver=again)
    worker.prepare()
    run_until(worker, stop, lambda: len(again.got) == 1)
    time.sleep(0.2)
    assert [d["batch"] for d in again.got] == ["three"]


def test_a_hook_that_never_gets_through_is_recorded_failed_and_goes_on(tmp_path: Path) -> None:
    ledger = hook_ledger(tmp_path)
    hook = HookSettings("down", ("batch.answered",), url="http://x/")
    stop, receiver = threading.Event(), Receiver(fail=3)
    worker = HookWorker(hook, ledger, (0.05, 0.05), "test", stop, deliver=receiver)
    worker.prepare()
    lost = answered(ledger, "lost")
    answered(ledger, "next")
    run_until(worker, stop, lambda: len(receiver.got) == 1)
    failed = list(ledger.query(Query(kind="hook.failed")))
    assert [(e.data["event_seq"], e.data["attempts"], e.data["status"]) for e in failed] == [
        (lost, 3, "HTTP 503")]
    assert receiver.got[0]["batch"] == "next"
    assert ledger.verify().ok


def test_a_command_hook_ends_when_the_daemon_stops() -> None:
    hook = HookSettings("slow", ("ban",), command=(sys.executable, "-c",
                                                   "import time; time.sleep(30)"),
                        timeout_seconds=60)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    outcome = run_command(hook, b"{}", {}, stop)
    assert outcome.status == "stopped with the daemon" and time.monotonic() - started < 5
