"""How much the front door lets anyone take: connections, sessions, idle time, inbox quotas.

Every limit here bounds something an agency or a stranger could otherwise
grow without end (threads, file descriptors, disk), so that one hostile or
broken client cannot starve the others. :class:`Limits` holds the numbers;
:class:`Gate` is the one object, shared by all connections of a server, that
counts against them.

What counts towards an agency's inbox quota: the uploads it is writing now,
the uploads it holds under a temporary name in its ``/inbox/<flow>/``, and
the batches it handed over that have not been answered yet (the Door says
how many). A write that would take the agency over its byte quota fails at
that write, so the exchange never stores a byte beyond it. An agency may have
quotas of its own (``agency_settings``), and quotas of what it sends within a
rolling period (the Door counts what it received; see ``sftp/folders.py``).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exchanged.home.frontsettings import AgencySettings

GiB = 1024**3


@dataclass(frozen=True)
class Limits:
    """The front door's limits (see ``docs/security.md``)."""

    #: connections at once, from everyone
    max_connections: int = 64
    #: ... of which this many are kept for trusted addresses (the safelist, and addresses an
    #: agency logged in from before): strangers holding connections cannot fill the door
    reserved_connections: int = 16
    #: connections from one address that have not logged in yet
    max_unauthenticated_per_address: int = 8
    #: ... and from one network (an IPv6 /64; an IPv4 address is its own network)
    max_unauthenticated_per_network: int = 32
    #: a connection from an address that is not trusted must send its SSH banner and finish
    #: the key exchange within this time (a trusted one: login_grace_seconds); one that stays
    #: silent that long scores a point with the defender
    handshake_seconds: float = 10.0
    #: logged-in connections of one agency at once
    max_sessions_per_agency: int = 8
    #: channels one connection may open over its life (an SFTP client needs one)
    max_channels_per_connection: int = 4
    #: a connection must complete its login within this time
    login_grace_seconds: float = 20.0
    #: a logged-in connection with no SFTP request for this long is closed
    idle_seconds: float = 600.0
    #: bytes an agency may have in its inbox: being written, held, or waiting for an answer
    quota_bytes: int = 64 * GiB
    #: files an agency may have in its inbox, counted the same way
    quota_files: int = 1000
    #: an address that scores this many points within ``ban_window_seconds`` is banned: a
    #: failed login attempt scores 1 (at most 3 per connection), a connection that spoke SSH
    #: but never tried to log in (a scanner, an old client) scores 1
    ban_threshold: int = 10
    #: points older than this no longer count, so an occasional mistake is forgotten
    ban_window_seconds: float = 600.0
    #: the first ban lasts this long; each later ban of the same address twice as long
    ban_seconds: float = 900.0
    #: the longest ban
    ban_max_seconds: float = 86400.0
    #: addresses the defender keeps track of at once (the rest are forgotten, lowest first)
    max_tracked_addresses: int = 100_000
    #: networks (CIDR) never scored nor banned, and trusted for the reserved connections
    safelist: tuple[str, ...] = ()
    #: addresses an agency logged in from that the gate remembers as trusted
    max_trusted_addresses: int = 4096
    #: each agency's own settings (``agency_settings`` in config.yaml): its quotas instead of
    #: the two above, quotas per rolling period, the networks its logins may come from
    agencies: Mapping[str, AgencySettings] = field(
        default_factory=lambda: MappingProxyType({}))

    def settings(self, agency: str) -> AgencySettings:
        return self.agencies.get(agency) or AgencySettings()

    def quota_bytes_of(self, agency: str) -> int:
        own = self.settings(agency).quota_bytes
        return self.quota_bytes if own is None else own

    def quota_files_of(self, agency: str) -> int:
        own = self.settings(agency).quota_files
        return self.quota_files if own is None else own


