"""The PROXY protocol (HAProxy's, v1 text and v2 binary) behind a load balancer.

Off by default. When on, a connection from a trusted proxy (``proxy_trusted``) must
begin with a PROXY header, which names the real client; that address, not the
proxy's, is then what the limits, the defender, the agencies' allow-lists and the
ledger see. A header from any other address is refused: anyone could otherwise
claim any address. A connection from elsewhere without a header is served as it is
(an agency may also come in directly). A v2 ``LOCAL`` header or a v1 ``UNKNOWN``
one (the proxy's own health check) keeps the proxy's address.

Every read here is bounded: a v1 header is at most 107 bytes, a v2 header at most
16 + 65535 bytes (read and thrown away past the addresses), and the whole header
must come within the login's time.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

from exchanged.home.frontsettings import Network, in_networks

V1_PREFIX = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107
#: how long a connection from an untrusted address is watched for a header it must not send
#: (an SSH client speaks first; one that waits for the server's banner loses only this)
PEEK_SECONDS = 1.0


class ProxyError(Exception):
    """The header is missing, malformed, or from an address that may not send one."""


class NoHeader(ProxyError):
    """The proxy's connection ended before saying anything: its health check (not worth a
    warning every few seconds)."""


@dataclass(frozen=True)
class ProxySettings:
    enabled: bool = False
    trusted: tuple[Network, ...] = ()

    def trusts(self, address: str) -> bool:
        return self.enabled and in_networks(address, self.trusted)


def _recv_exactly(sock: socket.socket, n: int, deadline: float) -> bytes:
    out = b""
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProxyError("the PROXY header did not come in time")
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(out))
        except (TimeoutError, OSError):
            raise ProxyError("the PROXY header did not come in time") from None
        if not chunk:
            if not out and n >= 12:
                raise NoHeader("the proxy's connection ended without a word")
            raise ProxyError("the connection ended inside the PROXY header")
        out += chunk
    return out


def read_header(sock: socket.socket, peer: str, seconds: float) -> tuple[str, int]:
    """Read the PROXY header a trusted proxy sends first; the real client's address and
    port (the proxy's address and 0 for its own connections)."""
    deadline = time.monotonic() + seconds
    first = _recv_exactly(sock, 12, deadline)
    if first == V2_SIGNATURE:
        return _read_v2(sock, peer, deadline)
    if not first.startswith(V1_PREFIX):
        raise ProxyError("a trusted proxy's connection did not begin with a PROXY header")
    line = first
    while not line.endswith(b"\r\n"):
        if len(line) >= V1_MAX:
            raise ProxyError("a PROXY v1 header longer than 107 bytes")
        line += _recv_exactly(sock, 1, deadline)
    return _parse_v1(line, peer)


def _parse_v1(line: bytes, peer: str) -> tuple[str, int]:
    parts = line[:-2].decode("ascii", "replace").split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return peer, 0
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyError("a malformed PROXY v1 header")
    try:
        source = ipaddress.ip_address(parts[2])
        ipaddress.ip_address(parts[3])
        ports = int(parts[4]), int(parts[5])
    except ValueError:
        raise ProxyError("a malformed PROXY v1 header") from None
    if source.version != (4 if parts[1] == "TCP4" else 6) \
            or not all(0 <= p <= 65535 for p in ports):
        raise ProxyError("a malformed PROXY v1 header")
    return str(source), ports[0]


def _read_v2(sock: socket.socket, peer: str, deadline: float) -> tuple[str, int]:
    head = _recv_exactly(sock, 4, deadline)
    version, command = head[0] >> 4, head[0] & 0x0F
    family = head[1]
    length = int.from_bytes(head[2:4], "big")
    if version != 2 or command not in (0, 1):
        raise ProxyError("a PROXY v2 header of an unknown version or command")
    body = _recv_exactly(sock, length, deadline) if length else b""
    if command == 0:  # LOCAL: the proxy's own connection (a health check)
        return peer, 0
    if family == 0x11 and length >= 12:  # TCP over IPv4: source, destination, their ports
        return str(ipaddress.IPv4Address(body[:4])), int.from_bytes(body[8:10], "big")
    if family == 0x21 and length >= 36:  # TCP over IPv6
        return str(ipaddress.IPv6Address(body[:16])), int.from_bytes(body[32:34], "big")
    if family == 0x00:  # UNSPEC
        return peer, 0
    raise ProxyError("a PROXY v2 header of an address family other than TCP")


def sends_header(sock: socket.socket) -> bool:
    """Does a connection (from an untrusted address) begin with a PROXY header? Looked at
    without taking anything from it, for at most :data:`PEEK_SECONDS`."""
    deadline = time.monotonic() + PEEK_SECONDS
    seen = b""
    while len(seen) < 6:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            seen = sock.recv(12, socket.MSG_PEEK)
        except (TimeoutError, OSError):
            return False
        if not seen:
            return False
        if not (V1_PREFIX.startswith(seen[:6]) or V2_SIGNATURE.startswith(seen[:12])):
            return False
        if len(seen) < 6:
            time.sleep(0.01)  # the rest of the first segment is on its way
    return seen.startswith(V1_PREFIX) or V2_SIGNATURE.startswith(seen[:12])
