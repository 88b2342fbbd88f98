"""The embedded SFTP server: key-only logins, SFTP only, modern algorithms only, bounded.

One thread accepts connections; each connection runs in paramiko's transport
thread. An agency logs in with its id as user name and one of its registered
SSH keys; there are no passwords, no shells, no exec, no forwarding. A
connection that ends without a successful login is recorded once in the
ledger, with the number of attempts, and scored by the defender
(:mod:`exchanged.sftp.defender`), which bans an address that keeps failing.

Only the algorithms in :data:`ALLOWED` are offered — an allowlist, so that an
algorithm a future paramiko adds is not offered until it is reviewed: AES-GCM
and AES-CTR with SHA-2 MACs (no CBC, no 3DES, no SHA-1 or MD5 MACs),
Curve25519, ML-KEM hybrid, ECDH and finite-field DH with SHA-2 only (no
SHA-1 key exchange), and client keys signing with Ed25519, ECDSA or RSA with
SHA-2 (no ``ssh-rsa`` SHA-1 signatures, no DSA). Strict key exchange
(the Terrapin counter-measure) is on.

The limits (:class:`~exchanged.sftp.limits.Limits`): connections at once
(some kept for trusted addresses: the safelist and addresses agencies logged
in from), connections per address and per IPv6 /64 still logging in, a
deadline for the SSH banner and key exchange and another for the login,
logged-in sessions per agency, channels per connection, idle time, and each
agency's inbox quota. An agency's ``allow_from`` refuses its key from any other network
(on record, scored by the defender). Behind a load balancer, the PROXY protocol
(:mod:`exchanged.sftp.proxy`) gives the real client's address to all of these.
A connection held silent until the handshake's
deadline scores with the defender like a failed login.

A session lasts only as long as its key logs the agency in: twice a second the
server asks the Door again, and a session whose key was replaced or removed
(``agency update``) ends at once (``session.ended`` says ``key_changed``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_FAILED_RESOURCE_SHORTAGE,
    OPEN_SUCCEEDED,
)

from exchanged.home import Listen
from exchanged.sftp.defender import Ban, Defender, address_key
from exchanged.sftp.door import AgencyDoor, Door, GuardedDoor
from exchanged.sftp.folders import DropFolders
from exchanged.sftp.handles import ExchangeSFTPServer
from exchanged.sftp.limits import Gate, Limits
from exchanged.sftp.packets import MAX_PACKET_BYTES, cap_incoming_packets
from exchanged.sftp.pipe import install as install_chunk_pipe
from exchanged.sftp.proxy import (
    NoHeader,
    ProxyError,
    ProxySettings,
    read_header,
    sends_header,
)
from exchanged.sftp.session import Session

log = logging.getLogger("exchanged.sftp")

#: the only algorithms the server offers, by paramiko's kind, in no particular order (the
#: client's preference decides among them)
ALLOWED: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "ciphers": ("aes256-gcm@openssh.com", "aes128-gcm@openssh.com"),
    "macs": ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512",
             "hmac-sha2-256"),
    "kex": ("mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp521", "ecdh-sha2-nistp384", "ecdh-sha2-nistp256",
            "diffie-hellman-group16-sha512", "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group14-sha256"),
    # the host key is Ed25519: nothing else is ever offered for it
    "keys": ("ssh-ed25519",),
    # how a client's login signature may be made
    "pubkeys": ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256"),
    "compression": ("none",),
})


def disabled_algorithms() -> dict[str, list[str]]:
    """Everything paramiko would offer that :data:`ALLOWED` does not list.

    paramiko takes a deny list; it is computed from paramiko's own defaults
    (``Transport._preferred_*``), so that whatever a paramiko upgrade adds is
    denied until it is added to :data:`ALLOWED`.
    """
    out: dict[str, list[str]] = {}
    for kind, allowed in ALLOWED.items():
        offered: tuple[str, ...] = getattr(paramiko.Transport, f"_preferred_{kind}")
        out[kind] = [name for name in offered if name not in allowed]
    return out


class Connection(paramiko.ServerInterface):
    """One client connection's authentication and channel policy."""

    def __init__(self, door: Door[Any], remote: str, gate: Gate,
                 guarded: GuardedDoor[Any] | None = None, address: str = "") -> None:
        self.door = door
        self.remote = remote
        #: the client's address (behind a trusted proxy: the one its PROXY header names)
        self.address = address or remote.rsplit(":", 1)[0]
        #: a valid key came from outside the agency's allow_from (recorded once)
        self.refused_network = False
        self.gate = gate
        self.limits = gate.limits
        #: the Door, if it can count an agency's queue (see GuardedDoor); DropFolders uses it
        self.guarded = guarded
        self.session: Session | None = None
        #: the key the agency logged in with: its session ends when the key no longer logs in
        self.login_key: paramiko.PKey | None = None
        self.attempted_user = ""
        self.attempts = 0
        self.login_recorded = False
        self.channels = 0
        self.holds_session = False

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_none(self, username: str) -> int:
        self.attempted_user = username
        return AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        self.attempted_user = username
        self.attempts += 1
        return AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.attempted_user = username
        self.attempts += 1
        if self.door.authenticate(username, key):
            if not self.limits.settings(username).allows(self.address):
                self._refuse_network(username)
                return AUTH_FAILED
            # paramiko asks twice: once for the key (no signature yet), once signed
            # (before checking the signature); channels open only after a verified
            # login, so the session is safe to create here and the login is
            # recorded when the first channel opens
            if self.session is None:
                self.session = Session(agency=username, remote=self.remote)
                self.login_key = key
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def _refuse_network(self, agency: str) -> None:
        """The agency's key, from a network outside its allow_from: refused, on record once
        per connection, and scored by the defender like any failed login."""
        if self.refused_network:
            return
        self.refused_network = True
        log.warning("%s from %s: login refused, the address is outside its allow_from",
                    agency, self.remote)
        if isinstance(self.door, AgencyDoor):
            quietly(self.door.login_refused, agency, self.remote, "network")

    def check_auth_interactive(self, username: str, submethods: str) -> int:
        return AUTH_FAILED

    def get_banner(self) -> tuple[str | None, str | None]:
        return (None, None)

    def check_channel_request(self, kind: str, chanid: int) -> int:
        # channels open only after a complete (signed) login: record it once, here
        if kind != "session" or self.session is None:
            return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        agency = self.session.agency
        if not self.login_recorded:
            # fail closed: a session the ledger cannot record does not open (an agency
            # could otherwise collect outcomes with no trace while the ledger is unwritable)
            try:
                self.session.sid = self.door.session_opened(agency, self.remote)
            except Exception as e:
                log.error("%s from %s: session refused, the login cannot be recorded (%s)",
                          agency, self.remote, type(e).__name__,
                          extra={"agency": agency, "remote": self.remote})
                return OPEN_FAILED_RESOURCE_SHORTAGE
            self.login_recorded = True
        if self.channels >= self.limits.max_channels_per_connection:
            log.warning("%s from %s: channel refused, %d already opened on this connection",
                        agency, self.remote, self.channels,
                        extra={"agency": agency, "remote": self.remote})
            return OPEN_FAILED_RESOURCE_SHORTAGE
        if not self.holds_session:
            if not self.gate.claim_session(agency):
                log.warning("%s from %s: session refused, the agency already has %d sessions",
                            agency, self.remote, self.limits.max_sessions_per_agency,
                            extra={"agency": agency, "remote": self.remote})
                return OPEN_FAILED_RESOURCE_SHORTAGE
            self.holds_session = True
        self.channels += 1
        self.session.touch()
        return OPEN_SUCCEEDED

    def release(self) -> None:
        """The connection ended: give back the agency's session slot."""
        if self.holds_session and self.session is not None:
            self.holds_session = False
            self.gate.release_session(self.session.agency)

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        if name != "sftp" or self.session is None:
            return False
        install_chunk_pipe(channel)  # before the client's first SFTP packet (see pipe.py)
        return bool(super().check_channel_subsystem_request(channel, name))

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        return False

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        return False

    def check_channel_pty_request(self, *args: object) -> bool:
        return False

    def check_port_forward_request(self, address: str, port: int) -> bool:
        return False

    def check_channel_direct_tcpip_request(self, chanid: int, origin: object,
                                           destination: object) -> int:
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_x11_request(self, *args: object) -> bool:
        return False

    def check_channel_forward_agent_request(self, channel: paramiko.Channel) -> bool:
        return False


