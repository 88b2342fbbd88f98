"""The worker pool and its timers: batches taken from a queue, one at a time per worker.

A worker runs :meth:`~exchanged.batch.pipeline.Pipeline.advance` for one batch and
sorts what stopped it by the family of :class:`~exchanged.errors.Problem`:

- :class:`~exchanged.errors.Unavailable`: the exchange cannot write; intake stops
  (fail closed) and the batch is queued again in a few seconds;
- :class:`~exchanged.errors.RetryLater`: this batch only; it is queued again after a
  growing delay;
- anything else reaching a worker is a bug in the exchange: logged (its type only),
  and the batch is retried like a RetryLater; a worker never dies.

Timers are threads that put a uid back on the queue; a clean stop cancels them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from exchanged.errors import RetryLater, Unavailable

log = logging.getLogger("exchanged.pipeline")

#: the delay before a batch that found the exchange unable to write is tried again
RETRY_SECONDS = 5.0
#: the delays before a batch that must wait is tried again (the last one repeats)
RETRY_DELAYS = (10.0, 60.0, 300.0, 900.0)
STOP = ""


class Timers:
    """Callbacks after a delay, each on a daemon thread; cancelled all at once on stop."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._timers: list[threading.Timer] = []
        self._guard = threading.Lock()

    def after(self, delay: float, target: Callable[..., object], *args: object) -> None:
        if self._stopping.is_set():
            return
        timer = threading.Timer(delay, target, args=args)
        timer.daemon = True
        timer.start()
        with self._guard:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]

    def cancel(self) -> None:
        self._stopping.set()
        with self._guard:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()


class Workers:
    """``count`` threads advancing the batches put on the queue."""

    def __init__(self, count: int, advance: Callable[[str], None], *,
                 pause: Callable[[str], None], release: Callable[[], None]) -> None:
        """``advance`` takes one batch as far as it goes; ``pause`` is told why intake must
        stop when a batch finds the exchange unable to write; ``release`` frees what a
        worker's thread holds once a batch is done (its ledger connection)."""
        self._count = count
        self._advance = advance
        self._pause = pause
        self._release = release
        self._queue: queue.Queue[str] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Condition()
        self._busy = 0
        self._retries: dict[str, int] = {}
        self.timers = Timers()

    def start(self) -> None:
        for i in range(self._count):
            t = threading.Thread(target=self._work, name=f"pipeline-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float) -> bool:
        """Stop the workers (each finishes its batch); True if every one has ended."""
        self.timers.cancel()
        for _ in self._threads:
            self._queue.put(STOP)
        for t in self._threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def put(self, uid: str) -> None:
        self._queue.put(uid)

    def alive(self) -> bool:
        """Every worker thread is running (the watchdog pings only then)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def depth(self) -> int:
        return self._queue.qsize()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the queue is empty and no batch is in progress (for tests and the demo)."""
        with self._idle:
            return self._idle.wait_for(
                lambda: self._busy == 0 and self._queue.empty(), timeout=timeout
            )

    def _work(self) -> None:
        while True:
            uid = self._queue.get()
            if uid == STOP:
                return
            with self._idle:
                self._busy += 1
            try:
                self._advance(uid)
                self._retries.pop(uid, None)
            except Unavailable as e:
                self._pause(str(e))
                self.timers.after(RETRY_SECONDS, self._queue.put, uid)
            except RetryLater as e:
                self._retry_later(uid, str(e), e.delay)
            except Exception:  # the last guard: a worker never dies
                log.error("batch %s could not be advanced", uid, exc_info=True,
                          extra={"uid": uid})
                self._retry_later(uid, "unexpected error")
            finally:
                self._release()
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _retry_later(self, uid: str, why: str, delay: float | None = None) -> None:
        n = self._retries.get(uid, 0)
        self._retries[uid] = n + 1
        if delay is None:
            delay = RETRY_DELAYS[min(n, len(RETRY_DELAYS) - 1)]
        log.warning("batch %s will be retried in %.0f s: %s", uid, delay, why,
                    extra={"uid": uid})
        self.timers.after(delay, self._queue.put, uid)