def address_key(address: str) -> str:
    """The unit the defender scores and the gate counts: an IPv4 address, or the /64 of an
    IPv6 address.

    >>> address_key("192.0.2.7"), address_key("::ffff:192.0.2.7")
    ('192.0.2.7', '192.0.2.7')
    >>> address_key("2001:db8:1:2:3:4:5:6")
    '2001:db8:1:2::/64'
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


class Safelist:
    """The configured networks that are never banned.

    >>> Safelist(("10.0.0.0/8", "2001:db8::/32")).contains("10.1.2.3")
    True
    >>> Safelist(("10.0.0.0/8",)).contains("::ffff:10.1.2.3"), Safelist(()).contains("x")
    (True, False)
    """

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def contains(self, address: str) -> bool:
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in n for n in self.networks)


@dataclass
class _AgencyUsage:
    sessions: int = 0
    #: bytes of the uploads being written, by upload (a key per handle)
    writing: dict[int, int] = field(default_factory=dict)


class Gate:
    """The counters all connections of one server share, each change under one lock."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.safelist = Safelist(limits.safelist)
        self._lock = threading.Lock()
        self._connections = 0
        self._unauthenticated: dict[str, int] = {}
        self._networks: dict[str, int] = {}
        #: addresses an agency logged in from, oldest first (a bounded memory)
        self._trusted: dict[str, None] = {}
        self._agencies: dict[str, _AgencyUsage] = {}

    # -- connections ------------------------------------------------------------------------

    def trust(self, address: str) -> None:
        """An agency logged in from ``address``: it may use the reserved connections."""
        with self._lock:
            self._trusted.pop(address, None)
            self._trusted[address] = None
            while len(self._trusted) > self.limits.max_trusted_addresses:
                del self._trusted[next(iter(self._trusted))]

    def trusted(self, address: str) -> bool:
        with self._lock:
            return address in self._trusted or self.safelist.contains(address)

    def admit(self, address: str) -> bool:
        """A new TCP connection from ``address``: may it go on to the SSH handshake?"""
        trusted = self.trusted(address)
        network = address_key(address)
        limits = self.limits
        with self._lock:
            waiting = self._unauthenticated.get(address, 0)
            nearby = self._networks.get(network, 0)
            reserved = min(limits.reserved_connections, limits.max_connections // 2)
            room = limits.max_connections - (0 if trusted else reserved)
            if (self._connections >= room
                    or waiting >= limits.max_unauthenticated_per_address
                    or nearby >= limits.max_unauthenticated_per_network):
                return False
            self._connections += 1
            self._unauthenticated[address] = waiting + 1
            self._networks[network] = nearby + 1
            return True

    def waiting(self, address: str) -> str:
        """How many connections of ``address`` and of its network wait to log in (a log's)."""
        with self._lock:
            return (f"{self._unauthenticated.get(address, 0)} waiting from it, "
                    f"{self._networks.get(address_key(address), 0)} from its network")

    def authenticated(self, address: str) -> None:
        """The connection logged in (or gave up): it no longer waits at the door."""
        with self._lock:
            _decrement(self._unauthenticated, address)
            _decrement(self._networks, address_key(address))

    def closed(self) -> None:
        with self._lock:
            self._connections = max(0, self._connections - 1)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    # -- agencies' sessions -----------------------------------------------------------------

    def claim_session(self, agency: str) -> bool:
        with self._lock:
            usage = self._agencies.setdefault(agency, _AgencyUsage())
            if usage.sessions >= self.limits.max_sessions_per_agency:
                return False
            usage.sessions += 1
            return True

    def release_session(self, agency: str) -> None:
        with self._lock:
            usage = self._agencies.get(agency)
            if usage is not None:
                usage.sessions = max(0, usage.sessions - 1)
                self._forget_if_idle(agency, usage)

    def sessions(self, agency: str) -> int:
        with self._lock:
            usage = self._agencies.get(agency)
            return usage.sessions if usage else 0

    # -- uploads being written ----------------------------------------------------------------

    def writing(self, agency: str) -> tuple[int, int]:
        """Bytes and number of the uploads ``agency`` is writing now."""
        with self._lock:
            usage = self._agencies.get(agency)
            if usage is None:
                return 0, 0
            return sum(usage.writing.values()), len(usage.writing)

    def start_upload(self, agency: str, key: int) -> None:
        with self._lock:
            self._agencies.setdefault(agency, _AgencyUsage()).writing[key] = 0

    def grow_upload(self, agency: str, key: int, size: int, elsewhere: int) -> bool:
        """Let upload ``key`` grow to ``size`` bytes if the agency stays within its byte quota.

        ``elsewhere`` is what the agency holds besides the uploads it is writing (held
        files, batches waiting for an answer). Checked and counted in one step, so two
        uploads of one agency written at once cannot both slip under the quota.
        """
        with self._lock:
            usage = self._agencies.setdefault(agency, _AgencyUsage())
            current = usage.writing.get(key, 0)
            if size <= current:
                return True
            others = sum(v for k, v in usage.writing.items() if k != key)
            if elsewhere + others + size > self.limits.quota_bytes_of(agency):
                return False
            usage.writing[key] = size
            return True

    def end_upload(self, agency: str, key: int) -> None:
        with self._lock:
            usage = self._agencies.get(agency)
            if usage is not None:
                usage.writing.pop(key, None)
                self._forget_if_idle(agency, usage)

    def _forget_if_idle(self, agency: str, usage: _AgencyUsage) -> None:
        # an agency that has nothing open costs no memory
        if usage.sessions == 0 and not usage.writing:
            self._agencies.pop(agency, None)


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 1) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
