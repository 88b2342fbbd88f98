"""One authenticated SFTP connection: its agency, its open files, its last activity."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

#: files one session may hold open at once (each is a file descriptor here)
MAX_OPEN_FILES = 32


@dataclass
class Session:
    """One authenticated connection."""

    agency: str
    remote: str
    #: the id the Door gave the session when it put it on record ("" until then)
    sid: str = ""
    #: uploads handed over in this session: path -> (size, mtime), so a client's
    #: stat or setstat right after its upload succeeds (WinSCP sets the time)
    delivered: dict[str, tuple[int, int]] = field(default_factory=dict)
    open_files: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: when the client last asked for anything (monotonic seconds): the idle limit
    last_active: float = field(default_factory=time.monotonic)

    def take_file(self) -> bool:
        with self.lock:
            if self.open_files >= MAX_OPEN_FILES:
                return False
            self.open_files += 1
            return True

    def release_file(self) -> None:
        with self.lock:
            self.open_files = max(0, self.open_files - 1)

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_active
