"""The channel input buffer of the embedded front door (exchanged.sftp.pipe)."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
from paramiko.buffered_pipe import BufferedPipe, PipeTimeout

from exchanged.sftp.pipe import ChunkPipe


def test_reads_of_any_size_give_what_paramikos_pipe_gives() -> None:
    rng = random.Random(5)
    ours, theirs = ChunkPipe(), BufferedPipe()
    for _ in range(300):
        if rng.random() < 0.5:
            data = os.urandom(rng.choice((0, 1, 4, 13, 4096, 40_000)))
            ours.feed(data)
            theirs.feed(data)
        else:
            n = rng.choice((1, 4, 9, 32_768, 100_000))
            if theirs.read_ready():
                assert ours.read(n, 0.0) == theirs.read(n, 0.0)
            assert len(ours) == len(theirs._buffer)
            assert ours.read_ready() is theirs.read_ready()
    assert ours.empty() == theirs.empty()
    assert not ours.read_ready()


def test_a_read_waits_for_data_and_its_timeout_ends_the_wait() -> None:
    pipe = ChunkPipe()
    with pytest.raises(PipeTimeout):
        pipe.read(10, 0.0)
    start = time.monotonic()
    with pytest.raises(PipeTimeout):
        pipe.read(10, 0.2)
    assert time.monotonic() - start >= 0.2
    threading.Timer(0.1, pipe.feed, args=(b"late",)).start()
    assert pipe.read(10, 5.0) == b"late"


def test_close_ends_every_wait_and_reads_what_is_left() -> None:
    pipe = ChunkPipe()
    event = threading.Event()
    pipe.set_event(event)
    assert not event.is_set()
    pipe.feed(b"abc")
    assert event.is_set()
    threading.Timer(0.1, pipe.close).start()
    assert pipe.read(2) == b"ab"
    assert pipe.read(10) == b"c"
    assert pipe.read(10) == b""  # closed: no wait
    assert event.is_set()


def test_wait_for_waits_for_the_whole_request_and_close_ends_it() -> None:
    pipe = ChunkPipe()
    parts = [os.urandom(32_768) for _ in range(8)]

    def feed() -> None:
        for part in parts:
            time.sleep(0.01)
            pipe.feed(part)

    threading.Thread(target=feed).start()
    pipe.wait_for(8 * 32_768)
    assert len(pipe) == 8 * 32_768
    # read whole, in one piece
    assert pipe.read(8 * 32_768) == b"".join(parts)
    # a reader waiting for more than ever comes is let go when the channel closes
    pipe.feed(b"abc")
    threading.Timer(0.1, pipe.close).start()
    pipe.wait_for(1000)
    assert pipe.read(1000) == b"abc"
