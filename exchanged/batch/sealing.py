"""Sealing outcomes: an answer or a rejection, signed by the exchange and encrypted to the agency.

gpg seals what is written into its pipe; the sealed message goes to a temporary
name in the batch's spool folder and, complete, is fsynced and renamed to
``outcome``: a sealed outcome is never half there. An answer is sealed as the flow
writes it (:meth:`Sealer.start`, :meth:`Sealer.finish`); a rejection is sealed from
its reasons (:meth:`Sealer.seal_rejection`), which moves the batch from *rejected*
to *processed* with its ``outcome.sealed`` entry in the same transaction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from exchanged.batch.names import inner_name
from exchanged.batch.spool import Spool
from exchanged.batch.state import PROCESSED, Batch, State
from exchanged.crypto.keys import Keyring
from exchanged.crypto.streams import SealFailed, Sealing
from exchanged.home import fsync_dir
from exchanged.home.agencies import Agencies
from exchanged.ledger import Ledger

#: the temporary name of an outcome being sealed, in the batch's spool folder
SEALING_NAME = ".outcome.tmp"


@dataclass(frozen=True)
class Sealed:
    kind: str  # "result" | "rejected"
    sha256: str


class Sealer:
    """Seals a batch's outcome into its spool folder."""

    def __init__(self, spool: Spool, state: State, ledger: Ledger, openpgp: Keyring,
                 agencies: Agencies, exchange_fpr: str, *, now: Callable[[], str],
                 compress_level: Callable[[str], int | None] = lambda agency: None) -> None:
        self.spool = spool
        self.state = state
        self.ledger = ledger
        self.openpgp = openpgp
        self.agencies = agencies
        self.exchange_fpr = exchange_fpr
        self._now = now
        self._compress_level = compress_level

    def start(self, batch: Batch, kind: str) -> Sealing:
        """gpg sealing an answer as the flow writes it (into the spool's temporary name)."""
        agency = self.agencies.get(batch.agency)
        if agency is None:
            raise SealFailed("the agency is no longer registered")
        return self.openpgp.sealing(self._temporary(batch), recipient=agency.gpg_fingerprint,
                                    signer=self.exchange_fpr,
                                    filename=inner_name(batch.batch_id, kind),
                                    compress_level=self._compress_level(batch.agency))

    def finish(self, batch: Batch, sealing: Sealing, kind: str) -> Sealed:
        """The answer is complete: gpg finishes it, and it moves into place."""
        sealing.finish()
        target = self.spool.outcome_path(batch.uid)
        tmp = self._temporary(batch)
        digest = sealing.sha256()
        _fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
        return Sealed(kind, digest)

    def seal_rejection(self, batch: Batch) -> Batch:
        """rejected → processed: the reasons, sealed, with outcome.sealed on record."""
        reasons = json.loads(self.spool.reasons_path(batch.uid).read_bytes())
        body = {"batch": batch.batch_id, "flow": batch.flow, "reasons": reasons,
                "ledger_seq": batch.reject_seq}
        sealing = self.start(batch, "rejected")
        try:
            sealing.stream.write(json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")
                                 + b"\n")
            sealed = self.finish(batch, sealing, "rejected")
        except BaseException:
            sealing.abort()
            raise
        with self.ledger.transaction() as txn:
            self.state.move(txn, batch.uid, PROCESSED, self._now(), outcome_sha256=sealed.sha256)
            txn.append("outcome.sealed", **batch.ids(), uid=batch.uid, outcome="rejected",
                       outcome_sha256=sealed.sha256)
        # the sentences are in the sealed rejection now: their plain copy goes
        self.spool.reasons_path(batch.uid).unlink(missing_ok=True)
        return self.state.get(batch.uid) or batch

    def _temporary(self, batch: Batch) -> Path:
        return self.spool.outcome_path(batch.uid).with_name(SEALING_NAME)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
