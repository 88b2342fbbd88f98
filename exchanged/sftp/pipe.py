"""A channel's input buffer that does not copy what it still holds at every read.

paramiko's ``BufferedPipe`` keeps a channel's unread bytes in one ``array`` and removes
what a read takes from its front (``del buffer[:n]``), which moves everything behind it:
with a client's two megabytes of SFTP writes in flight, reading a 4-byte length moves two
megabytes. That copying was the largest single cost of an upload through the embedded
front door (docs/performance.md). :class:`ChunkPipe` keeps the chunks the transport fed,
as they came, and a read takes from the first of them; it is put in place of the channel's
pipe when the SFTP subsystem starts (:func:`install`), before the client sends any data.

The SFTP server reads a request whole (:meth:`ChunkPipe.wait_for`): its thread is woken
once per request, not once for each SSH packet of it (a 255 KiB write comes in eight).
"""

from __future__ import annotations

import threading
import time
from collections import deque

import paramiko
from paramiko.buffered_pipe import PipeTimeout


class ChunkPipe:
    """``paramiko.buffered_pipe.BufferedPipe``'s interface over a queue of chunks."""

    def __init__(self) -> None:
        self._cv = threading.Condition(threading.Lock())
        self._event: threading.Event | None = None
        self._chunks: deque[memoryview] = deque()
        self._size = 0
        self._closed = False
        #: how many bytes the waiting reader needs before it is woken (0: no reader waits)
        self._wanted = 0

    def set_event(self, event: threading.Event) -> None:
        with self._cv:
            self._event = event
            if self._closed or self._size:
                event.set()
            else:
                event.clear()

    def feed(self, data: bytes) -> None:
        with self._cv:
            if self._event is not None:
                self._event.set()
            if data:
                self._chunks.append(memoryview(bytes(data)))
                self._size += len(data)
            # wake the reader only once what it waits for is here: waking it costs more
            # (a Python Condition, a thread switch, the GIL) than the rest of a feed
            if self._wanted and self._size >= self._wanted:
                self._cv.notify_all()

    def read_ready(self) -> bool:
        with self._cv:
            return self._size > 0

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        with self._cv:
            if not self._size:
                if self._closed:
                    return b""
                if timeout == 0.0:
                    raise PipeTimeout()
                # every wait ends: paramiko passes the channel's timeout (None: the channel's
                # own close, which the transport always delivers when the connection ends)
                if not self._wait(1, timeout):
                    raise PipeTimeout()
                if not self._size:
                    return b""
            out = self._take(nbytes)
            if not self._size and self._event is not None and not self._closed:
                self._event.clear()
            return out

    def wait_for(self, nbytes: int) -> None:
        """Wait until ``nbytes`` are here or the pipe is closed (the transport closes it
        when the connection ends, however it ends: the wait ends with it). ``nbytes`` must
        fit in the channel's window, or it never comes."""
        with self._cv:
            self._wait(nbytes, None)

    def _wait(self, nbytes: int, timeout: float | None) -> bool:
        """Wait (the lock held) until ``nbytes`` are here or the pipe is closed: False if
        ``timeout`` ran out first."""
        self._wanted = nbytes
        try:
            while self._size < nbytes and not self._closed:
                then = time.monotonic()
                self._cv.wait(timeout)
                if timeout is not None:
                    timeout -= time.monotonic() - then
                    if timeout <= 0.0 and self._size < nbytes and not self._closed:
                        return False
            return True
        finally:
            self._wanted = 0

    def _take(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` from the front (the lock held): a slice of the first chunk, or
        several chunks joined when a read spans them."""
        first = self._chunks[0]
        if len(first) > nbytes:
            self._chunks[0] = first[nbytes:]
            self._size -= nbytes
            return bytes(first[:nbytes])
        parts = []
        wanted = nbytes
        while self._chunks and wanted:
            chunk = self._chunks[0]
            if len(chunk) <= wanted:
                parts.append(chunk)
                self._chunks.popleft()
                wanted -= len(chunk)
            else:
                parts.append(chunk[:wanted])
                self._chunks[0] = chunk[wanted:]
                wanted = 0
        self._size -= nbytes - wanted
        return b"".join(parts)

    def empty(self) -> bytes:
        with self._cv:
            out = b"".join(self._chunks)
            self._chunks.clear()
            self._size = 0
            if self._event is not None and not self._closed:
                self._event.clear()
            return out

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            if self._event is not None:
                self._event.set()

    def __len__(self) -> int:
        with self._cv:
            return self._size


def install(channel: paramiko.Channel) -> None:
    """Put a :class:`ChunkPipe` in place of ``channel``'s input buffer, keeping anything
    already buffered (nothing, when the client waits for the subsystem's reply)."""
    old = channel.in_buffer
    new = ChunkPipe()
    new.feed(old.empty())
    channel.in_buffer = new  # type: ignore[assignment]
