"""The SSH packets a client may send: a declared length over the bound ends the connection."""

from __future__ import annotations

import logging

import paramiko

log = logging.getLogger("exchanged.sftp")

#: the largest SSH packet a client may send the exchange on a channel: an SFTP write of
#: 32 KiB (OpenSSH's default) fits in one packet instead of two, halving paramiko's work
#: for each (docs/performance.md); OpenSSH itself sends at most 256 KiB
MAX_PACKET_BYTES = 256 * 1024
#: the largest SSH packet the exchange reads from a client: a channel packet of
#: MAX_PACKET_BYTES with its framing, and never below the 35,000 bytes every SSH server
#: must take (RFC 4253, 6.1); OpenSSH's own server reads at most 256 KiB
MAX_INCOMING_BYTES = max(MAX_PACKET_BYTES, 35_000) + 4096


def cap_incoming_packets(transport: paramiko.Transport, remote: str) -> None:
    """End a connection whose client declares an SSH packet over MAX_INCOMING_BYTES.

    paramiko reads whatever length a packet declares (up to 4 GiB) before it looks at
    any of it, so without this one stranger's connection could hold gigabytes of memory
    until the login deadline ended it. The length is known before the packet is read:
    the read of the packet's rest is refused instead (paramiko ends the connection)."""
    packetizer = transport.packetizer
    read_all = packetizer.read_all

    def capped(n: int, check_rekey: bool = False) -> bytes:
        if n > MAX_INCOMING_BYTES:
            log.warning("connection from %s closed: it declared an SSH packet of %d bytes "
                        "(the limit is %d)", remote, n, MAX_INCOMING_BYTES)
            raise paramiko.SSHException("the client declared an SSH packet over the limit")
        data: bytes = read_all(n, check_rekey)
        return data

    # on this connection's packetizer only (an attribute of the instance, not the class)
    setattr(packetizer, "read_all", capped)  # noqa: B010 (mypy: no assigning to a method)