def quietly(call: Callable[..., object], *args: object) -> None:
    """Call a Door method whose failure must not end the connection's bookkeeping (a ledger
    that cannot be written is the pipeline's to report; the front door goes on)."""
    try:
        call(*args)
    except Exception as e:
        log.error("the front door could not record an event (%s)", type(e).__name__)


class SFTPServer:
    """Listens on HOST:PORT and serves each agency its drop folders."""

    def __init__(self, door: Door[Any], host_key_path: Path, listen: Listen,
                 limits: Limits | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 proxy: ProxySettings | None = None) -> None:
        self.door = door
        self.guarded = door if isinstance(door, GuardedDoor) else None
        self.host_key = paramiko.Ed25519Key(filename=str(host_key_path))
        self.listen = listen
        self.limits = limits or Limits()
        self.gate = Gate(self.limits)
        self.defender = Defender(self.limits, clock)
        #: the PROXY protocol (off unless configured) and the proxies it trusts
        self.proxy = proxy or ProxySettings()
        self._disabled = disabled_algorithms()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        #: the open connections, each with its client's address (behind a trusted proxy:
        #: the one its header named, not the socket's peer)
        self._transports: dict[paramiko.Transport, str] = {}
        #: the connections' threads, which a stop lets put their sessions on record
        self._serving: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self.address: tuple[str, int] | None = None
        if self.guarded is None:
            log.warning("the front door's Door cannot count queued batches or record bans: "
                        "quotas count only what is in the inbox, bans are only logged")

    def bind(self) -> tuple[str, int]:
        """Take the listening address (fails at once if it is in use)."""
        family = socket.AF_INET6 if ":" in self.listen.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.listen.host, self.listen.port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        sock.settimeout(0.5)
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self.address = (str(host), int(port))
        return self.address

    def serve(self) -> None:
        """Start accepting connections."""
        if self.guarded is not None:
            try:
                for address in self.guarded.known_addresses():
                    self.gate.trust(address)
            except Exception as e:
                log.error("addresses agencies logged in from before are not known (%s)",
                          type(e).__name__)
        self._thread = threading.Thread(target=self._accept_loop, name="sftp-accept", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def connections(self) -> int:
        return self.gate.connections

    def start(self) -> tuple[str, int]:
        address = self.bind()
        self.serve()
        return address

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            transports = list(self._transports)
            serving = list(self._serving)
        for t in transports:
            t.close()
        # each connection's thread puts its session on record as it ends: let them
        deadline = time.monotonic() + 10
        for thread in serving:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                client, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                # out of file descriptors: do not spin, let connections end
                self._stopping.wait(0.2)
                continue
            address = str(addr[0])
            if self.proxy.trusts(address):
                # the real client is known only from the header: admitted in its own thread
                # (the total is bounded here, before a thread is spent on it)
                if self.gate.connections >= self.limits.max_connections:
                    _close_quietly(client)
                    continue
                threading.Thread(target=self._serve_proxied, args=(client, address),
                                 name=f"sftp-proxy-{addr[0]}", daemon=True).start()
                continue
            # a banned address, or one over a limit, is closed before the handshake: it
            # costs no thread, no key exchange and no ledger entry
            if self.defender.banned_for(address) > 0 or not self.gate.admit(address):
                if self.gate.trusted(address):
                    # rare, and worth knowing: a trusted address turned away
                    log.warning("connection from %s refused: %d connections open, %s",
                                address, self.gate.connections, self.gate.waiting(address))
                _close_quietly(client)
                continue
            thread = threading.Thread(
                target=self._serve, args=(client, address, f"{addr[0]}:{addr[1]}"),
                name=f"sftp-{addr[0]}", daemon=True,
            )
            with self._lock:
                self._serving.add(thread)
            thread.start()

    def _serve_proxied(self, client: socket.socket, proxy: str) -> None:
        """A connection from a trusted proxy: its PROXY header names the client, whose
        address the limits, the defender, the allow-lists and the ledger then see."""
        try:
            address, port = read_header(client, proxy, self.limits.login_grace_seconds)
        except ProxyError as e:
            log.log(logging.DEBUG if isinstance(e, NoHeader) else logging.WARNING,
                    "a connection from the proxy %s refused: %s", proxy, e)
            _close_quietly(client)
            return
        if self.defender.banned_for(address) > 0 or not self.gate.admit(address):
            _close_quietly(client)
            return
        host = f"[{address}]" if ":" in address else address
        self._serve(client, address, f"{host}:{port}", proxied=True)

    def _refuse_header(self, client: socket.socket, address: str, remote: str) -> bool:
        """With the PROXY protocol on, a header from an address that is no trusted proxy is
        refused: anyone could claim any address with one. True if it was refused."""
        if not self.proxy.enabled or not sends_header(client):
            return False
        log.warning("a PROXY header from %s refused: not a trusted proxy", remote)
        _close_quietly(client)
        self.gate.authenticated(address)
        self.gate.closed()
        if isinstance(self.door, AgencyDoor):
            quietly(self.door.login_refused, None, remote, "proxy-header")
        self._failed(address, 1)
        return True

    def _serve(self, client: socket.socket, address: str, remote: str, *,
               proxied: bool = False) -> None:
        try:
            if not proxied and self._refuse_header(client, address, remote):
                return
            self._converse(client, address, remote)
        finally:
            with self._lock:
                self._serving.discard(threading.current_thread())

    def _converse(self, client: socket.socket, address: str, remote: str) -> None:
        accepted = time.monotonic()
        client.settimeout(None)
        # each SFTP write is answered by a small status packet: without TCP_NODELAY, Nagle's
        # algorithm holds each one until the client acknowledges the one before, and the
        # client's delayed acknowledgement (40 ms) stalls the upload (OpenSSH sets it too)
        with contextlib.suppress(OSError):
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            transport = paramiko.Transport(client, disabled_algorithms=self._disabled,
                                           default_max_packet_size=MAX_PACKET_BYTES)
        except Exception as e:
            log.warning("connection from %s closed at once: %s", address, type(e).__name__)
            _close_quietly(client)
            self.gate.authenticated(address)
            self.gate.closed()
            return
        cap_incoming_packets(transport, remote)
        # paramiko's own deadlines, and ours around them (_handshake), so that every wait ends
        transport.banner_timeout = self.limits.handshake_seconds
        transport.handshake_timeout = self.limits.handshake_seconds
        transport.auth_timeout = self.limits.login_grace_seconds
        transport.add_server_key(self.host_key)
        conn = Connection(self.door, remote, self.gate, self.guarded, address)
        transport.set_subsystem_handler("sftp", ExchangeSFTPServer, DropFolders)
        with self._lock:
            self._transports[transport] = address
        waiting = True
        authenticated = False
        why = "client"
        try:
            # the short deadline is for strangers, who could fill the door with silent
            # connections; a trusted address (an agency's) gets the whole login's time, so that
            # a handshake slowed by the exchange's own load does not turn an agency away
            trusted = self.gate.trusted(address)
            if not self._handshake(transport, conn, trusted):
                return
            authenticated = self._await_login(transport)
            self.gate.authenticated(address)
            waiting = False
            if authenticated:
                self.gate.trust(address)
            why = self._run_session(transport, conn, authenticated)
        finally:
            if waiting:
                self.gate.authenticated(address)
            with self._lock:
                self._transports.pop(transport, None)
            transport.close()
            conn.release()
            self.gate.closed()
            session = conn.session
            if authenticated and session is not None and session.sid:
                quietly(self.door.session_closed, session.sid, why)
            if not authenticated:
                self._score(address, remote, conn, transport, time.monotonic() - accepted)

    def _handshake(self, transport: paramiko.Transport, conn: Connection, trusted: bool) -> bool:
        """The SSH banner and key exchange, within ``handshake_seconds`` (a trusted address:
        ``login_grace_seconds``): True once done."""
        negotiated = threading.Event()
        try:
            transport.start_server(event=negotiated, server=conn)
        except (paramiko.SSHException, EOFError, OSError, RuntimeError) as e:
            # RuntimeError: no thread could be started for it
            log.warning("connection from %s closed at once: %s", conn.remote, type(e).__name__)
            return False
        if trusted:
            transport.banner_timeout = transport.handshake_timeout = self.limits.login_grace_seconds
        deadline = time.monotonic() + (self.limits.login_grace_seconds if trusted
                                       else self.limits.handshake_seconds)
        while not negotiated.wait(0.05):
            if time.monotonic() >= deadline or self._stopping.is_set():
                transport.close()
                return False
        # no common algorithm (an old client), not SSH at all, or gone at once
        return transport.is_active()

    def _score(self, address: str, remote: str, conn: Connection,
               transport: paramiko.Transport, held: float) -> None:
        """A connection that ended without a login: on record (failed attempts) and scored.

        One that never spoke SSH and closed by itself soon (a load balancer's health check,
        a port probe) costs next to nothing and scores nothing; one held silent until the
        handshake's deadline (filling the door), one that spoke SSH and never logged in (a
        wrong key, an old client, a scanner) scores — except one from a trusted address that
        simply ran out of time.
        """
        if conn.attempts:
            quietly(self.door.login_failed, conn.attempted_user, remote, conn.attempts)
        timed_out = held >= self.limits.handshake_seconds - 0.5
        if not conn.attempts and timed_out and self.gate.trusted(address):
            # from an address an agency logged in from, a connection that ran out of time
            # without a wrong key is more likely the exchange's own load than an attack: it
            # must not get the agency banned
            return
        if conn.attempts or transport.remote_version or timed_out:
            self._failed(address, conn.attempts)

    def _run_session(self, transport: paramiko.Transport, conn: Connection,
                     authenticated: bool) -> str:
        """Keep the connection while it is active; why it ended (client, idle, key_changed,
        stopping)."""
        while transport.is_active():
            if self._stopping.is_set():
                return "stopping"
            transport.join(0.5)
            session = conn.session
            if not authenticated or session is None or not transport.is_active():
                continue
            if session.idle_for() > self.limits.idle_seconds:
                log.info("%s from %s: closed after %.0f s without a request", session.agency,
                         session.remote, self.limits.idle_seconds,
                         extra={"agency": session.agency, "remote": session.remote})
                return "idle"
            if not self._still_accepted(session.agency, conn.login_key):
                log.warning("%s from %s: session ended, its login key no longer logs the "
                            "agency in", session.agency, session.remote)
                return "key_changed"
        return "stopping" if self._stopping.is_set() else "client"

    def _still_accepted(self, agency: str, key: paramiko.PKey | None) -> bool:
        """Does the session's key still log the agency in? (Not if it cannot be told.)"""
        if key is None:
            return False
        try:
            return bool(self.door.authenticate(agency, key))
        except Exception as e:
            log.error("%s: the agency's keys cannot be read (%s); its session ends", agency,
                      type(e).__name__)
            return False

    def _failed(self, address: str, attempts: int) -> None:
        ban = self.defender.failed(address, attempts)
        if ban is None:
            return
        log.warning("address %s banned for %d s after repeated failed logins (ban %d)",
                    ban.address, ban.seconds, ban.count, extra={"remote": ban.address})
        self._record_ban(ban)
        self._close_unauthenticated(ban)

    def _record_ban(self, ban: Ban) -> None:
        if self.guarded is not None:
            quietly(self.guarded.address_banned, ban.address, ban.score, ban.seconds, ban.count)

    def _close_unauthenticated(self, ban: Ban) -> None:
        """Connections from a banned address that are still trying to log in end now."""
        with self._lock:
            transports = list(self._transports.items())
        for t, address in transports:
            if not t.is_authenticated() and address_key(address) == ban.address:
                t.close()

    def _await_login(self, transport: paramiko.Transport) -> bool:
        """Wait for a verified login; True if it came (even if the client left at once)."""
        deadline = time.monotonic() + self.limits.login_grace_seconds
        while transport.is_active() and not transport.is_authenticated():
            if time.monotonic() >= deadline or self._stopping.is_set():
                transport.close()
                break
            # returns as soon as the client leaves; polled often enough that a connection
            # that has logged in stops counting against its address's unauthenticated
            # limit at once (an agency's next connection may follow within milliseconds)
            transport.join(0.01)
        # is_authenticated() turns False once the transport ends; its handler remembers
        handler = transport.auth_handler
        return bool(handler is not None and handler.is_authenticated())


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
