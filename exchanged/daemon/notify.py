"""systemd's notify protocol, without a library: READY, STATUS, RELOADING, STOPPING, WATCHDOG.

With ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a Unix datagram socket,
``@`` for the abstract namespace); with ``WatchdogSec=`` it also passes
``WATCHDOG_USEC``. Outside systemd both are absent and every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # the watchdog is meant for us only if no other pid was named
        mine = not pid or pid == str(os.getpid())
        self.watchdog_seconds = int(usec) / 1e6 if usec.isdigit() and mine else None
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines; False if there is no socket or it is gone."""
        if self.address is None:
            return False
        address = self.address
        if address.startswith("@"):
            address = "\0" + address[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(address)
                sock.sendall("\n".join(fields).encode("utf-8"))
            return True
        except OSError:
            return False

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def reloading(self) -> None:
        monotonic_usec = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
        self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self, healthy: bool) -> None:
        """Ping the watchdog at half its interval, but only while the daemon is healthy:
        a wedged daemon stops pinging and systemd restarts it."""
        if self.watchdog_seconds is None or not healthy:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_seconds / 2:
            if self.send("WATCHDOG=1"):
                self._last_ping = now
