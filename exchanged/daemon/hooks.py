"""Event hooks: a command run, or JSON POSTed to a URL, when something happens that an
administrator wants to hear of (SFTPGo's "event actions").

The ledger is the queue. Every event is a ledger entry already (written in the same
transaction as the change it records), so a hook's worker thread reads the ledger
after the last entry it delivered and never stands in the way of intake or the
pipeline: a slow or dead receiver delays only its own hook. Each delivery ends in a
ledger entry, ``hook.delivered`` or ``hook.failed``, naming the entry it delivered
(``event_seq``); after a restart a hook resumes after the newest of these, so an
event is delivered at least once (a crash between the delivery and its entry
delivers it again, with the same ``id`` for the receiver to drop). A hook that has
never delivered anything starts with the events after the daemon's start.

Every wait ends: a delivery is tried once and again after each of
``hook_retry_delays``, each try bounded by the hook's ``timeout_seconds``, then it is
recorded as failed and the hook goes on to the next event.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exchanged import __version__
from exchanged.daemon.hookevents import KIND_EVENTS, document, environment, event_of
from exchanged.home.hooksettings import HookSettings
from exchanged.ledger import Entry, Ledger
from exchanged.ledger.store import ENTRY_COLUMNS

log = logging.getLogger("exchanged.hooks")

#: how often a hook looks for new events
POLL_SECONDS = 0.5
#: entries read at once
BATCH = 100
#: the wait before a hook's ledger entry is tried again (the ledger cannot be written)
RECORD_RETRY_SECONDS = 5.0
#: the most of a receiver's answer read (and thrown away)
MAX_RESPONSE_BYTES = 64 * 1024
#: what a command hook may find on its PATH; nothing else of the daemon's environment passes
COMMAND_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    #: what happened, in a few words: "HTTP 204", "exit 0", "timeout after 10 s"
    status: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: the document goes only where the administrator said."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post(hook: HookSettings, body: bytes, event: str, event_id: str) -> Outcome:
    request = urllib.request.Request(hook.url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"exchanged/{__version__}",
        "X-Exchanged-Event": event, "Idempotency-Key": event_id})
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(request, timeout=hook.timeout_seconds) as response:
            response.read(MAX_RESPONSE_BYTES)
            code = int(response.status)
    except urllib.error.HTTPError as e:
        return Outcome(False, f"HTTP {e.code}")
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return Outcome(False, f"cannot reach it ({type(reason).__name__})")
    return Outcome(200 <= code < 300, f"HTTP {code}")


def run_command(hook: HookSettings, body: bytes, env: dict[str, str],
                stop: threading.Event | None = None) -> Outcome:
    """Run the hook's command (no shell) with the document on its standard input; its own
    process group, killed whole at the timeout (or when the daemon stops)."""
    full = {"PATH": COMMAND_PATH, "LANG": "C.UTF-8", **hook.env, **env}
    try:
        proc = subprocess.Popen(list(hook.command), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=full, cwd="/", start_new_session=True)
    except OSError as e:
        return Outcome(False, f"cannot run it ({type(e).__name__})")
    deadline = time.monotonic() + hook.timeout_seconds
    status = ""
    feed: bytes | None = body
    while True:
        try:
            # looked at twice a second: a stopping daemon does not wait for a slow hook (the
            # input is given once; communicate keeps feeding it on the later calls)
            proc.communicate(feed, timeout=max(0.01, min(0.5, deadline - time.monotonic())))
            break
        except subprocess.TimeoutExpired:
            feed = None
            if stop is not None and stop.is_set():
                status = "stopped with the daemon"
            elif time.monotonic() >= deadline:
                status = f"timeout after {hook.timeout_seconds:g} s"
            else:
                continue
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        return Outcome(False, status)
    return Outcome(proc.returncode == 0, f"exit {proc.returncode}")


class HookWorker:
    """One hook's thread: events from the ledger, delivered in order, each on record."""

    def __init__(self, hook: HookSettings, ledger: Ledger, delays: tuple[float, ...],
                 exchange: str, stop: threading.Event,
                 deliver: Callable[[HookSettings, bytes, str, str, dict[str, str]], Outcome]
                 | None = None) -> None:
        self.hook = hook
        self.ledger = ledger
        self.delays = delays
        self.exchange = exchange
        self._stop = stop
        self._deliver = deliver or self._default_deliver
        self._thread: threading.Thread | None = None
        #: the last entry delivered (or passed over), and the last one looked at
        self.cursor = 0
        self._scanned = 0
        self._ledger_id = ""

    def _default_deliver(self, hook: HookSettings, body: bytes, event: str, event_id: str,
                         env: dict[str, str]) -> Outcome:
        if hook.url:
            return post(hook, body, event, event_id)
        return run_command(hook, body, env, self._stop)

    def prepare(self) -> None:
        """Where this hook resumes: after its newest delivery, else after the ledger's head
        now (called at start-up, before anything of this run is recorded)."""
        self._ledger_id = self.ledger.ledger_id()
        row = self.ledger.connection().execute(
            "SELECT json_extract(data, '$.event_seq') FROM ledger WHERE kind IN "
            "('hook.delivered', 'hook.failed') AND json_extract(data, '$.hook') = ? "
            "ORDER BY seq DESC LIMIT 1", (self.hook.name,)).fetchone()
        self.cursor = int(row[0]) if row is not None else self.ledger.head()[0]
        self._scanned = self.cursor

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"hook-{self.hook.name}",
                                        daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    entries = self._next()
                except Exception as e:  # the ledger cannot be read now: look again later
                    log.warning("hook %s cannot read the ledger (%s)", self.hook.name,
                                type(e).__name__)
                    self.ledger.close()
                    entries = []
                for entry in entries:
                    if self._stop.is_set():
                        return
                    self._handle(entry)
                if not entries:
                    self._stop.wait(POLL_SECONDS)
        finally:
            self.ledger.close()

    def _next(self) -> list[Entry]:
        """The next entries of the kinds that raise events, after the ones looked at."""
        head = self.ledger.head()[0]
        marks = ",".join("?" * len(KIND_EVENTS))
        rows = self.ledger.connection().execute(
            f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE seq > ? AND seq <= ? "
            f"AND kind IN ({marks}) ORDER BY seq LIMIT ?",
            (self._scanned, head, *KIND_EVENTS, BATCH)).fetchall()
        entries = [Entry(*r) for r in rows]
        # nothing more up to the head: the next look starts there (not a scan from the cursor)
        self._scanned = entries[-1].seq if len(entries) == BATCH else head
        return entries

    def _handle(self, entry: Entry) -> None:
        event = event_of(entry)
        if event is None or event not in self.hook.events:
            self.cursor = entry.seq
            return
        doc = document(self.ledger, entry, event, self.exchange, self._ledger_id)
        body = json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8")
        env = environment(doc, self.hook.name)
        attempts = 0
        outcome = Outcome(False, "not tried")
        for wait in (0.0, *self.delays):
            if wait and self._stop.wait(wait):
                return  # stopping: delivered after the restart, from the cursor
            attempts += 1
            outcome = self._deliver(self.hook, body, event, doc["id"], env)
            if outcome.ok:
                break
            if self._stop.is_set():
                return  # not recorded: delivered again after the restart
            log.warning("hook %s: %s (event %d) not delivered, try %d: %s", self.hook.name,
                        event, entry.seq, attempts, outcome.status)
        self._record(entry, event, attempts, outcome)
        self.cursor = entry.seq

    def _record(self, entry: Entry, event: str, attempts: int, outcome: Outcome) -> None:
        kind = "hook.delivered" if outcome.ok else "hook.failed"
        target = "url" if self.hook.url else "command"
        while True:
            try:
                self.ledger.append(kind, agency=entry.agency, flow=entry.flow,
                                   batch=entry.batch, actor="exchange", hook=self.hook.name,
                                   target=target, event=event, event_seq=entry.seq,
                                   attempts=attempts, status=outcome.status)
                break
            except Exception as e:  # delivered already: only its record waits for the ledger
                self.ledger.close()
                log.error("hook %s: delivery of event %d cannot be recorded (%s)",
                          self.hook.name, entry.seq, type(e).__name__)
                if self._stop.wait(RECORD_RETRY_SECONDS):
                    return
        if outcome.ok:
            log.info("hook %s: %s (event %d) delivered (%s)", self.hook.name, event, entry.seq,
                     outcome.status)
        else:
            log.error("hook %s: %s (event %d) failed after %d tries: %s", self.hook.name,
                      event, entry.seq, attempts, outcome.status)


class Hooks:
    """Every configured hook's worker."""

    def __init__(self, hooks: tuple[HookSettings, ...], ledger: Ledger,
                 delays: tuple[float, ...], exchange: str) -> None:
        self._stop = threading.Event()
        self.workers = [HookWorker(h, ledger, delays, exchange, self._stop) for h in hooks]

    def prepare(self) -> None:
        for worker in self.workers:
            worker.prepare()

    def start(self) -> None:
        for worker in self.workers:
            worker.start()
        if self.workers:
            log.info("event hooks: %s", ", ".join(w.hook.name for w in self.workers))

    def stop(self) -> None:
        self._stop.set()
        for worker in self.workers:
            # a command or request under way ends at its own timeout; not waited for longer
            worker.join(5.0)
