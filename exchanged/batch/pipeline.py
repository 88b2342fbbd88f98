"""A batch's life: receive → open → admit → process → answer.

This is the one place that reads top to bottom as what happens to an upload
(:meth:`Pipeline.advance`). Each stage change is a row update in ``ledger.db``
committed in the same SQLite transaction as the ledger entry that records it,
so a restart resumes every batch exactly where it stopped, and every received
upload ends in exactly one outcome:

- ``received``  the upload is out of the agency's reach, its SHA-256 recorded;
- ``opened``    decrypted and verified: encrypted to the exchange, signed by the
                agency's pinned key (the plaintext is in the work area only);
- ``admitted``  the policy allowed it (the decision and its rules recorded);
- ``rejected``  a reason was found at any of the stages above;
- ``processed`` the answer (or the rejection) is sealed: signed by the exchange
                and encrypted to the agency, in the spool;
- ``answered``  the outcome is in the agency's outbox.

What can go wrong, and what then happens:

- the sender's fault (a bad signature, a column too many): the batch is
  *rejected* with the reasons;
- the exchange cannot write (disk full, ledger unwritable, I/O error): the
  batch stays where it is, intake stops (fail closed) and the batch is retried
  until it works; nothing is charged to the batch;
- gpg cannot seal an outcome (the agent restarting, an agency key that expired):
  the batch stays where it is and is retried with a growing delay;
- anything else is a bug: the batch is answered EXCHANGE_ERROR, with the
  ledger entry that records the error;
- the daemon dies: at start-up the stage is repeated (the work area is wiped,
  the upload decrypted again). A batch that was being processed at four
  start-ups is a poison batch and is answered EXCHANGE_ERROR (Mailman's rule).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, NoReturn

from exchanged.batch.spool import Spool, Upload, UploadMeta
from exchanged.batch.state import (
    ADMITTED,
    ANSWERED,
    OPENED,
    PROCESSED,
    RECEIVED,
    REJECTED,
    Batch,
    ReferenceData,
    State,
)
from exchanged.crypto.openpgp import Decryption, Opened, OpenPGP, SealFailed, Sealing
from exchanged.csvio import CsvReader
from exchanged.errors import LedgerError, Reason, Refused, RetryLater, Unavailable
from exchanged.flows import KINDS, FlowContext, FlowResult
from exchanged.home import Config, Home, atomic_write, fsync_dir
from exchanged.home.agencies import Agencies
from exchanged.home.drop import PlantedLink, open_drop_folder, place
from exchanged.ids.redact import looks_personal, mask
from exchanged.ledger import Ledger, Transaction, format_ts, utc_now
from exchanged.policy import Flow, PolicySet, Request, decide
from exchanged.reasons import reason

log = logging.getLogger("exchanged.batch.pipeline")

BATCH_NAME_RE = re.compile(r"(?P<id>[A-Za-z0-9._-]{1,64})\.csv\.(?:gpg|pgp|asc)")
#: a batch that was being processed at this many start-ups is a poison batch
MAX_RECOVERIES = 3
RETRY_SECONDS = 5.0
SEAL_RETRY_SECONDS = (10.0, 60.0, 300.0, 900.0)
#: free space the work area needs before a batch is decrypted, beyond the upload's size
FREE_SPACE_MARGIN = 64 * 1024 * 1024
STOP = ""
RESOURCE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EMFILE,
                   errno.ENFILE)
RESOURCE_SQLITE = ("disk is full", "disk i/o error", "readonly", "unable to open database",
                   "database is locked")


def batch_id_of(name: str) -> str | None:
    """The batch id a file name carries, or None if the name breaks the rule.

    >>> batch_id_of("2026-11-kpm.csv.gpg")
    '2026-11-kpm'
    >>> batch_id_of("../x.csv.gpg") is None, batch_id_of("b1.csv.gpg\\n") is None
    (True, True)
    """
    m = BATCH_NAME_RE.fullmatch(name)
    if m is None or m["id"].startswith("."):
        return None
    return m["id"]


def batch_id_looks_personal(batch_id: str) -> bool:
    """A 16- or 18-digit number, also when broken up by ``.``, ``_`` or ``-``.

    >>> batch_id_looks_personal("kpm-3171.0141.0190.0001"), batch_id_looks_personal("2026-11-w4")
    (True, False)
    """
    return looks_personal(batch_id) or looks_personal(re.sub(r"[._-]", "", batch_id))


def shown_name(name: str) -> str:
    """A file name made safe to quote back: printable ASCII, at most 80 characters, digits masked."""
    safe = mask("".join(ch if 32 < ord(ch) < 127 else "?" for ch in name))
    return repr(safe[:80] + ("..." if len(safe) > 80 else ""))


class PolicyHolder:
    """The policy set in force; replaced as a whole on reload."""

    def __init__(self, policy: PolicySet) -> None:
        self._policy = policy
        self._lock = threading.Lock()

    def get(self) -> PolicySet:
        with self._lock:
            return self._policy

    def set(self, policy: PolicySet) -> None:
        with self._lock:
            self._policy = policy


@dataclass(frozen=True)
class Sealed:
    kind: str  # "result" | "rejected"
    sha256: str


class Undeliverable(RetryLater):
    """An outcome cannot go into the agency's outbox as it is now (a folder of its tree is
    a link or not a folder): the batch keeps its stage and is delivered later."""


def _resource_error(error: BaseException) -> str | None:
    """If ``error`` means the exchange cannot write or read its files, say what; else None."""
    if isinstance(error, (Unavailable, LedgerError)):
        return str(error)
    if isinstance(error, OSError) and error.errno in RESOURCE_ERRNOS:
        return os.strerror(error.errno or 0)
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        if any(t in text for t in RESOURCE_SQLITE):
            return f"the database cannot be written ({text})"
    return None


#: the same, for the front door (service.py), which stops intake on what it finds
resource_error = _resource_error


class Pipeline:
    def __init__(
        self,
        home: Home,
        config: Config,
        ledger: Ledger,
        openpgp: OpenPGP,
        policy: PolicyHolder,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.home = home
        self.config = config
        self.ledger = ledger
        self.openpgp = openpgp
        self.policy = policy
        self.clock = clock
        self.state = State(ledger)
        self.spool = Spool(home)
        self.agencies = Agencies(home)
        self.references = ReferenceData(home, self.state)
        self.exchange_fpr = openpgp.exchange_fingerprint()
        self._queue: queue.Queue[str] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._busy = 0
        self._retries: dict[str, int] = {}
        self._timers: list[threading.Timer] = []
        # one load per dataset at a time, in the order they were received
        self._dataset_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        #: set while the exchange cannot work (disk full, ledger unwritable): intake refused
        self.unavailable = threading.Event()
        #: held while exchange.available is recorded, so that it is recorded once
        self._availability = threading.Lock()
        #: a probe (can the exchange write again?) is scheduled
        self._probe_pending = False
        #: uploads discarded while the ledger could not record it: their files stay in
        #: spool/uploads/ until their upload.interrupted entry is written (by the probe, or
        #: by recover() after a restart), so that no discarding goes unrecorded
        self._unrecorded: list[tuple[Upload, int, str]] = []
        #: batches whose outbox was found to be a link, recorded once per batch and run
        self._undeliverable: set[str] = set()

    # -- intake -----------------------------------------------------------------------------

    def new_upload(self, agency: str, flow: str, name: str) -> Upload:
        if self.unavailable.is_set():
            raise Unavailable("the exchange cannot accept uploads right now")
        return self.spool.new_upload(agency, flow, name)

    def adopt(self, agency: str, flow: str, path: Path, name: str) -> Upload:
        """A held upload renamed to its final name becomes an upload like any other."""
        if self.unavailable.is_set():
            raise Unavailable("the exchange cannot accept uploads right now")
        return self.spool.adopt(path, agency, flow, name)

    def receive(self, upload: Upload) -> str:
        """An upload was closed normally: it becomes a received batch, queued for processing.

        If it cannot be recorded, it is not received at all (the client is told its
        upload failed) and intake stops until the exchange can write again.
        """
        meta = upload.finish(self._now())
        try:
            self._record_received(meta, recovered=False)
        except Exception as e:
            self.spool.unreceive(meta.uid)
            self.ledger.close()  # this thread's connection may be left unable to write
            log.error("upload %s could not be recorded (%s): refused", meta.uid,
                      type(e).__name__)
            self.cannot_write(_resource_error(e) or type(e).__name__)
            raise Unavailable("the upload could not be recorded") from None
        self._queue.put(meta.uid)
        return meta.uid

    def discard(self, upload: Upload, why: str) -> None:
        """An upload that never completed: recorded, then dropped; never processed.

        The entry comes first: if the ledger cannot be written, the upload's file stays
        (closed) where it is, intake stops, and the probe records and removes it once the
        ledger can be written again (a restart in between: recover() does).
        """
        size = upload.size
        upload.close()
        try:
            self._record_interrupted(upload.agency, upload.flow, upload.uid, size, why)
        except Exception as e:
            self.ledger.close()  # this thread's connection may be left unable to write
            with self._guard:
                self._unrecorded.append((upload, size, why))
            log.error("upload %s from %s/%s could not be recorded as discarded (%s): kept "
                      "until it can be", upload.uid, upload.agency, upload.flow,
                      type(e).__name__)
            self.cannot_write(_resource_error(e) or type(e).__name__)
            return
        upload.discard()
        log.info("upload %s from %s/%s discarded: %s", upload.uid, upload.agency, upload.flow, why)

    def _record_interrupted(self, agency: str | None, flow: str | None, uid: str, size: int,
                            why: str) -> None:
        """Write upload.interrupted for ``uid`` unless it is written already (a discard whose
        files outlived its entry, the daemon stopped between the two): exactly once."""
        with self.ledger.transaction() as txn:
            done = txn.execute(
                "SELECT 1 FROM ledger WHERE kind = 'upload.interrupted' "
                "AND json_extract(data, '$.uid') = ? LIMIT 1", (uid,)).fetchone()
            if done is None:
                fields: dict[str, Any] = {"uid": uid, "bytes": size, "why": why}
                if agency is not None:
                    fields.update(agency=agency, flow=flow, actor=agency)
                txn.append("upload.interrupted", **fields)

    def _record_unrecorded(self) -> None:
        """Record the discards the ledger could not record when they happened, then drop them."""
        with self._guard:
            pending, self._unrecorded = self._unrecorded, []
        try:
            while pending:
                upload, size, why = pending[0]
                self._record_interrupted(upload.agency, upload.flow, upload.uid, size, why)
                upload.discard()
                pending.pop(0)
                log.info("upload %s from %s/%s discarded: %s", upload.uid, upload.agency,
                         upload.flow, why)
        finally:
            if pending:
                with self._guard:
                    self._unrecorded[:0] = pending

    def cannot_write(self, why: str) -> None:
        """Something (a batch, an upload, the front door recording a login) found that the
        exchange cannot write: intake stops, and a probe records exchange.available once
        it can write again, also when no batch is waiting to find it out (fail closed)."""
        if not self.unavailable.is_set():
            log.error("the exchange cannot work (%s): intake stopped until it can", why)
        self.unavailable.set()
        self._schedule_probe()

    def _record_received(self, meta: UploadMeta, *, recovered: bool) -> None:
        batch_id = batch_id_of(meta.name)
        name_ok = (batch_id is not None and not meta.name_personal
                   and not batch_id_looks_personal(batch_id))
        recorded_id = batch_id if name_ok and batch_id else meta.uid
        with self.ledger.transaction() as txn:
            replay_of = self.state.insert(
                txn, uid=meta.uid, agency=meta.agency, flow=meta.flow, batch_id=recorded_id,
                name_ok=name_ok, received_at=meta.received_at, upload_sha256=meta.sha256,
                upload_bytes=meta.size,
            )
            fields: dict[str, Any] = {"uid": meta.uid, "upload_sha256": meta.sha256,
                                      "bytes": meta.size, "name_ok": name_ok}
            if replay_of:
                fields["replay_of"] = replay_of
            if recovered:
                fields["recovered"] = True
            txn.append("batch.received", agency=meta.agency, flow=meta.flow, batch=recorded_id,
                       actor=meta.agency, **fields)
        log.info("batch %s received from %s/%s (%d bytes)", meta.uid, meta.agency, meta.flow,
                 meta.size)

    # -- start-up, workers, retries -----------------------------------------------------------

    def recover(self) -> None:
        """Start-up: wipe stray plaintext, drop cut-off uploads, adopt and queue unfinished work."""
        wiped = self.spool.wipe_work()
        if wiped:
            self.ledger.append("work.wiped", files=wiped)
        for folder in self.spool.interrupted_uploads():
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            # recorded before it is removed: a stop in between finds it again, recorded once
            self._record_interrupted(None, None, folder.name, size,
                                     "the exchange stopped while the upload was being written")
            shutil.rmtree(folder, ignore_errors=True)
        self._adopt_orphans()
        removed = self.references.clean()
        if removed:
            self.ledger.append("dataset.cleaned", files=removed)
        for unfinished in self.state.unfinished():
            with self.ledger.transaction() as txn:
                batch = self.state.count_recovery(txn, unfinished.uid)
                txn.append("batch.resumed", **batch.ids(), uid=batch.uid, stage=batch.stage,
                           recoveries=batch.attempts)
            self._queue.put(batch.uid)

    def _adopt_orphans(self) -> None:
        """Received folders without a database row: renamed in, then the daemon died."""
        known = self.state.known_uids()
        for uid in self.spool.received_uids():
            if uid not in known:
                self._record_received(self.spool.meta(uid), recovered=True)

    def start(self) -> None:
        for i in range(self.config.workers):
            t = threading.Thread(target=self._work, name=f"pipeline-{i}", daemon=True)
            t.start()
            self._workers.append(t)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the workers; a batch interrupted by a clean stop is not charged a recovery."""
        self._stopping.set()
        for timer in self._timers:
            timer.cancel()
        for _ in self._workers:
            self._queue.put(STOP)
        for t in self._workers:
            t.join(timeout)
        if not any(t.is_alive() for t in self._workers):
            try:
                self.state.clear_running()
            except (sqlite3.Error, LedgerError):
                pass

    def workers_alive(self) -> bool:
        """Every worker thread is running (the watchdog pings only then)."""
        return bool(self._workers) and all(t.is_alive() for t in self._workers)

    def queue_depth(self) -> int:
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
                self.advance(uid)
            except Unavailable as e:
                self._pause(uid, str(e))
            except RetryLater as e:
                self._retry_later(uid, str(e))
            except Exception:  # the last guard: a worker never dies
                log.error("batch %s could not be advanced", uid, exc_info=True)
                self._retry_later(uid, "unexpected error")
            finally:
                self.ledger.close()
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _schedule(self, uid: str, delay: float) -> None:
        self._timer(delay, self._queue.put, uid)

    def _timer(self, delay: float, target: Callable[..., object], *args: object) -> None:
        if self._stopping.is_set():
            return
        timer = threading.Timer(delay, target, args=args)
        timer.daemon = True
        timer.start()
        with self._guard:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]

    def _schedule_probe(self) -> None:
        """One probe at a time, however many logins or uploads found the exchange unable."""
        with self._guard:
            if self._probe_pending:
                return
            self._probe_pending = True
        self._timer(RETRY_SECONDS, self._probe)

    def _probe(self) -> None:
        """While intake is stopped: can the exchange write again? Then record what waits to
        be recorded (discarded uploads, received folders without a row) and that it works."""
        with self._guard:
            self._probe_pending = False
        try:
            try:
                self._adopt_orphans()
            except Exception as e:
                if _resource_error(e) is None:
                    log.error("probe failed", exc_info=True)
                self._schedule_probe()
                return
            self._available_again()  # records the discards waiting for the ledger first
        finally:
            self.ledger.close()  # a timer's thread ends here: its connection with it

    def _pause(self, uid: str, why: str) -> None:
        """Fail closed: refuse new uploads, keep the batch where it is, retry later."""
        if not self.unavailable.is_set():
            log.error("the exchange cannot work (%s): intake stopped until it can", why)
        self.unavailable.set()
        self._schedule(uid, RETRY_SECONDS)

    def _retry_later(self, uid: str, why: str) -> None:
        n = self._retries.get(uid, 0)
        self._retries[uid] = n + 1
        delay = SEAL_RETRY_SECONDS[min(n, len(SEAL_RETRY_SECONDS) - 1)]
        log.warning("batch %s will be retried in %.0f s: %s", uid, delay, why)
        self._schedule(uid, delay)

    def _available_again(self) -> None:
        """Intake resumes once exchange.available is recorded (not before: if it cannot be,
        the exchange still cannot write, and a probe tries again)."""
        with self._availability:
            if not self.unavailable.is_set():
                return
            try:
                self._record_unrecorded()
                self.ledger.append("exchange.available")
            except Exception as e:
                self.ledger.close()
                log.warning("the exchange still cannot write (%s)", type(e).__name__)
                self._schedule_probe()
                return
            self.unavailable.clear()
        log.info("the exchange works again: intake resumed")

    # -- a batch's life --------------------------------------------------------------------------

    def advance(self, uid: str) -> None:
        """Take one batch from whatever stage it is in to ``answered``."""
        batch = self.state.get(uid)
        if batch is None or batch.stage == ANSWERED:
            return
        try:
            self.state.set_running(uid, True)
            if batch.attempts > MAX_RECOVERIES and batch.stage in (RECEIVED, OPENED, ADMITTED):
                batch = self._reject(batch, self._exchange_error(batch, "interrupted repeatedly"))
            if batch.stage in (RECEIVED, OPENED, ADMITTED):
                batch = self._open_admit_process(batch)
            if batch.stage == REJECTED:
                batch = self._seal_rejection(batch)
            if batch.stage == PROCESSED:
                batch = self._deliver(batch)
            self.state.set_running(uid, False)
        except SealFailed as e:
            raise RetryLater(f"the outcome could not be sealed ({e})") from None
        except RetryLater:
            raise  # not the batch's fault, not a bug: it waits where it is
        except Exception as e:
            problem = _resource_error(e)
            if problem is not None:
                raise Unavailable(problem) from None
            self._fail(uid, e)
        self._retries.pop(uid, None)
        self._available_again()

    def _open_admit_process(self, batch: Batch) -> Batch:
        """received/opened/admitted → processed, or → rejected with the reasons.

        One pass, streamed: gpg decrypts into a pipe that the CSV reader reads, the flow
        writes its answer into a pipe that gpg seals, and nothing of the plaintext is ever
        on disk. The signature is known only when gpg reaches the end of the message, so
        whatever the processing found (a refusal, an error) is *held* until then: a batch
        that does not open as it must is rejected for that, exactly as if it had been
        opened first, and an answer already sealed from it is discarded. Then the stages
        are recorded in their order (opened, admitted) and the held outcome applies.
        """
        with self.spool.work_dir(batch.uid) as work:
            try:
                self._precheck(batch)
                policy = self.policy.get()
                found = policy.find_flow(batch.flow)
                flow = found[1] if found is not None else None
                with self._dataset_lock(flow), self._open(batch) as opening:
                    held: BaseException | None = None
                    decision = None
                    sealing: Sealing | None = None
                    result: FlowResult | None = None
                    processing = False
                    try:
                        if flow is None:
                            raise Refused(reason("NO_POLICY", flow=batch.flow,
                                                  agency=batch.agency))
                        reader = CsvReader(opening)
                        if batch.stage in (RECEIVED, OPENED):
                            decision = decide(policy, self._request(batch, reader.header))
                            if not decision.allow:
                                raise Refused(*decision.reasons,
                                               details=decision.ledger_fields())
                        processing = True
                        sealing = self._sealing(batch, "result")
                        result = self._process(batch, flow, reader, sealing.stream, work)
                    except Exception as e:  # held until the signature is known
                        held = e
                    except BaseException:  # the daemon is going down: nothing to hold
                        self._discard(sealing, result)
                        raise
                    try:
                        opened = opening.finish()
                    except BaseException:
                        self._discard(sealing, result)
                        raise
                    try:
                        if batch.stage == RECEIVED:
                            batch = self._mark(batch, OPENED, "batch.opened",
                                               signer_fingerprint=opened.signer_fingerprint,
                                               signed_at=opened.signed_at,
                                               plaintext_bytes=opened.plaintext_bytes)
                        if decision is not None and batch.stage == OPENED:
                            if not decision.allow:
                                raise Refused(*decision.reasons,
                                               details=decision.ledger_fields())
                            batch = self._mark(
                                batch, ADMITTED, "batch.admitted",
                                state={"decision": json.dumps(decision.ledger_fields())},
                                **decision.ledger_fields(),
                            )
                        if held is not None and not processing:
                            raise held  # refused before processing (no policy, a bad header)
                        assert flow is not None
                        self._check_fresh(flow, opened)
                        if held is not None:
                            raise held
                        assert sealing is not None and result is not None
                        sealed = self._sealed(batch, sealing, "result")
                    except BaseException:
                        self._discard(sealing, result)
                        raise
                    return self._record_processed(batch, result, sealed, opened)
            except Refused as r:
                return self._reject(batch, r.reasons, r.details)

    def _discard(self, sealing: Sealing | None, result: FlowResult | None) -> None:
        """An answer that will not be given: its sealing stopped, its snapshot removed."""
        if sealing is not None:
            sealing.abort()
        if result is not None and result.dataset_update is not None:
            update = result.dataset_update
            self.references.store(update.dataset).discard(update.snapshot_id)

    @contextmanager
    def _dataset_lock(self, flow: Flow | None) -> Iterator[None]:
        """Loads of one dataset run one at a time, so the newest upload is the one in force."""
        if flow is None or flow.dataset is None:
            yield
            return
        with self._guard:
            lock = self._dataset_locks.setdefault(flow.dataset, threading.Lock())
        with lock:
            yield

    def _check_fresh(self, flow: Flow, opened: Opened) -> None:
        """A reference load signed before the one in force would roll the data back."""
        if flow.dataset is None:
            return
        current = self.state.current_signed_at(flow.dataset)
        if current is not None and opened.signed_at < current:
            raise Refused(reason(
                "STALE_REFERENCE", dataset=flow.dataset,
                signed=datetime.fromtimestamp(opened.signed_at).astimezone().isoformat(),
                current=datetime.fromtimestamp(current).astimezone().isoformat(),
            ))

    def _precheck(self, batch: Batch) -> None:
        """What can be refused before decrypting: the name, a replay, the policy without columns."""
        if batch.stage != RECEIVED:
            return
        if not batch.name_ok:
            meta = self.spool.meta(batch.uid)
            found = batch_id_of(meta.name)
            if meta.name_personal or (found is not None and batch_id_looks_personal(found)):
                raise Refused(reason("BATCH_ID_LOOKS_PERSONAL"))
            raise Refused(reason("BAD_FILE_NAME", name=shown_name(meta.name), batch=batch.batch_id))
        if batch.replay_of:
            first = self.state.get(batch.replay_of)
            raise Refused(reason("REPLAY", batch=batch.batch_id, flow=batch.flow,
                                  first=first.received_at if first else "earlier"))
        policy = self.policy.get()
        decision = decide(policy, self._request(batch, None))
        if not decision.allow:
            raise Refused(*decision.reasons, details=decision.ledger_fields())
        governing = policy.find_flow(batch.flow)
        if governing is not None and governing[1].kind not in KINDS:
            raise Refused(reason("FLOW_NOT_AVAILABLE", flow=batch.flow))

    def _request(self, batch: Batch, columns: tuple[str, ...] | None) -> Request:
        """The facts of a batch for the policy; with its columns, also what its answer discloses."""
        received = datetime.fromisoformat(batch.received_at.replace("Z", "+00:00"))
        found = self.policy.get().find_flow(batch.flow)
        return Request(
            agency=batch.agency, flow=batch.flow, on=received.astimezone(self.config.zone).date(),
            columns=columns, size=batch.upload_bytes, recipient=batch.agency,
            disclose=found[1].discloses if found is not None and columns is not None else None,
        )

    @contextmanager
    def _open(self, batch: Batch) -> Iterator[Decryption]:
        """gpg decrypting the upload into a pipe (stopped when the block ends)."""
        agency = self.agencies.get(batch.agency)
        if agency is None:
            raise RuntimeError("the uploading agency is no longer registered")
        found = self.policy.get().find_flow(batch.flow)
        limit = (found[1].max_bytes if found and found[1].max_bytes
                 else self.config.max_plaintext_bytes)
        free = shutil.disk_usage(self.home.work).free
        if free < batch.upload_bytes * 2 + FREE_SPACE_MARGIN:
            raise Unavailable(f"not enough free space to open a batch ({free} bytes)")
        opening = self.openpgp.decrypting(self.spool.upload_path(batch.uid),
                                          pinned=agency.gpg_fingerprint,
                                          exchange=self.exchange_fpr, max_bytes=limit)
        try:
            yield opening
        finally:
            opening.close()

    def _process(self, batch: Batch, flow: Flow, reader: CsvReader, answer: IO[bytes],
                 work: Path) -> FlowResult:
        # a register load builds the fuzzy index only if a flow of the policy uses it
        fuzzy = flow.dataset is not None and any(
            f.reference == flow.dataset and f.fuzzy is not None and f.fuzzy.enabled
            for a in self.policy.get().agreements for f in a.flows)
        ctx = FlowContext(flow=flow, references=self.references, work=work,
                          new_snapshot_id=batch.uid,
                          build_fuzzy_index=fuzzy)
        try:
            result = KINDS[flow.kind].run(reader, answer, ctx)
        except BrokenPipeError:
            # gpg stopped reading the answer: its status says why (Sealed raises it)
            raise SealFailed("gpg stopped reading the answer") from None
        if reader.rows_read == 0 and KINDS[flow.kind].needs_rows:
            raise Refused(reason("NO_ROWS"))
        return result

    def _record_processed(self, batch: Batch, result: FlowResult, sealed: Sealed,
                          opened: Opened) -> Batch:
        now = self._now()
        replaced = None
        update = result.dataset_update
        with self.ledger.transaction() as txn:
            name = self._outcome_name(txn, batch, "result")
            counts = dict(result.counts)
            self.state.move(txn, batch.uid, PROCESSED, now, outcome_kind="result",
                            outcome_name=name, outcome_sha256=sealed.sha256,
                            counts=json.dumps(counts))
            extra: dict[str, Any] = {}
            if result.reference_snapshot:
                extra["reference_snapshot"] = result.reference_snapshot
            txn.append("batch.processed", **batch.ids(), uid=batch.uid, rows=result.rows,
                       counts=counts, outcome_sha256=sealed.sha256, **extra)
            if update is not None:
                replaced = self.state.set_snapshot(txn, update.dataset, update.snapshot_id,
                                                   update.rows, now, batch.uid, opened.signed_at)
                txn.append("dataset.replaced", **batch.ids(), uid=batch.uid,
                           dataset=update.dataset, snapshot=update.snapshot_id, rows=update.rows,
                           previous=replaced)
        if update is not None and replaced:
            # under the dataset's lock: no other load of it is being built
            self.references.store(update.dataset).remove_unreferenced([update.snapshot_id])
        log.info("batch %s processed: %d rows", batch.uid, result.rows)
        return self.state.get(batch.uid) or batch

    def _reject(self, batch: Batch, reasons: tuple[Reason, ...],
                details: Mapping[str, Any] | None = None) -> Batch:
        """Record the decision to refuse: the ledger entry's number goes into the rejection.

        The reasons' sentences go to the spool (beside the encrypted upload), not to
        ledger.db: they name columns the agency sent, which is its data.
        """
        now = self._now()
        fields = {k: v for k, v in (details or {}).items() if k != "codes"}
        codes = [r.code for r in reasons]
        atomic_write(self.spool.reasons_path(batch.uid),
                     json.dumps([r.as_dict() for r in reasons], ensure_ascii=False).encode())
        with self.ledger.transaction() as txn:
            name = self._outcome_name(txn, batch, "rejected")
            seq = txn.append("batch.rejected", **batch.ids(), uid=batch.uid,
                             stage=batch.stage, codes=codes, **fields)
            self.state.move(txn, batch.uid, REJECTED, now, reasons=json.dumps(codes),
                            reject_seq=seq, outcome_kind="rejected", outcome_name=name)
        log.info("batch %s rejected: %s", batch.uid, ", ".join(codes))
        return self.state.get(batch.uid) or batch

    def _seal_rejection(self, batch: Batch) -> Batch:
        reasons = json.loads(self.spool.reasons_path(batch.uid).read_bytes())
        body = {"batch": batch.batch_id, "flow": batch.flow, "reasons": reasons,
                "ledger_seq": batch.reject_seq}
        with self.spool.work_dir(batch.uid) as work:
            plain = work / "rejected.json"
            fd = os.open(plain, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
            sealed = self._seal(batch, plain, "rejected")
        with self.ledger.transaction() as txn:
            self.state.move(txn, batch.uid, PROCESSED, self._now(), outcome_sha256=sealed.sha256)
            txn.append("outcome.sealed", **batch.ids(), uid=batch.uid, outcome="rejected",
                       outcome_sha256=sealed.sha256)
        return self.state.get(batch.uid) or batch

    def _outcome_inner(self, batch: Batch, kind: str) -> str:
        return (f"{batch.batch_id}.result.csv" if kind == "result"
                else f"{batch.batch_id}.rejected.json")

    def _sealing(self, batch: Batch, kind: str) -> Sealing:
        """gpg sealing an answer as the flow writes it (into the spool's temporary name)."""
        agency = self.agencies.get(batch.agency)
        if agency is None:
            raise SealFailed("the agency is no longer registered")
        tmp = self.spool.outcome_path(batch.uid).with_name(".outcome.tmp")
        return self.openpgp.sealing(tmp, recipient=agency.gpg_fingerprint,
                                    signer=self.exchange_fpr,
                                    filename=self._outcome_inner(batch, kind))

    def _sealed(self, batch: Batch, sealing: Sealing, kind: str) -> Sealed:
        """The answer is complete: gpg finishes it, and it moves into place."""
        sealing.finish()
        target = self.spool.outcome_path(batch.uid)
        tmp = target.with_name(".outcome.tmp")
        digest = _sha256_file(tmp)
        _fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
        return Sealed(kind, digest)

    def _seal(self, batch: Batch, plaintext: Path, kind: str) -> Sealed:
        agency = self.agencies.get(batch.agency)
        if agency is None:
            raise SealFailed("the agency is no longer registered")
        target = self.spool.outcome_path(batch.uid)
        tmp = target.with_name(".outcome.tmp")
        inner = (f"{batch.batch_id}.result.csv" if kind == "result"
                 else f"{batch.batch_id}.rejected.json")
        self.openpgp.seal(plaintext, tmp, recipient=agency.gpg_fingerprint,
                          signer=self.exchange_fpr, filename=inner)
        digest = _sha256_file(tmp)
        _fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
        return Sealed(kind, digest)

    def _deliver(self, batch: Batch) -> Batch:
        """Put the sealed outcome into the agency's outbox, atomically.

        The outbox is reached through directory descriptors, no component of the agency's
        part of the path followed if it is a link: another process on the host that
        replaced a folder by a link to elsewhere gets nothing delivered there. The batch
        then stays processed (retried later), and the ledger says why.
        """
        assert batch.outcome_name is not None
        try:
            outbox = open_drop_folder(self.home, batch.agency, "outbox", batch.flow)
        except PlantedLink as e:
            self._refuse_delivery(batch, e)
        try:
            # OpenSSH mode: a copy the agency's user reads through its group; else a hard link
            place(outbox, batch.outcome_name, source=self.spool.outcome_path(batch.uid),
                  mode=0o640 if self.home.shared_drop else 0o600, link=not self.home.shared_drop)
        finally:
            os.close(outbox)
        self._undeliverable.discard(batch.uid)
        with self.ledger.transaction() as txn:
            self.state.move(txn, batch.uid, ANSWERED, self._now())
            txn.append("batch.answered", **batch.ids(), uid=batch.uid, outcome=batch.outcome_kind,
                       outcome_name=batch.outcome_name, outcome_sha256=batch.outcome_sha256)
        log.info("batch %s answered: %s", batch.uid, batch.outcome_kind)
        return self.state.get(batch.uid) or batch

    def _refuse_delivery(self, batch: Batch, link: PlantedLink) -> NoReturn:
        why = str(link)
        log.error("batch %s not delivered: %s; kept to deliver later", batch.uid, why)
        if batch.uid not in self._undeliverable:
            self.ledger.append("batch.undeliverable", **batch.ids(), uid=batch.uid, why=why)
            self._undeliverable.add(batch.uid)
        raise Undeliverable(why)

    # -- helpers ------------------------------------------------------------------------------

    def _mark(self, batch: Batch, stage: str, kind: str, *,
              state: dict[str, object] | None = None, **fields: Any) -> Batch:
        """Move a batch to ``stage`` and record ledger entry ``kind``, in one transaction."""
        with self.ledger.transaction() as txn:
            self.state.move(txn, batch.uid, stage, self._now(), **(state or {}))
            txn.append(kind, **batch.ids(), uid=batch.uid, **fields)
        return self.state.get(batch.uid) or batch

    def _outcome_name(self, txn: Transaction, batch: Batch, kind: str) -> str:
        suffix = ".result.csv.gpg" if kind == "result" else ".rejected.json.gpg"
        if not batch.replay_of:
            return batch.batch_id + suffix
        # an outcome never replaces another: a replay's rejection says so in its name
        n = 1
        while self.state.outcome_name_taken(txn, batch.agency, batch.flow,
                                             f"{batch.batch_id}.replay-{n}{suffix}"):
            n += 1
        return f"{batch.batch_id}.replay-{n}{suffix}"

    def _exchange_error(self, batch: Batch, what: str) -> tuple[Reason, ...]:
        seq = self.ledger.append("batch.failed", **batch.ids(), uid=batch.uid, stage=batch.stage,
                                 error=what)
        return (reason("EXCHANGE_ERROR", seq=seq),)

    def _fail(self, uid: str, error: BaseException) -> None:
        """An unexpected error: answer the batch with EXCHANGE_ERROR, never leave it unanswered."""
        log.error("batch %s failed: %s", uid, type(error).__name__, exc_info=error)
        batch = self.state.get(uid)
        if batch is None or batch.stage == ANSWERED:
            return
        try:
            if batch.stage in (RECEIVED, OPENED, ADMITTED):
                batch = self._reject(batch, self._exchange_error(batch, type(error).__name__))
            if batch.stage == REJECTED:
                batch = self._seal_rejection(batch)
            if batch.stage == PROCESSED:
                self._deliver(batch)
        except Exception as again:
            problem = _resource_error(again)
            if problem is not None:
                raise Unavailable(problem) from None
            # a rejected or processed batch only needs sealing and delivering: later
            raise RetryLater(f"{type(again).__name__} at stage {batch.stage}") from None

    def _now(self) -> str:
        return format_ts(self.clock())


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["Pipeline", "PolicyHolder", "batch_id_of"]
