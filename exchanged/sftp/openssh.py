"""OpenSSH mode: the system's ``sshd`` lets agencies in; the daemon watches their folders.

Many administrators expose only OpenSSH's own ``sshd``. Then each agency is a
system user named as its agency id (the login the contract gives it) with a
group of the same name, chrooted in ``<openssh_root>/<agency>`` with
``ForceCommand internal-sftp``. sshd requires every part of a chroot's path to
be owned by root and writable by no one else, so the agency's tree is::

    <openssh_root>/<agency>/             root:root 0755  (the chroot)
        inbox/  outbox/                  root:root 0755
        inbox/<flow>/  outbox/<flow>/    <daemon user>:<agency group> 2770

The agency's group holds the agency's user and the daemon's user; the setgid
folders keep every file in that group and ``internal-sftp -u 0007`` keeps it
group-readable, so the daemon can take uploads and the agency can read (and
remove) its outcomes — and nobody else can.

The daemon takes a file from an inbox when it is complete: when it is renamed
to its final name (the upload-then-rename convention, which ``exchanged submit``
and WinSCP follow), or when a client that writes the final name directly
closes it. sshd cannot tell a normal close from a dropped connection, so such
a cut-off upload is not discarded as in embedded mode: it reaches the pipeline
and is answered CORRUPT_MESSAGE (the OpenPGP message is incomplete).
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from exchanged.errors import ConfigError
from exchanged.home import Config
from exchanged.sftp.paths import is_temporary_name

log = logging.getLogger("exchanged.sftp.openssh")

Take = Callable[[str, str, Path, str], None]

#: the SFTP requests internal-sftp refuses an agency (``sftp-server -Q requests`` names them)
DENIED_REQUESTS = "symlink,hardlink"


def match_block(config: Config, agency: str) -> str:
    """The sshd_config lines for one agency."""
    root = Path(config.openssh_root)
    return (
        f"Match User {agency}\n"
        f"    ChrootDirectory {root / agency}\n"
        # no links made by agencies: a link in a drop folder could lead the exchange, or
        # another agency, elsewhere (rename and posix-rename stay: clients upload under a
        # temporary name and rename it when complete)
        f"    ForceCommand internal-sftp -u 0007 -P {DENIED_REQUESTS}\n"
        f"    AuthorizedKeysFile {root / '.keys'}/%u\n"
        "    PasswordAuthentication no\n"
        "    KbdInteractiveAuthentication no\n"
        "    AllowTcpForwarding no\n"
        "    AllowAgentForwarding no\n"
        "    X11Forwarding no\n"
        "    PermitTTY no\n"
        "    PermitTunnel no\n"
    )


def _run(*cmd: str) -> None:
    result = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConfigError(f"{cmd[0]} failed: {result.stderr.strip()[:200]}")


#: where systemd looks for the unit's drop-ins; the shipped one is systemd/exchanged.service.d/
SYSTEMD_DROPIN = "/etc/systemd/system/exchanged.service.d/openssh.conf"


def systemd_dropin(config: Config) -> str:
    """The drop-in the shipped unit needs in OpenSSH mode: its ``ProtectSystem=strict`` makes
    everything but the home (``StateDirectory=``) read-only, and the daemon takes uploads from,
    and delivers outcomes into, the chroots under ``openssh_root``."""
    return (
        "# OpenSSH mode: the daemon writes into the agencies' chroots, which\n"
        "# ProtectSystem=strict would make read-only. Printed by 'exchanged agency add';\n"
        "# install as /etc/systemd/system/exchanged.service.d/openssh.conf\n"
        "[Service]\n"
        f"ReadWritePaths={config.openssh_root}\n"
    )


def check_daemon_user(config: Config) -> None:
    """The daemon's user must exist before an agency's group can let it in."""
    try:
        pwd.getpwnam(config.openssh_daemon_user)
    except KeyError:
        raise ConfigError(
            f"the daemon's user {config.openssh_daemon_user} (openssh_daemon_user) does not "
            "exist, so it could not read the agency's uploads: create it (systemd-sysusers "
            "with systemd/exchanged.sysusers) or set openssh_daemon_user in config.yaml, "
            "then add the agency again") from None


def ensure_account(config: Config, agency: str) -> None:
    """The agency's system user and group (created when run as root and missing)."""
    check_daemon_user(config)
    try:
        grp.getgrnam(agency)
    except KeyError:
        if os.geteuid() != 0:
            raise ConfigError(f"group {agency} does not exist; run 'exchanged agency add' as "
                              "root in OpenSSH mode, or create it") from None
        _run("groupadd", "--system", agency)
    try:
        pwd.getpwnam(agency)
    except KeyError:
        if os.geteuid() != 0:
            raise ConfigError(f"user {agency} does not exist") from None
        _run("useradd", "--system", "--gid", agency, "--no-create-home", "--home-dir", "/",
             "--shell", "/usr/sbin/nologin", "--comment", f"exchanged agency {agency}", agency)
        # no password, but not a locked account: sshd refuses locked accounts even for keys
        _run("usermod", "--password", "*", agency)
    daemon = config.openssh_daemon_user
    if daemon not in grp.getgrnam(agency).gr_mem and os.geteuid() == 0:
        _run("usermod", "--append", "--groups", agency, daemon)


