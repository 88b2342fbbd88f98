"""The defender's arithmetic, on a clock the test turns: scores, the window, bans that double."""

from __future__ import annotations

from exchanged.sftp.defender import Defender, address_key
from exchanged.sftp.limits import Limits


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
