"""Intake: uploads become received batches or are discarded on record; fail-closed availability.

An upload closed normally is *received*: its folder renamed into the spool and a
``batch.received`` entry written in the same step (:meth:`Intake.receive`). An upload
that never completed is recorded as ``upload.interrupted`` and then removed
(:meth:`Intake.discard`): the entry always comes first.

When the exchange finds it cannot write (a full disk, an unwritable ledger), intake
stops: no new upload is taken (:class:`~exchanged.errors.Unavailable`), and a probe
tries every few seconds whether it can write again. Once it can, the probe records
what waited to be recorded (discards, received folders without a row) and
``exchange.available``, and only then does intake resume.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchanged.batch.names import batch_id_looks_personal, batch_id_of, batch_id_reserved
from exchanged.batch.spool import Spool, Upload, UploadMeta
from exchanged.batch.state import State
from exchanged.batch.workers import RETRY_SECONDS, Timers
from exchanged.errors import Unavailable, as_unavailable
from exchanged.ledger import Ledger

log = logging.getLogger("exchanged.pipeline")

#: the free space below which the exchange stops taking uploads (it could not seal answers)
FREE_SPACE_MARGIN = 64 * 1024 * 1024


class Intake:
    """Taking uploads in, and stopping (and resuming) that when the exchange cannot write."""

    def __init__(self, spool: Spool, state: State, ledger: Ledger, timers: Timers, *,
                 enqueue: Callable[[str], None], now: Callable[[], str]) -> None:
        self.spool = spool
        self.state = state
        self.ledger = ledger
        self._timers = timers
        self._enqueue = enqueue
        self._now = now
        #: set while the exchange cannot work (disk full, ledger unwritable): intake refused
        self.unavailable = threading.Event()
        self._guard = threading.Lock()
        #: held while exchange.available is recorded, so that it is recorded once
        self._availability = threading.Lock()
        #: a probe (can the exchange write again?) is scheduled
        self._probe_pending = False
        #: why intake is stopped, while it is
        self.stopped: Stop | None = None
        #: uploads discarded while the ledger could not record it: their files stay in
        #: spool/uploads/ until their upload.interrupted entry is written (by the probe, or
        #: by recover() after a restart), so that no discarding goes unrecorded
        self._unrecorded: list[tuple[Upload, int, str]] = []

    # -- uploads ----------------------------------------------------------------------------

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
            self.record_received(meta, recovered=False)
        except Exception as e:
            self.spool.unreceive(meta.uid)
            self.ledger.close()  # this thread's connection may be left unable to write
            log.error("upload %s could not be recorded (%s): refused", meta.uid,
                      type(e).__name__,
                      extra={"uid": meta.uid, "agency": meta.agency, "flow": meta.flow})
            self.cannot_write(_why(e))
            raise Unavailable("the upload could not be recorded") from None
        self._enqueue(meta.uid)
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
            self.record_interrupted(upload.agency, upload.flow, upload.uid, size, why)
        except Exception as e:
            self.ledger.close()  # this thread's connection may be left unable to write
            with self._guard:
                self._unrecorded.append((upload, size, why))
            log.error("upload %s from %s/%s could not be recorded as discarded (%s): kept "
                      "until it can be", upload.uid, upload.agency, upload.flow,
                      type(e).__name__, extra=_upload_fields(upload))
            self.cannot_write(_why(e))
            return
        upload.discard()
        log.info("upload %s from %s/%s discarded: %s", upload.uid, upload.agency, upload.flow, why,
                 extra=_upload_fields(upload))

    def record_interrupted(self, agency: str | None, flow: str | None, uid: str, size: int,
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

    def record_received(self, meta: UploadMeta, *, recovered: bool) -> None:
        batch_id = batch_id_of(meta.name)
        name_ok = (batch_id is not None and not meta.name_personal
                   and not batch_id_looks_personal(batch_id) and not batch_id_reserved(batch_id))
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
                 meta.size, extra={"uid": meta.uid, "agency": meta.agency, "flow": meta.flow,
                                   "batch": recorded_id})

    # -- start-up ----------------------------------------------------------------------------

    def drop_interrupted(self) -> None:
        """Start-up: uploads whose writing never finished are recorded, then removed."""
        for folder in self.spool.interrupted_uploads():
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            # recorded before it is removed: a stop in between finds it again, recorded once
            self.record_interrupted(None, None, folder.name, size,
                                    "the exchange stopped while the upload was being written")
            shutil.rmtree(folder, ignore_errors=True)

    def adopt_orphans(self) -> None:
        """Received folders without a database row: renamed in, then the daemon died."""
        known = self.state.known_uids()
        for uid in self.spool.received_uids():
            if uid not in known:
                self.record_received(self.spool.meta(uid), recovered=True)

    # -- availability ------------------------------------------------------------------------

    def cannot_write(self, why: str) -> None:
        """Something (a batch, an upload, the front door recording a login) found that the
        exchange cannot write: intake stops, recorded (``exchange.unavailable``, as soon as
        the ledger takes it), and a probe records ``exchange.available`` once it can write
        again, also when no batch is waiting to find it out (fail closed)."""
        with self._guard:
            first = not self.unavailable.is_set()
            if first:
                self.stopped = Stop(self._now(), why)
                self.unavailable.set()
        if first:
            log.error("the exchange cannot work (%s): intake stopped until it can", why)
            try:
                self._record_stop()
            except Exception:
                self.ledger.close()  # the probe records it once the ledger can be written
        self._schedule_probe()

    def available_again(self) -> None:
        """Intake resumes once exchange.available is recorded (not before: if it cannot be,
        the exchange still cannot write, and a probe tries again)."""
        with self._availability:
            if not self.unavailable.is_set():
                return
            try:
                self._record_stop()
                self._record_unrecorded()
                stopped = self.stopped
                self.ledger.append("exchange.available",
                                   since=stopped.since if stopped else None)
            except Exception as e:
                self.ledger.close()
                log.warning("the exchange still cannot write (%s)", type(e).__name__)
                self._schedule_probe()
                return
            with self._guard:
                self.stopped = None
                self.unavailable.clear()
        log.info("the exchange works again: intake resumed")

    def _record_stop(self) -> None:
        """``exchange.unavailable`` for the stop in force, once."""
        stopped = self.stopped
        if stopped is not None and not stopped.recorded:
            self.ledger.append("exchange.unavailable", since=stopped.since, why=stopped.why)
            stopped.recorded = True

    def _record_unrecorded(self) -> None:
        """Record the discards the ledger could not record when they happened, then drop them."""
        with self._guard:
            pending, self._unrecorded = self._unrecorded, []
        try:
            while pending:
                upload, size, why = pending[0]
                self.record_interrupted(upload.agency, upload.flow, upload.uid, size, why)
                upload.discard()
                pending.pop(0)
                log.info("upload %s from %s/%s discarded: %s", upload.uid, upload.agency,
                         upload.flow, why, extra=_upload_fields(upload))
        finally:
            if pending:
                with self._guard:
                    self._unrecorded[:0] = pending

    def _schedule_probe(self) -> None:
        """One probe at a time, however many logins or uploads found the exchange unable."""
        with self._guard:
            if self._probe_pending:
                return
            self._probe_pending = True
        self._timers.after(RETRY_SECONDS, self._probe)

    def _probe(self) -> None:
        """While intake is stopped: can the exchange write again (room on its disk, a file
        written and synced in its spool)? Then record what waits to be recorded (discarded
        uploads, received folders without a row) and that it works."""
        with self._guard:
            self._probe_pending = False
        try:
            try:
                self.spool.check_writable(FREE_SPACE_MARGIN)
                self.adopt_orphans()
            except Exception as e:
                if as_unavailable(e) is None:
                    log.error("probe failed", exc_info=True)
                self._schedule_probe()
                return
            self.available_again()  # records the discards waiting for the ledger first
        finally:
            self.ledger.close()  # a timer's thread ends here: its connection with it


@dataclass
class Stop:
    """Why intake is stopped, since when, and whether the ledger has it yet."""

    since: str
    why: str
    recorded: bool = False


def _why(error: BaseException) -> str:
    problem = as_unavailable(error)
    return str(problem) if problem is not None else type(error).__name__


def _upload_fields(upload: Upload) -> dict[str, str | None]:
    """An upload's ids as fields of a log record (JSON logs keep them apart from the text)."""
    return {"uid": upload.uid, "agency": upload.agency, "flow": upload.flow}
