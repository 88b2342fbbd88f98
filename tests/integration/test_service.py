"""The daemon as an administrator and a WinSCP user meet it: reloads, temporary names, restarts."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.integration.support import AGREEMENT, HOST, Agency, Exchange, exchanged, write_csv


def wait_ledger(exchange: Exchange, *filters: str, count: int = 1, timeout: float = 15
                ) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        entries = exchange.ledger(*filters)
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.2)


def test_sighup_reloads_and_a_broken_policy_keeps_the_old_one(exchange: Exchange) -> None:
    assert exchange.proc is not None
    exchanged("policy", "extend", "--home", str(exchange.home), AGREEMENT, "--until",
              "2100-01-01", "--reference", "EXAMPLE ONLY - reload test")
    exchange.proc.send_signal(signal.SIGHUP)
    reloaded = wait_ledger(exchange, "--kind", "policy.reloaded")
    assert reloaded
    broken = exchange.home / "policies" / "zz-broken.yaml"
    broken.write_text("format: exchanged/agreement-v1\nagreement: {id: x}\n")
    try:
        exchange.proc.send_signal(signal.SIGHUP)
        failed = wait_ledger(exchange, "--kind", "policy.reload_failed")
        assert failed and "zz-broken.yaml" in str(failed[-1]["data"])
        assert failed[-1]["data"]["policy_sha256"] == reloaded[-1]["data"]["policy_sha256"]  # type: ignore[index]
        assert exchange.alive()
    finally:
        broken.unlink()
        exchange.proc.send_signal(signal.SIGHUP)
        wait_ledger(exchange, "--kind", "policy.reloaded", count=2)


def test_upload_under_a_temporary_name_then_rename(exchange: Exchange, kemensos: Agency,
                                                   work: Path) -> None:
    """WinSCP's default: upload to NAME.filepart, then rename to NAME."""
    sealed = kemensos.seal(write_csv(work / "b.csv", "nik\n3171014101900001\n"),
                           "winscp.csv.gpg")
    kemensos.sftp(f'put "{sealed}" /inbox/kpm-verification/winscp.csv.gpg.filepart')
    listing = kemensos.desk.listing(HOST, exchange.port, "/inbox/kpm-verification")
    assert listing == ["winscp.csv.gpg.filepart"]
    assert not exchange.ledger("--batch", "winscp")
    kemensos.sftp("rename /inbox/kpm-verification/winscp.csv.gpg.filepart "
                  "/inbox/kpm-verification/winscp.csv.gpg")
    assert kemensos.rejection("kpm-verification", "winscp")["batch"] == "winscp"
    assert kemensos.desk.listing(HOST, exchange.port, "/inbox/kpm-verification") == []


def test_stat_and_setstat_right_after_upload_succeed(exchange: Exchange, kemensos: Agency,
                                                     work: Path) -> None:
    """Clients that preserve times (sftp -p, WinSCP) set them right after closing."""
    sealed = kemensos.seal(write_csv(work / "b.csv", "nik\n3171014101900001\n"),
                           "keep-times.csv.gpg")
    kemensos.sftp(f'put -p "{sealed}" /inbox/kpm-verification/keep-times.csv.gpg')
    kemensos.rejection("kpm-verification", "keep-times")


def sessions_with(exchange: Exchange, batch: str, timeout: float = 10
                  ) -> list[dict[str, object]]:
    """The outcomes of ``batch`` that session.ended entries list (a session is recorded
    when it ends, a moment after the client left)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [o for e in exchange.ledger("--kind", "session.ended", "--agency", "kemensos")
                 for o in e["data"]["outcomes"]  # type: ignore[index]
                 if o["batch"] == batch]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_downloads_and_removals_are_recorded(exchange: Exchange, kemensos: Agency,
                                             work: Path) -> None:
    sealed = kemensos.seal(write_csv(work / "b.csv", "nik\n3171014101900001\n"),
                           "fetched.csv.gpg")
    kemensos.submit("kpm-verification", sealed)
    kemensos.rejection("kpm-verification", "fetched")
    downloaded = sessions_with(exchange, "fetched")
    assert downloaded and downloaded[0]["downloads"] == 1 and "name_hmac" in downloaded[0]
    kemensos.sftp("rm /outbox/kpm-verification/fetched.rejected.json.gpg")
    assert exchange.ledger("--batch", "fetched", "--kind", "outcome.removed")
    assert any(o["removed"] for o in sessions_with(exchange, "fetched"))
    assert "fetched.rejected.json.gpg" not in kemensos.desk.listing(
        HOST, exchange.port, "/outbox/kpm-verification")


def test_clean_stop_and_start_are_recorded(exchange: Exchange) -> None:
    assert exchange.stop() == 0
    exchange.start()
    kinds = [e["kind"] for e in exchange.ledger("--kind", "exchange.")]
    assert kinds[-2:] == ["exchange.stopped", "exchange.started"]
    exchange.verify()


def test_a_second_daemon_on_the_same_home_is_refused_and_harms_nothing(exchange: Exchange) -> None:
    before = exchange.ledger()
    r = exchanged("run", "--home", str(exchange.home), check=False)
    assert r.returncode == 2
    assert "already running" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert exchange.ledger() == before
    assert exchange.alive()


def test_every_login_is_recorded_even_a_short_one(exchange: Exchange, kemensos: Agency) -> None:
    before = len(exchange.ledger("--kind", "session.ended", "--agency", "kemensos"))
    kemensos.sftp("ls /")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ended = exchange.ledger("--kind", "session.ended", "--agency", "kemensos")
        if len(ended) > before:
            assert ended[-1]["data"]["ended_by"] == "client"  # type: ignore[index]
            return
        time.sleep(0.2)
    raise AssertionError("a short SFTP session left no session.ended entry")
