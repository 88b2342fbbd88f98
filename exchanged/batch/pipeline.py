"""A batch's life: receive → open → admit → process → answer.

This is the one place that reads top to bottom as what happens to an upload
(:meth:`Pipeline.advance`, driven by the table of :data:`Pipeline.steps`). Each stage
change is a row update in ``ledger.db`` committed in the same SQLite transaction as
the ledger entry that records it, so a restart resumes every batch exactly where it
stopped, and every received upload ends in exactly one outcome:

- ``received``  the upload is out of the agency's reach, its SHA-256 recorded
                (:mod:`~exchanged.batch.intake`);
- ``opened``    decrypted and verified: encrypted to the exchange, signed by the
                agency's pinned key (the plaintext only ever in a pipe);
- ``admitted``  the policy allowed it (the decision and its rules recorded);
- ``rejected``  a reason was found at any of the stages above;
- ``processed`` the answer (or the rejection) is sealed: signed by the exchange
                and encrypted to the agency, in the spool (:mod:`~exchanged.batch.sealing`);
- ``answered``  the outcome is in the agency's outbox (:mod:`~exchanged.batch.delivery`).

What can go wrong, and what then happens (the family of :class:`~exchanged.errors.Problem`):

- the sender's fault (a bad signature, a column too many): the batch is
  *rejected* with the reasons (:class:`~exchanged.errors.Refused`);
- the exchange cannot write (disk full, ledger unwritable, I/O error): the batch
  stays where it is, intake stops (fail closed) and the batch is retried until it
  works; nothing is charged to the batch (:class:`~exchanged.errors.Unavailable`);
- the outcome cannot be sealed or delivered now (gpg refusing an agency key that
  expired, an outbox that is a link): the batch stays where it is and is retried
  with a growing delay (:class:`~exchanged.errors.RetryLater`);
- anything else is a bug: the step's failure path applies (before a decision, the
  batch is answered EXCHANGE_ERROR with the ledger entry that records the error);
- the daemon dies: at start-up the stage is repeated (the upload decrypted again).
  A batch that was being processed at four start-ups is a poison batch and is
  answered EXCHANGE_ERROR (Mailman's rule).

One :class:`~exchanged.policy.PolicySet` is taken when a batch starts and used to its
end: a reload in the middle of a batch never mixes two.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from exchanged.batch.admission import (
    check_fresh,
    check_room,
    check_signed_in_time,
    precheck,
    received_at,
    request,
)
from exchanged.batch.delivery import Delivery
from exchanged.batch.intake import Intake
from exchanged.batch.names import (
    OUTCOME_SUFFIXES,
)
from exchanged.batch.sealing import Sealed, Sealer
from exchanged.batch.spool import Spool, Upload
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
from exchanged.batch.workers import Workers
from exchanged.crypto.keys import Keyring
from exchanged.crypto.packets import Opened
from exchanged.crypto.streams import Decryption, SealFailed, Sealing
from exchanged.csvio import CsvReader
from exchanged.errors import Problem, Reason, Refused, RetryLater, Unavailable, as_unavailable
from exchanged.flows import KINDS, FlowContext, FlowResult
from exchanged.home import Config, Home, atomic_write
from exchanged.home.agencies import Agencies
from exchanged.ledger import Ledger, Transaction, format_ts, utc_now
from exchanged.policy import Flow, PolicySet, decide
from exchanged.reasons import reason

log = logging.getLogger("exchanged.pipeline")

#: a batch that was being processed at this many start-ups is a poison batch
MAX_RECOVERIES = 3
#: the stages before the policy's decision is acted on: an error here refuses the batch
DECIDING = (RECEIVED, OPENED, ADMITTED)


@dataclass(frozen=True)
class Mark:
    """A stage a batch moves to, with the state it keeps and the ledger entry that says so."""

    stage: str
    kind: str
    state: Mapping[str, object]
    fields: Mapping[str, Any]


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
class Step:
    """What moves a batch on from one stage, and what an unexpected error there leads to
    (None: the batch keeps its stage and is retried later)."""

    run: Callable[[Batch, PolicySet], Batch]
    on_error: Callable[[Batch, str], Batch] | None


class Pipeline:
    def __init__(
        self,
        home: Home,
        config: Config,
        ledger: Ledger,
        openpgp: Keyring,
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
        self.workers = Workers(config.workers, self.advance, pause=self.cannot_write,
                               release=ledger.close)
        self.intake = Intake(self.spool, self.state, ledger, self.workers.timers,
                             enqueue=self.workers.put, now=self._now)
        self.sealer = Sealer(self.spool, self.state, ledger, openpgp, self.agencies,
                             self.exchange_fpr, now=self._now,
                             compress_level=config.compress_level)
        self.delivery = Delivery(home, self.spool, self.state, ledger, now=self._now)
        # one load per dataset at a time, in the order they were received
        self._dataset_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        #: the stage table: advance() follows it to *answered*, and an error in a step
        #: takes that step's failure path
        self.steps: Mapping[str, Step] = {
            RECEIVED: Step(self._open_admit_process, self._refuse_for_error),
            OPENED: Step(self._open_admit_process, self._refuse_for_error),
            ADMITTED: Step(self._open_admit_process, self._refuse_for_error),
            REJECTED: Step(lambda batch, _: self.sealer.seal_rejection(batch), None),
            PROCESSED: Step(lambda batch, _: self.delivery.deliver(batch), None),
        }

    # -- what the front door and the daemon ask ----------------------------------------------

    def intake_stopped(self) -> dict[str, str] | None:
        """Since when and why intake is stopped, or None while it is open."""
        stopped = self.intake.stopped
        return None if stopped is None else {"since": stopped.since, "why": stopped.why}

    @property
    def unavailable(self) -> threading.Event:
        """Set while intake is stopped because the exchange cannot write."""
        return self.intake.unavailable

    def new_upload(self, agency: str, flow: str, name: str) -> Upload:
        return self.intake.new_upload(agency, flow, name)

    def adopt(self, agency: str, flow: str, path: Path, name: str) -> Upload:
        return self.intake.adopt(agency, flow, path, name)

    def receive(self, upload: Upload) -> str:
        return self.intake.receive(upload)

    def discard(self, upload: Upload, why: str) -> None:
        self.intake.discard(upload, why)

    def cannot_write(self, why: str) -> None:
        self.intake.cannot_write(why)

    def recover(self) -> None:
        """Start-up: wipe stray plaintext, drop cut-off uploads, adopt and queue unfinished work."""
        wiped = self.spool.wipe_work()
        if wiped:
            self.ledger.append("work.wiped", files=wiped)
        self.intake.drop_interrupted()
        self.intake.adopt_orphans()
        for uid in self.state.answered_with_leftovers(self.spool.with_bookkeeping()):
            self.spool.forget(uid)  # answered just before the daemon stopped
        removed = self.references.clean()
        if removed:
            self.ledger.append("dataset.cleaned", files=removed)
        for unfinished in self.state.unfinished():
            with self.ledger.transaction() as txn:
                batch = self.state.count_recovery(txn, unfinished.uid)
                txn.append("batch.resumed", **batch.ids(), uid=batch.uid, stage=batch.stage,
                           recoveries=batch.attempts)
            self.workers.put(batch.uid)
        self.take_requeued()

    def start(self) -> None:
        self.workers.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the workers; a batch interrupted by a clean stop is not charged a recovery."""
        if self.workers.stop(timeout):
            try:
                self.state.clear_running()
            except Exception:  # the daemon is stopping: the next start counts it
                pass

    def workers_alive(self) -> bool:
        return self.workers.alive()

    def queue_depth(self) -> int:
        return self.workers.depth()

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self.workers.wait_idle(timeout)

    # -- a batch's life --------------------------------------------------------------------------

    def advance(self, uid: str) -> None:
        """Take one batch as far as it goes; a batch that must wait is tried again a bounded
        number of times (``retry_delays``), then shunted for an administrator."""
        try:
            self._advance(uid)
        except Unavailable:
            raise
        except RetryLater as e:
            self._retry_or_shunt(uid, str(e))
        except Exception as e:  # a bug outside any step: waits like a RetryLater, bounded too
            problem = as_unavailable(e)
            if problem is not None:
                raise problem from None
            log.error("batch %s could not be advanced", uid, exc_info=True, extra={"uid": uid})
            self._retry_or_shunt(uid, f"unexpected error ({type(e).__name__})")

    def _retry_or_shunt(self, uid: str, why: str) -> None:
        """Count one more try; raise RetryLater with the wait before the next, or, after the
        last, shunt the batch (``batch.shunted``): it waits for ``exchanged batch requeue``."""
        delays = self.config.retry_delays
        with self.ledger.transaction() as txn:
            batch = self.state.count_retry(txn, uid)
            if batch.retries > len(delays):
                self.state.shunt(txn, uid)
                txn.append("batch.shunted", **batch.ids(), uid=uid, stage=batch.stage,
                           retries=batch.retries - 1, why=why[:200])
            else:
                txn.append("batch.retrying", **batch.ids(), uid=uid, stage=batch.stage,
                           retry=batch.retries, why=why[:200])
        if batch.retries > len(delays):
            log.error("batch %s shunted after %d tries: %s", uid, batch.retries, why,
                      extra={**batch.ids(), "uid": uid})
            return
        raise RetryLater(why, delay=delays[batch.retries - 1])

    def take_requeued(self) -> None:
        """Queue the batches an administrator put back (``exchanged batch requeue``)."""
        for uid in self.state.take_requeued():
            self.workers.put(uid)

    def _advance(self, uid: str) -> None:
        """Take one batch from whatever stage it is in to ``answered``, by the stage table."""
        batch = self.state.get(uid)
        if batch is None or batch.stage == ANSWERED:
            return
        policy = self.policy.get()  # the one policy set this batch sees, to its end
        self.state.set_running(uid, True)
        if batch.attempts > MAX_RECOVERIES and batch.stage in DECIDING:
            batch = self._refuse_for_error(batch, "interrupted repeatedly")
        while batch.stage != ANSWERED:
            step = self.steps[batch.stage]
            try:
                batch = step.run(batch, policy)
            except Problem:
                raise  # the batch waits where it is (Unavailable, RetryLater)
            except Exception as e:
                problem = as_unavailable(e)
                if problem is not None:
                    raise problem from None
                batch = self._failed(uid, batch, e)
        self.state.set_running(uid, False)
        self.intake.available_again()

    def _failed(self, uid: str, batch: Batch, error: Exception) -> Batch:
        """An unexpected error (a bug): the failure path of the stage the batch is in now
        (the step may have moved it on before it failed); none: it is retried later."""
        log.error("batch %s failed: %s", uid, type(error).__name__, exc_info=error)
        batch = self.state.get(uid) or batch
        step = self.steps.get(batch.stage)
        if step is None:  # answered after all
            return batch
        if step.on_error is None:
            raise RetryLater(f"{type(error).__name__} at stage {batch.stage}") from None
        try:
            return step.on_error(batch, type(error).__name__)
        except Problem:
            raise
        except Exception as again:  # the failure path failing too: bounded like a wait
            raise RetryLater(f"{type(again).__name__} on the failure path at stage "
                             f"{batch.stage}") from None

    def _open_admit_process(self, batch: Batch, policy: PolicySet) -> Batch:
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
                precheck(batch, policy, self.spool, self.state, self._received_on(batch))
                found = policy.find_flow(batch.flow)
                flow = found[1] if found is not None else None
                with self._dataset_lock(flow), self._open(batch, policy) as opening:
                    return self._run_opened(batch, policy, flow, opening, work)
            except Refused as r:
                return self._reject(batch, r.reasons, r.details)

    def _run_opened(self, batch: Batch, policy: PolicySet, flow: Flow | None,
                    opening: Decryption, work: Path) -> Batch:
        """Decide and process while gpg decrypts; then act on what gpg said of the message."""
        held: BaseException | None = None
        decision = None
        sealing: Sealing | None = None
        result: FlowResult | None = None
        processing = False
        try:
            if flow is None:
                raise Refused(reason("NO_POLICY", flow=batch.flow, agency=batch.agency))
            reader = CsvReader(opening)
            if batch.stage in (RECEIVED, OPENED):
                decision = decide(policy, request(batch, policy, reader.header,
                                                       self._received_on(batch)))
                if not decision.allow:
                    raise Refused(*decision.reasons, details=decision.ledger_fields())
            processing = True
            sealing = self.sealer.start(batch, "result")
            result = self._process(batch, policy, flow, reader, sealing.stream, work)
        except Exception as e:  # held until the signature is known
            held = e
        except BaseException:  # the daemon is going down: nothing to hold
            self._discard(sealing, result)
            raise
        try:
            opened = opening.finish()
            check_signed_in_time(batch, opened)
            # opened, then admitted: both stages and their entries in one transaction (one
            # wait for the disk less per batch); a refusal records the opening alone
            marks: list[Mark] = []
            if batch.stage == RECEIVED:
                marks.append(Mark(OPENED, "batch.opened", {}, {
                    "signer_fingerprint": opened.signer_fingerprint,
                    "signed_at": opened.signed_at, "plaintext_bytes": opened.plaintext_bytes}))
            if decision is not None and batch.stage in (RECEIVED, OPENED):
                if not decision.allow:
                    batch = self._mark_all(batch, marks)
                    raise Refused(*decision.reasons, details=decision.ledger_fields())
                marks.append(Mark(ADMITTED, "batch.admitted",
                                  {"decision": json.dumps(decision.ledger_fields())},
                                  decision.ledger_fields()))
            batch = self._mark_all(batch, marks)
            if held is not None and not processing:
                raise held  # refused before processing (no policy, a bad header)
            assert flow is not None
            check_fresh(flow, batch, opened, self.state)
            if held is not None:
                raise held
            assert sealing is not None and result is not None
            sealed = self.sealer.finish(batch, sealing, "result")
        except BaseException:
            self._discard(sealing, result)
            raise
        return self._record_processed(batch, result, sealed, opened)

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

    @contextmanager
    def _open(self, batch: Batch, policy: PolicySet) -> Iterator[Decryption]:
        """gpg decrypting the upload into a pipe (stopped when the block ends)."""
        agency = self.agencies.get(batch.agency)
        if agency is None:
            raise RuntimeError("the uploading agency is no longer registered")
        found = policy.find_flow(batch.flow)
        limit = (found[1].max_bytes if found and found[1].max_bytes
                 else self.config.max_plaintext_bytes)
        check_room(self.spool.upload_path(batch.uid), self.home.spool)
        opening = self.openpgp.decrypting(self.spool.upload_path(batch.uid),
                                          pinned=agency.gpg_fingerprint,
                                          exchange=self.exchange_fpr, max_bytes=limit)
        try:
            yield opening
        finally:
            opening.close()

    def _process(self, batch: Batch, policy: PolicySet, flow: Flow, reader: CsvReader,
                 answer: IO[bytes], work: Path) -> FlowResult:
        # a register load builds the fuzzy index only if a flow of the policy uses it
        fuzzy = flow.dataset is not None and any(
            f.reference == flow.dataset and f.fuzzy is not None and f.fuzzy.enabled
            for a in policy.agreements for f in a.flows)
        # a flow that bounds its comparisons learns of the count only through its budget
        bound = flow.max_comparisons_per_nip
        budget = (self.references.comparisons(batch.agency, flow.name, bound,
                                              self._received_on(batch))
                  if bound is not None else None)
        ctx = FlowContext(flow=flow, references=self.references, work=work,
                          new_snapshot_id=batch.uid,
                          build_fuzzy_index=fuzzy, comparisons=budget)
        try:
            result = KINDS[flow.kind].run(reader, answer, ctx)
        except BrokenPipeError:
            # gpg stopped reading the answer: its status says why (Sealed raises it)
            raise SealFailed("gpg stopped reading the answer") from None
        if reader.rows_read == 0 and KINDS[flow.kind].needs_rows:
            raise Refused(reason("NO_ROWS"))
        if budget is not None:  # counted with the answer's record, never before
            result = result.with_comparisons(budget.taken())
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
            if result.token_key:  # matched or loaded keyed tokens: the key's fingerprint only
                extra["matching"] = "tokens"
                extra["token_key"] = result.token_key
            if result.invalid_reasons:
                extra["invalid_reasons"] = dict(result.invalid_reasons)
            if result.comparisons is not None:  # counts only: the NIPs are keyed, and stay out
                extra["comparisons"] = self.state.count_comparisons(
                    txn, batch.agency, batch.flow, result.comparisons)
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

    def _refuse_for_error(self, batch: Batch, what: str) -> Batch:
        """An error of the exchange's own before a decision: the batch is answered
        EXCHANGE_ERROR, with the ledger entry that records the error, never left unanswered."""
        seq = self.ledger.append("batch.failed", **batch.ids(), uid=batch.uid, stage=batch.stage,
                                 error=what)
        return self._reject(batch, (reason("EXCHANGE_ERROR", seq=seq),))

    # -- helpers ------------------------------------------------------------------------------

    def _mark_all(self, batch: Batch, marks: Sequence[Mark]) -> Batch:
        """Move a batch through ``marks`` in turn, each stage with its ledger entry, all in
        one transaction."""
        if not marks:
            return batch
        with self.ledger.transaction() as txn:
            for mark in marks:
                self.state.move(txn, batch.uid, mark.stage, self._now(), **mark.state)
                txn.append(mark.kind, **batch.ids(), uid=batch.uid, **mark.fields)
        return self.state.get(batch.uid) or batch

    def _outcome_name(self, txn: Transaction, batch: Batch, kind: str) -> str:
        """The outcome's file name, unique by construction: a batch id names its own outcome
        (no batch id can take a name the exchange makes: names.RESERVED_RE), a replay's
        rejection says it is one, and the upload's own id names the rest."""
        suffix = OUTCOME_SUFFIXES[kind]
        name = batch.batch_id + suffix
        if batch.replay_of:
            # an outcome never replaces another: a replay's rejection says so in its name
            n = 1
            while self.state.outcome_name_taken(txn, batch.agency, batch.flow,
                                                 f"{batch.batch_id}.replay-{n}{suffix}"):
                n += 1
            name = f"{batch.batch_id}.replay-{n}{suffix}"
        if self.state.outcome_name_taken(txn, batch.agency, batch.flow, name):
            # cannot happen by the rule above; if it did, the upload's id is still free
            log.error("batch %s: outcome name taken, named by the upload's id", batch.uid)
            name = batch.uid + suffix
        return name

    def _received_on(self, batch: Batch) -> date:
        """The day the batch arrived, in the agreement's zone: the day its policy applies."""
        return received_at(batch).astimezone(self.config.zone).date()

    def _now(self) -> str:
        return format_ts(self.clock())


__all__ = ["Pipeline", "PolicyHolder", "Step"]