def end_sessions(config: Config, agency: str) -> int:
    """End every open session of the agency (after one of its keys was removed): sshd checks
    a key only when a session begins, so its sessions would otherwise outlive the key.

    Each session's process runs as the agency's system user, which exists for the exchange
    alone (``ensure_account``: no shell, no home): every process of that user is one of its
    sessions, and ends with SIGTERM. Only root may do it (as only root may run ``agency``
    commands in OpenSSH mode); returns how many processes were ended.
    """
    try:
        uid = pwd.getpwnam(agency).pw_uid
    except KeyError:
        return 0
    daemon = {os.geteuid()}
    try:
        daemon.add(pwd.getpwnam(config.openssh_daemon_user).pw_uid)
    except KeyError:
        pass
    if uid == 0 or uid in daemon or os.geteuid() != 0:
        log.warning("the sessions of %s were not ended (run as root)", agency)
        return 0
    ended = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line.split()[1:] for line in status.read_text().splitlines()
                        if line.startswith("Uid:"))
            if str(uid) in uids:
                os.kill(int(status.parent.name), signal.SIGTERM)
                ended += 1
        except (OSError, StopIteration, ValueError):
            continue  # gone meanwhile
    return ended


def _ids(config: Config, agency: str) -> tuple[int, int]:
    try:
        daemon_uid = pwd.getpwnam(config.openssh_daemon_user).pw_uid
    except KeyError:
        daemon_uid = os.geteuid()
    return daemon_uid, grp.getgrnam(agency).gr_gid


def prepare_tree(config: Config, agency: str, ssh_key_lines: list[str], inbox: tuple[str, ...],
                 outbox: tuple[str, ...]) -> None:
    """The chroot, its folders with the ownership sshd needs, and the login key."""
    root = Path(config.openssh_root)
    chroot = root / agency
    uid, gid = _ids(config, agency)
    is_root = os.geteuid() == 0
    for path in (root, chroot, chroot / "inbox", chroot / "outbox"):
        path.mkdir(mode=0o755, exist_ok=True)
        os.chmod(path, 0o755)
        if is_root:
            os.chown(path, 0, 0)
    for area, flows in (("inbox", inbox), ("outbox", outbox)):
        for flow in flows:
            folder = chroot / area / flow
            folder.mkdir(exist_ok=True)
            if is_root:
                os.chown(folder, uid, gid)
            os.chmod(folder, 0o2770)
    keys = root / ".keys"
    keys.mkdir(mode=0o755, exist_ok=True)
    os.chmod(keys, 0o755)
    if is_root:
        os.chown(keys, 0, 0)
    key_file = keys / agency
    key_file.write_text("".join(line + "\n" for line in ssh_key_lines), encoding="ascii")
    os.chmod(key_file, 0o644)
    if is_root:
        os.chown(key_file, 0, 0)


class Watcher:
    """Watches every agency's inbox folders for complete uploads (watchdog / inotify)."""

    def __init__(self, root: Path, take: Take) -> None:
        self.root = root
        self.take = take
        self._observer = Observer()
        self._lock = threading.Lock()

    def _claim(self, path: Path) -> None:
        try:
            relative = path.relative_to(self.root).parts
        except ValueError:
            return
        if len(relative) != 4 or relative[1] != "inbox":
            return
        agency, _, flow, name = relative
        if is_temporary_name(name):
            return  # the upload-then-rename convention: wait for the rename
        with self._lock:  # one taker at a time: a file is taken once
            try:
                if path.is_symlink():
                    log.warning("a symbolic link in the inbox %s/%s was left alone", agency,
                                flow, extra={"agency": agency, "flow": flow})
                    return
                if not path.is_file():
                    return
                # the spool copies it from a descriptor it checks itself (a name swapped for
                # a link after the checks above is refused there: NotAPlainFile)
                self.take(agency, flow, path, name)
            except Exception as e:  # an upload that cannot be taken stays for the next scan
                log.error("an upload in %s/%s could not be taken (%s)", agency, flow,
                          type(e).__name__, extra={"agency": agency, "flow": flow})

    def scan(self) -> None:
        """Take what arrived while the daemon was not watching."""
        for path in sorted(self.root.glob("*/inbox/*/*")):
            self._claim(path)

    def start(self) -> None:
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_closed(self, event: FileSystemEvent) -> None:
                if isinstance(event, FileClosedEvent) and not event.is_directory:
                    watcher._claim(Path(os.fsdecode(event.src_path)))

            def on_moved(self, event: FileSystemEvent) -> None:
                if isinstance(event, FileMovedEvent) and not event.is_directory:
                    watcher._claim(Path(os.fsdecode(event.dest_path)))

        self._observer.schedule(Handler(), str(self.root), recursive=True)
        self._observer.start()
        self.scan()

    def alive(self) -> bool:
        return self._observer.is_alive()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(10)

