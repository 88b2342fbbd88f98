"""Delivery: a sealed outcome into the agency's outbox, atomically, and the batch *answered*.

The outbox is reached through directory descriptors, no component of the agency's
part of the path followed if it is a link (:mod:`exchanged.home.drop`): another
process on the host that replaced a folder by a link to elsewhere gets nothing
delivered there. The batch then stays *processed* and is delivered later, and the
ledger says why, once per batch and run (``batch.undeliverable``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import NoReturn

from exchanged.batch.spool import Spool
from exchanged.batch.state import ANSWERED, Batch, State
from exchanged.errors import RetryLater
from exchanged.home import Home
from exchanged.home.drop import PlantedLink, open_drop_folder, place
from exchanged.ledger import Ledger

log = logging.getLogger("exchanged.pipeline")


class Undeliverable(RetryLater):
    """An outcome cannot go into the agency's outbox as it is now (a folder of its tree is
    a link or not a folder): the batch keeps its stage and is delivered later."""


class Delivery:
    """Puts sealed outcomes into the agencies' outboxes."""

    def __init__(self, home: Home, spool: Spool, state: State, ledger: Ledger, *,
                 now: Callable[[], str]) -> None:
        self.home = home
        self.spool = spool
        self.state = state
        self.ledger = ledger
        self._now = now
        #: batches whose outbox was found to be a link, recorded once per batch and run
        self._undeliverable: set[str] = set()
        self._guard = threading.Lock()

    def deliver(self, batch: Batch) -> Batch:
        """processed → answered: the outcome renamed (or copied) into the outbox."""
        assert batch.outcome_name is not None
        try:
            outbox = open_drop_folder(self.home, batch.agency, "outbox", batch.flow)
        except PlantedLink as e:
            self._refuse(batch, e)
        try:
            # OpenSSH mode: a copy the agency's user reads through its group; else a hard link
            place(outbox, batch.outcome_name, source=self.spool.outcome_path(batch.uid),
                  mode=0o640 if self.home.shared_drop else 0o600, link=not self.home.shared_drop)
        finally:
            os.close(outbox)
        with self._guard:
            self._undeliverable.discard(batch.uid)
        with self.ledger.transaction() as txn:
            self.state.move(txn, batch.uid, ANSWERED, self._now())
            txn.append("batch.answered", **batch.ids(), uid=batch.uid, outcome=batch.outcome_kind,
                       outcome_name=batch.outcome_name, outcome_sha256=batch.outcome_sha256)
        self.spool.forget(batch.uid)
        log.info("batch %s answered: %s", batch.uid, batch.outcome_kind,
                 extra={**batch.ids(), "uid": batch.uid})
        return self.state.get(batch.uid) or batch

    def _refuse(self, batch: Batch, link: PlantedLink) -> NoReturn:
        why = str(link)
        log.error("batch %s not delivered: %s; kept to deliver later", batch.uid, why,
                  extra={**batch.ids(), "uid": batch.uid})
        if batch.uid not in self._undeliverable:
            # recorded first: if it cannot be, the next try records it
            self.ledger.append("batch.undeliverable", **batch.ids(), uid=batch.uid, why=why)
            with self._guard:
                self._undeliverable.add(batch.uid)
        raise Undeliverable(why)
