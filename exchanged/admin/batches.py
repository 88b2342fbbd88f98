"""``exchanged batch requeue``: an administrator puts shunted batches back into the pipeline.

A batch is *shunted* after its last try (its outcome could not be sealed for the
agency's key, or delivered into an outbox that is a link, for longer than the
configured ``retry_delays``). Once the cause is mended (``agency update`` with a
usable key, the link removed), ``requeue`` puts it back; the running daemon takes it
up within seconds (a stopped one when it starts), and ``batch.requeued`` records who
did what.
"""

from __future__ import annotations

from collections.abc import Sequence

from exchanged.batch.state import State
from exchanged.errors import UsageError
from exchanged.home import Home
from exchanged.ledger import open_ledger


def requeue(home: Home, uids: Sequence[str], *, every: bool = False) -> list[str]:
    """Put the shunted batches ``uids`` (or, with ``every``, all of them) back; returns the
    uids put back. A uid that is not a shunted batch is a usage error."""
    home.require()
    ledger = open_ledger(home)
    try:
        state = State(ledger)
        shunted = {b.uid for b in state.shunted()}
        targets = sorted(shunted) if every else list(uids)
        if not targets:
            raise UsageError("no batch is shunted" if every else "name a batch (its uid) or --all")
        unknown = [uid for uid in targets if uid not in shunted]
        if unknown:
            raise UsageError(f"not a shunted batch: {', '.join(unknown)} (shunted: "
                             f"{', '.join(sorted(shunted)) or 'none'})")
        done = []
        for uid in targets:
            with ledger.transaction() as txn:
                if state.requeue(txn, uid):
                    batch = state.get_in(txn, uid)
                    txn.append("batch.requeued", **batch.ids(), uid=uid, actor="admin",
                               stage=batch.stage)
                    done.append(uid)
        return done
    finally:
        ledger.close()
