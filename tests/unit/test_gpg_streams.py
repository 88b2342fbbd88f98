"""The threads between gpg's pipes and the exchange: read-ahead and write-behind."""

from __future__ import annotations

import io
import os
import subprocess
import threading

import pytest

from exchanged.crypto.streams import _ReadAhead, _WriteBehind


def test_read_ahead_gives_the_stream_in_order_whatever_the_sizes() -> None:
    data = os.urandom(3_000_000)
    ahead = _ReadAhead(io.BytesIO(data), chunk=65536, depth=4)
    parts = []
    for size in (1, 10, 65536, 1_000_000, 7) * 20:
        part = ahead.read(size)
        if not part:
            break
        parts.append(part)
    while part := ahead.read(1 << 20):
        parts.append(part)
    ahead.stop()
    assert b"".join(parts) == data


def test_read_ahead_hands_over_a_read_error() -> None:
    class Broken(io.RawIOBase):
        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            raise OSError(5, "Input/output error")

        def readable(self) -> bool:
            return True

    ahead = _ReadAhead(Broken(), chunk=1024, depth=2)  # type: ignore[arg-type]
    with pytest.raises(OSError):
        ahead.read(10)
    ahead.stop()


def test_write_behind_writes_everything_before_closing() -> None:
    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    behind = _WriteBehind(proc.stdin, depth=2)
    data = os.urandom(5_000_000)
    for start in range(0, len(data), 300_000):
        behind.write(data[start:start + 300_000])
    behind.close()
    reader.join()
    proc.wait()
    assert out[0] == data


def test_write_behind_reports_a_reader_that_went_away() -> None:
    proc = subprocess.Popen(["head", "-c", "10"], stdin=subprocess.PIPE, bufsize=0,
                            stdout=subprocess.DEVNULL)
    assert proc.stdin is not None
    behind = _WriteBehind(proc.stdin, depth=1)
    behind.write(b"0123456789 and more")
    proc.wait()
    with pytest.raises(BrokenPipeError):
        for _ in range(200):
            behind.write(b"x" * 65536)
    behind.close()  # closing after the error does not raise: gpg's status says what happened
