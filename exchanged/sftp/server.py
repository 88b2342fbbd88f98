"""The embedded SFTP server: key-only logins, SFTP only, modern algorithms only.

One thread accepts connections; each connection runs in paramiko's transport
thread. An agency logs in with its id as user name and one of its registered
SSH keys; there are no passwords, no shells, no exec, no forwarding. A
connection that ends without a successful login is recorded once in the
ledger, with the number of attempts.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)

from exchanged.home import Listen
from exchanged.sftp.door import Door
from exchanged.sftp.folders import DropFolders, ExchangeSFTPServer, Session

log = logging.getLogger("exchanged.sftp")

# No SHA-1 (signatures, MACs, key exchange), no CBC, no 3DES, no DSA.
DISABLED_ALGORITHMS = {
    "ciphers": ["aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc", "blowfish-cbc"],
    "macs": ["hmac-sha1", "hmac-sha1-96", "hmac-md5", "hmac-md5-96",
             "hmac-sha1-etm@openssh.com"],
    "kex": ["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1",
            "diffie-hellman-group-exchange-sha1"],
    "keys": ["ssh-rsa", "ssh-dss"],
    "pubkeys": ["ssh-rsa", "ssh-dss"],
}
#: a connection must complete its login within this time
LOGIN_GRACE_SECONDS = 20
#: connections from one address that have not logged in yet
MAX_UNAUTHENTICATED_PER_ADDRESS = 8


class Connection(paramiko.ServerInterface):
    """One client connection's authentication and channel policy."""

    def __init__(self, door: Door, remote: str) -> None:
        self.door = door
        self.remote = remote
        self.session: Session | None = None
        self.attempted_user = ""
        self.attempts = 0
        self.login_recorded = False

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
            # paramiko asks twice: once for the key (no signature yet), once signed
            # (before checking the signature); channels open only after a verified
            # login, so the session is safe to create here and the login is
            # recorded when the first channel opens
            self.session = Session(agency=username, remote=self.remote)
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_auth_interactive(self, username: str, submethods: str) -> int:
        return AUTH_FAILED

    def get_banner(self) -> tuple[str | None, str | None]:
        return (None, None)

    def check_channel_request(self, kind: str, chanid: int) -> int:
        # channels open only after a complete (signed) login: record it once, here
        if kind == "session" and self.session is not None:
            if not self.login_recorded:
                self.login_recorded = True
                self.door.login_succeeded(self.session.agency, self.remote)
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        if name != "sftp" or self.session is None:
            return False
        return bool(super().check_channel_subsystem_request(channel, name))

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        return False

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        return False

    def check_channel_pty_request(self, *args: object) -> bool:
        return False

    def check_port_forward_request(self, address: str, port: int) -> bool:
        return False

    def check_channel_direct_tcpip_request(self, chanid: int, origin: object, destination: object) -> int:
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_x11_request(self, *args: object) -> bool:
        return False

    def check_channel_forward_agent_request(self, channel: paramiko.Channel) -> bool:
        return False


class SFTPServer:
    """Listens on HOST:PORT and serves each agency its drop folders."""

    def __init__(self, door: Door, host_key_path: Path, listen: Listen, max_connections: int = 64) -> None:
        self.door = door
        self.host_key = paramiko.Ed25519Key(filename=str(host_key_path))
        self.listen = listen
        self.max_connections = max_connections
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._transports: set[paramiko.Transport] = set()
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()
        self.address: tuple[str, int] | None = None

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
        self._thread = threading.Thread(target=self._accept_loop, name="sftp-accept", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def connections(self) -> int:
        with self._lock:
            return len(self._transports)

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
        for t in transports:
            t.close()

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
            with self._lock:
                busy = len(self._transports)
                pending = self._pending.get(address, 0)
                if busy < self.max_connections and pending < MAX_UNAUTHENTICATED_PER_ADDRESS:
                    self._pending[address] = pending + 1
                    accepted = True
                else:
                    accepted = False
            if not accepted:
                client.close()
                continue
            threading.Thread(
                target=self._serve, args=(client, address, f"{addr[0]}:{addr[1]}"),
                name=f"sftp-{addr[0]}", daemon=True,
            ).start()

    def _logged_in(self, address: str) -> None:
        with self._lock:
            left = self._pending.get(address, 1) - 1
            if left > 0:
                self._pending[address] = left
            else:
                self._pending.pop(address, None)

    def _serve(self, client: socket.socket, address: str, remote: str) -> None:
        client.settimeout(None)
        transport = paramiko.Transport(client, disabled_algorithms=DISABLED_ALGORITHMS)
        transport.add_server_key(self.host_key)
        conn = Connection(self.door, remote)
        transport.set_subsystem_handler("sftp", ExchangeSFTPServer, DropFolders)
        with self._lock:
            self._transports.add(transport)
        pending = True
        authenticated = False
        try:
            try:
                transport.start_server(server=conn)
            except (paramiko.SSHException, EOFError, OSError):
                return
            authenticated = self._await_login(transport)
            self._logged_in(address)
            pending = False
            while transport.is_active() and not self._stopping.is_set():
                transport.join(1.0)
        finally:
            if pending:
                self._logged_in(address)
            with self._lock:
                self._transports.discard(transport)
            transport.close()
            if not authenticated and conn.attempts:
                self.door.login_failed(conn.attempted_user, remote, conn.attempts)

    def _await_login(self, transport: paramiko.Transport) -> bool:
        """Wait for a verified login; True if it came (even if the client left at once)."""
        waited = 0.0
        while transport.is_active() and not transport.is_authenticated():
            if waited >= LOGIN_GRACE_SECONDS or self._stopping.is_set():
                transport.close()
                break
            transport.join(0.1)
            waited += 0.1
        # is_authenticated() turns False once the transport ends; its handler remembers
        handler = transport.auth_handler
        return bool(handler is not None and handler.is_authenticated())
