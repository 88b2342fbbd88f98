"""One daemon per home: the lock the daemon holds, and whether a daemon holds it now."""

from __future__ import annotations

import fcntl
import os
from typing import IO

from exchanged.errors import ConfigError
from exchanged.home.paths import Home


def lock_file(home: Home) -> str:
    return str(home.root / "exchanged.pid")


def take_lock(home: Home) -> IO[str]:
    """Hold the home's lock for as long as the returned file stays open; refuses when another
    daemon holds it (a second daemon would wipe the first one's work area)."""
    f = open(lock_file(home), "a+", encoding="ascii")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip() or "unknown"
        f.close()
        raise ConfigError(f"another exchanged is already running on {home.root} "
                          f"(pid {pid})") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def daemon_running(home: Home) -> bool:
    """Is a daemon holding the home's lock? (Taking it for an instant tells.)"""
    path = home.root / "exchanged.pid"
    if not path.exists():
        return False
    with open(path, encoding="ascii") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return False
