"""Failed logins on record without letting a stranger flood the ledger.

Every connection that ends without a login used to be one fsynced entry, and
an entry never goes away: a botnet could grow the ledger without end. Now
each address (an IPv4 address, an IPv6 /64) gets at most :data:`BURST`
``login.failed`` entries a minute written at once, and the exchange at most
:data:`GLOBAL_PER_MINUTE`; the rest are counted, and written as one
aggregated ``login.failed`` per address (``connections``, ``attempts``, the
distinct user names tried, as keyed hashes) once its minute is over, or
just before the ban their failures bring about. Beyond the exchange's budget,
failures of every address are counted together into one entry a minute
(``addresses``: how many). Counts not yet written live only in memory: a
daemon that stops cleanly writes them; one that is killed loses at most a
minute of failed logins (never a login, a download or a batch).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from exchanged.ledger.store import Ledger

#: entries an address may have written at once per minute; the rest are aggregated
BURST = 3
#: entries written at once per minute for all addresses together
GLOBAL_PER_MINUTE = 60
WINDOW = 60.0
#: distinct user names (keyed hashes) and agencies one aggregated entry lists at most
MAX_NAMES = 10


@dataclass
class _Pending:
    started: float
    written: int = 0
    connections: int = 0
    attempts: int = 0
    agencies: set[str] = field(default_factory=set)
    user_hmacs: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)


class FailedLogins:
    """Writes ``login.failed`` within its budgets; safe from any thread."""

    def __init__(self, ledger: Ledger, clock: Callable[[], float] = time.monotonic) -> None:
        self.ledger = ledger
        self._clock = clock
        self._lock = threading.Lock()
        self._by_address: dict[str, _Pending] = {}
        self._overflow: _Pending | None = None
        self._global_start = 0.0
        self._global_written = 0

    def failed(self, address: str, remote: str, attempts: int, agency: str | None,
               user_hmac: str | None) -> None:
        """A connection from ``address`` (its scoring key) ended without a login."""
        now = self._clock()
        with self._lock:
            self._flush_due(now)
            pending = self._by_address.get(address)
            if pending is None:
                pending = self._by_address[address] = _Pending(now)
            if now - self._global_start >= WINDOW:
                self._global_start, self._global_written = now, 0
            if pending.written < BURST and self._global_written < GLOBAL_PER_MINUTE:
                pending.written += 1
                self._global_written += 1
                fields: dict[str, object] = {"remote": remote, "attempts": attempts,
                                             "connections": 1, "known_user": agency is not None}
                if user_hmac is not None:
                    fields["user_hmac"] = user_hmac
                self.ledger.append("login.failed", agency=agency, actor="unknown", **fields)
                return
            if pending.written < BURST:
                # over the exchange's budget: counted with every other address's
                if self._overflow is None:
                    self._overflow = _Pending(now)
                pending = self._overflow
            pending.addresses.add(address)
            pending.connections += 1
            pending.attempts += attempts
            if agency is not None and len(pending.agencies) < MAX_NAMES:
                pending.agencies.add(agency)
            if user_hmac is not None and len(pending.user_hmacs) < MAX_NAMES:
                pending.user_hmacs.add(user_hmac)

    def flush(self, address: str | None = None, *, everything: bool = False) -> None:
        """Write what is due (``everything``: all that is counted; ``address``: that
        address's counts now, before its ban is recorded)."""
        now = self._clock()
        with self._lock:
            if address is not None and address in self._by_address:
                self._write(address, self._by_address[address])
                self._by_address[address] = _Pending(now, written=BURST)
            self._flush_due(now, everything)

    def _flush_due(self, now: float, everything: bool = False) -> None:
        for address, pending in list(self._by_address.items()):
            if everything or now - pending.started >= WINDOW:
                self._write(address, pending)
                del self._by_address[address]
        if self._overflow is not None and (everything or now - self._overflow.started >= WINDOW):
            self._write(None, self._overflow)
            self._overflow = None

    def _write(self, address: str | None, pending: _Pending) -> None:
        if not pending.connections:
            return
        fields: dict[str, object] = {
            "connections": pending.connections, "attempts": pending.attempts,
            "aggregated": True, "known_user": bool(pending.agencies),
            "agencies": sorted(pending.agencies), "user_hmacs": sorted(pending.user_hmacs),
        }
        if address is None:
            fields["addresses"] = len(pending.addresses)
        else:
            fields["remote"] = address
        pending.connections = 0
        self.ledger.append("login.failed", actor="unknown", **fields)
