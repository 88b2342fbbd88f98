"""The defender: scores failed logins per address and bans an address for a while.

Keys only, no passwords: a stranger cannot guess his way in. But every
connection costs a thread, a handshake and a ledger entry, and a flood of
them hides real events. So each connection that ends without a login scores
points against its address: one per failed attempt, at most three per
connection, and one for a connection that spoke SSH but never tried (a
scanner, a client with no algorithm in common), or that held its connection
without a word of SSH until the handshake's deadline (``handshake_seconds``:
a connection kept silent to fill the door). A connection that closes by
itself without a word (a load balancer's health check) scores nothing: it
costs next to nothing. Addresses in the safelist (``sftp_safelist``: the
exchange's own monitoring, a load balancer) are never scored nor banned.
(The server does not score a connection that merely ran out of time from an
address an agency logged in from: that is the exchange's load, not an attack.)
An address that scores
``ban_threshold`` points within ``ban_window_seconds`` is banned for
``ban_seconds``, and twice as long at each later ban (up to ``ban_max_seconds``);
points older than the window no longer count, so an agency that mistypes a key
path now and then is never banned. A banned address's connections are closed
before the SSH handshake, costing almost nothing and recording nothing (the ban
itself is recorded once).

IPv6 addresses are scored by their /64 network, since whoever has one
address of a /64 usually has all of them. The table of addresses is bounded
(``max_tracked_addresses``): when it is full, addresses with the fewest
points are forgotten first, never one under a ban.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from exchanged.sftp.limits import Limits, Safelist, address_key

__all__ = ["Ban", "Defender", "address_key"]

#: points a connection scores at most, however many keys it tried
MAX_POINTS_PER_CONNECTION = 3


@dataclass(frozen=True)
class Ban:
    """A ban just imposed on an address (its key: the address, or an IPv6 /64)."""

    address: str
    #: the points that brought it about, within the window
    score: int
    seconds: int
    #: the how-manieth ban of this address this is (1 for the first)
    count: int


@dataclass
class _Record:
    #: (when, points) of recent failures, oldest first; never more than the threshold's worth
    failures: deque[tuple[float, int]] = field(default_factory=deque)
    banned_until: float = 0.0
    bans: int = 0


class Defender:
    """Failed-login scores and bans, per address; safe to call from any thread."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.safelist = Safelist(limits.safelist)
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}

    def banned_for(self, address: str) -> float:
        """Seconds the address is still banned (0.0 if it is not)."""
        if self.safelist.contains(address):
            return 0.0
        now = self._clock()
        with self._lock:
            record = self._records.get(address_key(address))
            if record is None or record.banned_until <= now:
                return 0.0
            return record.banned_until - now

    def score(self, address: str) -> int:
        """The address's points within the window."""
        now = self._clock()
        with self._lock:
            record = self._records.get(address_key(address))
            return 0 if record is None else self._points(record, now)

    def failed(self, address: str, attempts: int) -> Ban | None:
        """A connection from ``address`` ended without a login after ``attempts`` tries.

        Returns the ban this imposes, if it imposes one.
        """
        if self.safelist.contains(address):
            return None
        points = min(max(attempts, 1), MAX_POINTS_PER_CONNECTION)
        key = address_key(address)
        now = self._clock()
        with self._lock:
            record = self._records.get(key)
            if record is None:
                self._make_room(now)
                record = self._records[key] = _Record()
            if record.banned_until > now:
                # already banned (a connection that was open when the ban began)
                return None
            record.failures.append((now, points))
            score = self._points(record, now)
            if score < self.limits.ban_threshold:
                return None
            record.bans += 1
            seconds = min(self.limits.ban_seconds * 2 ** (record.bans - 1),
                          self.limits.ban_max_seconds)
            record.banned_until = now + seconds
            record.failures.clear()
            return Ban(key, score, int(math.ceil(seconds)), record.bans)

    def tracked(self) -> int:
        with self._lock:
            return len(self._records)

    def _points(self, record: _Record, now: float) -> int:
        """Drop the failures older than the window; the points of the rest."""
        horizon = now - self.limits.ban_window_seconds
        while record.failures and record.failures[0][0] <= horizon:
            record.failures.popleft()
        return sum(p for _, p in record.failures)

    def _make_room(self, now: float) -> None:
        """Keep the table bounded: drop what no longer matters, then the fewest points."""
        limit = self.limits.max_tracked_addresses
        if len(self._records) < limit:
            return
        # an address is worth remembering while it is banned, has points, or was banned
        # recently enough that its next ban would be longer
        memory = self.limits.ban_max_seconds
        for key in [k for k, r in self._records.items()
                    if r.banned_until <= now and not self._points(r, now)
                    and now - r.banned_until > memory]:
            del self._records[key]
        if len(self._records) < limit:
            return
        candidates = sorted((self._points(r, now), k) for k, r in self._records.items()
                            if r.banned_until <= now)
        for _, key in candidates[: max(1, len(self._records) - limit + 1)]:
            del self._records[key]
