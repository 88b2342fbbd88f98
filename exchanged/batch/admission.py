"""What a batch must pass to be processed, each check with its reason.

Before decrypting: its name (a batch id that is valid, not personal-looking, not
reserved), no replay, the policy without its columns (:func:`precheck`), and room on
the disk for what it will write (:func:`check_room`). After gpg has read it: its
signature not dated after its receipt (:func:`check_signed_in_time`) and, for a
reference load, not older than the one in force (:func:`check_fresh`). Each refusal is
a :class:`~exchanged.errors.Refused` carrying the reason the agency gets back.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

from exchanged.batch.intake import FREE_SPACE_MARGIN
from exchanged.batch.names import (
    batch_id_looks_personal,
    batch_id_of,
    batch_id_reserved,
    shown_name,
)
from exchanged.batch.spool import Spool
from exchanged.batch.state import RECEIVED, Batch, State
from exchanged.crypto.packets import Opened
from exchanged.errors import Refused, RetryLater, Unavailable
from exchanged.flows import KINDS
from exchanged.policy import Flow, PolicySet, Request, decide
from exchanged.reasons import reason

#: how far a signature's date may be after the upload's receipt (clocks drift)
CLOCK_SKEW_SECONDS = 300


def request(batch: Batch, policy: PolicySet, columns: tuple[str, ...] | None,
            received_on: date) -> Request:
    """The facts of a batch for the policy; with its columns, also what its answer discloses."""
    found = policy.find_flow(batch.flow)
    return Request(
        agency=batch.agency, flow=batch.flow, on=received_on, columns=columns,
        size=batch.upload_bytes, recipient=batch.agency,
        disclose=found[1].discloses if found is not None and columns is not None else None,
    )


def precheck(batch: Batch, policy: PolicySet, spool: Spool, state: State,
             received_on: date) -> None:
    """What can be refused before decrypting: the name, a replay, the policy without columns."""
    if batch.stage != RECEIVED:
        return
    if not batch.name_ok:
        meta = spool.meta(batch.uid)
        found = batch_id_of(meta.name)
        if meta.name_personal or (found is not None and batch_id_looks_personal(found)):
            raise Refused(reason("BATCH_ID_LOOKS_PERSONAL", batch=batch.batch_id))
        if found is not None and batch_id_reserved(found):
            raise Refused(reason("RESERVED_BATCH_ID", batch=batch.batch_id))
        raise Refused(reason("BAD_FILE_NAME", name=shown_name(meta.name), batch=batch.batch_id))
    if batch.replay_of:
        first = state.get(batch.replay_of)
        raise Refused(reason("REPLAY", batch=batch.batch_id, flow=batch.flow,
                             first=first.received_at if first else "earlier"))
    decision = decide(policy, request(batch, policy, None, received_on))
    if not decision.allow:
        raise Refused(*decision.reasons, details=decision.ledger_fields())
    governing = policy.find_flow(batch.flow)
    if governing is not None and governing[1].kind not in KINDS:
        raise Refused(reason("FLOW_NOT_AVAILABLE", flow=batch.flow))


def check_room(upload: Path, spool_dir: Path) -> None:
    """Is there room on the disk for what processing this batch writes (its sealed answer
    or snapshot, about twice what its upload takes on disk; plaintext never reaches it)?

    The upload is counted by the blocks it really takes, not its apparent size (a sparse
    file written at a far offset takes almost none). Below the exchange's own margin,
    intake stops for everyone (:class:`Unavailable`, a probe resumes it); a batch that
    could never fit is refused with its own reason; one that does not fit now waits
    alone (:class:`RetryLater`), and nobody else's batch or upload waits for it."""
    stat = os.stat(upload)
    need = 2 * min(stat.st_size, stat.st_blocks * 512) + FREE_SPACE_MARGIN
    usage = shutil.disk_usage(spool_dir)
    if usage.free < FREE_SPACE_MARGIN:
        raise Unavailable(f"{usage.free // 2**20} MB free on the exchange's disk")
    room = usage.total // 2
    if need > room:
        raise Refused(reason("NO_ROOM_FOR_BATCH", need=need // 2**20, room=room // 2**20))
    if usage.free < need:
        raise RetryLater(f"{usage.free // 2**20} MB free, this batch needs {need // 2**20} MB")


def check_signed_in_time(batch: Batch, opened: Opened) -> None:
    """A signature dated after the upload arrived (beyond clocks' usual drift) is refused."""
    received = received_at(batch)
    if opened.signed_at > received.timestamp() + CLOCK_SKEW_SECONDS:
        raise Refused(reason("SIGNED_IN_THE_FUTURE", signed=utc(opened.signed_at),
                             received=utc(int(received.timestamp()))))


def check_fresh(flow: Flow, batch: Batch, opened: Opened, state: State) -> None:
    """A reference load older than the one in force would roll the data back: one the
    exchange received before it (its own clock, which the sender cannot set), or one
    signed before it (an old signed file sent again). A signature's date cannot lock
    out the honest loads after it: one dated after its receipt is refused at opening
    (SIGNED_IN_THE_FUTURE), so no load in force is dated ahead of the exchange's clock."""
    if flow.dataset is None:
        return
    current = state.current_load(flow.dataset)
    if current is None:
        return
    received, signed = current
    if batch.received_at < received or opened.signed_at < signed:
        raise Refused(reason("STALE_REFERENCE", dataset=flow.dataset,
                             signed=utc(opened.signed_at), received=batch.received_at,
                             current_signed=utc(signed), current_received=received))


def received_at(batch: Batch) -> datetime:
    return datetime.fromisoformat(batch.received_at.replace("Z", "+00:00"))


def utc(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
