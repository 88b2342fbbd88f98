"""The defender's arithmetic, on a clock the test turns: scores, the window, bans that double."""

from __future__ import annotations

from exchanged.sftp.defender import Defender, address_key
from exchanged.sftp.limits import Gate, Limits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def defender(**limits: object) -> tuple[Defender, Clock]:
    clock = Clock()
    return Defender(Limits(**limits), clock), clock  # type: ignore[arg-type]


def test_ten_failures_within_the_window_ban_for_fifteen_minutes() -> None:
    d, clock = defender()
    for _ in range(9):
        assert d.failed("192.0.2.1", 1) is None
        clock.now += 30
    ban = d.failed("192.0.2.1", 1)
    assert ban is not None and (ban.address, ban.score, ban.seconds, ban.count) == (
        "192.0.2.1", 10, 900, 1)
    assert d.banned_for("192.0.2.1") == 900
    assert d.banned_for("192.0.2.2") == 0
    clock.now += 899
    assert d.banned_for("192.0.2.1") == 1
    clock.now += 1
    assert d.banned_for("192.0.2.1") == 0
    # a ban starts a new count
    assert d.score("192.0.2.1") == 0


def test_mistakes_spread_over_time_are_forgiven() -> None:
    d, clock = defender()
    for _ in range(100):
        assert d.failed("192.0.2.1", 1) is None
        clock.now += 70  # at most nine fall within any ten minutes
    assert d.banned_for("192.0.2.1") == 0


def test_a_connection_scores_at_most_three() -> None:
    d, _ = defender()
    for _ in range(3):
        assert d.failed("192.0.2.1", 50) is None
    assert d.score("192.0.2.1") == 9
    assert d.failed("192.0.2.1", 0) is not None  # a connection that never tried scores one


def test_later_bans_double_up_to_a_day() -> None:
    d, clock = defender(ban_threshold=1)
    seconds = []
    for _ in range(10):
        ban = d.failed("192.0.2.1", 1)
        assert ban is not None
        seconds.append(ban.seconds)
        # while banned, further failures (connections already open) change nothing
        assert d.failed("192.0.2.1", 3) is None
        clock.now += ban.seconds
    assert seconds == [900, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 86400, 86400]


def test_ipv6_is_scored_by_its_64() -> None:
    d, _ = defender(ban_threshold=3)
    d.failed("2001:db8:1:2::1", 1)
    d.failed("2001:db8:1:2::ffff", 1)
    ban = d.failed("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 1)
    assert ban is not None and ban.address == "2001:db8:1:2::/64"
    assert d.banned_for("2001:db8:1:2::42") > 0
    assert d.banned_for("2001:db8:1:3::42") == 0
    assert address_key("::ffff:10.1.2.3") == "10.1.2.3"
    assert address_key("not an address") == "not an address"


def test_the_table_is_bounded_and_never_forgets_a_ban() -> None:
    d, _ = defender(max_tracked_addresses=100, ban_threshold=2)
    d.failed("198.51.100.1", 1)
    assert d.failed("198.51.100.1", 1) is not None
    for i in range(1000):
        d.failed(f"10.0.{i // 250}.{i % 250}", 1)
    assert d.tracked() <= 100
    assert d.banned_for("198.51.100.1") > 0


def test_the_safelist_is_never_scored_nor_banned() -> None:
    d, _ = defender(safelist=("10.20.0.0/16", "2001:db8::/48"), ban_threshold=2)
    for _ in range(10):
        assert d.failed("10.20.3.4", 3) is None
        assert d.failed("2001:db8:0:1::7", 3) is None
    assert d.banned_for("10.20.3.4") == 0 and d.score("10.20.3.4") == 0
    assert d.failed("10.21.0.1", 3) is not None  # just outside: banned at once


def test_strangers_cannot_take_the_reserved_connections() -> None:
    """64 connections, 16 kept for trusted addresses: strangers get 48, an address an agency
    logged in from (or a safelisted one) gets the rest."""
    gate = Gate(Limits(max_unauthenticated_per_address=8, safelist=("192.0.2.0/24",)))
    admitted = sum(gate.admit(f"198.51.100.{i}") for i in range(8) for _ in range(8))
    assert admitted == 48
    assert not gate.admit("203.0.113.9")
    gate.trust("203.0.113.9")
    assert gate.admit("203.0.113.9")
    assert gate.admit("192.0.2.77")  # safelisted
    assert gate.connections == 50


def test_waiting_connections_are_limited_per_ipv6_network() -> None:
    gate = Gate(Limits(max_unauthenticated_per_address=2, max_unauthenticated_per_network=3))
    assert [gate.admit(f"2001:db8:1:2::{i}") for i in (1, 1, 1, 2, 3)] == [
        True, True, False, True, False]
    assert gate.admit("2001:db8:1:3::1")  # another /64
    gate.authenticated("2001:db8:1:2::1")
    assert gate.admit("2001:db8:1:2::9")
