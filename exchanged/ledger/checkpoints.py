"""Signing ledger checkpoints and handing them to every party.

A checkpoint is the ledger's tree head signed with the exchange's OpenPGP key.
It is kept in ``HOME/checkpoints/`` and delivered to every registered agency's
``/outbox/ledger/`` folder, so that copies live outside the exchange: an
operator who rewrote the ledger could not make it match the checkpoints the
parties hold.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from exchanged.crypto.keys import Keyring
from exchanged.crypto.signing import sign_document, verify_document, verify_with_key_file
from exchanged.errors import CheckFailed, UsageError
from exchanged.home import Home, atomic_write, load_config, make_private_dir
from exchanged.home.agencies import Agencies
from exchanged.home.drop import PlantedLink, deliver
from exchanged.ledger import Ledger, Query, witness
from exchanged.ledger.treehead import TreeHead, tree_head

log = logging.getLogger("exchanged.ledger.checkpoints")

#: the outbox folder every agency has, beside its flows' folders
LEDGER_FOLDER = "ledger"
NAME_RE = re.compile(r"checkpoint-(\d+)\.json\.asc")


@dataclass(frozen=True)
class Made:
    path: Path
    head: TreeHead
    delivered: tuple[str, ...]
    seq: int


def checkpoint_name(head: TreeHead) -> str:
    return f"checkpoint-{head.tree_size:010d}.json.asc"


def make_checkpoint(home: Home, ledger: Ledger, *, actor: str = "exchange") -> Made:
    """Sign the ledger's tree head, keep it, deliver it to every agency, record it."""
    config = load_config(home)
    openpgp = Keyring(home.gnupg)
    fingerprint = openpgp.exchange_fingerprint()
    head = tree_head(ledger, exchange=config.name, fingerprint=fingerprint)
    signed = sign_document(home.gnupg, fingerprint, head.to_json())
    name = checkpoint_name(head)
    make_private_dir(home.checkpoints)
    path = home.checkpoints / name
    atomic_write(path, signed)
    delivered = []
    home = home.configured(config)
    for agency in Agencies(home).all():
        try:
            deliver(home, agency, LEDGER_FOLDER, name, signed)
        except PlantedLink as e:  # the checkpoint stays in checkpoints/; the entry says who
            log.error("checkpoint not delivered to %s: %s", agency, e, extra={"agency": agency})
            continue
        delivered.append(agency)
    # the same tree head as a C2SP signed note, for the agencies to check and co-sign
    witness.publish(home, ledger, head, delivered)
    seq = ledger.append("ledger.checkpoint", actor=actor, tree_size=head.tree_size,
                        root_hash=head.root_hash, file=name, delivered_to=delivered)
    log.info("ledger checkpoint %d signed and delivered to %d agencies", head.tree_size,
             len(delivered))
    return Made(path, head, tuple(delivered), seq)


@dataclass(frozen=True)
class SinceCheckpoint:
    """What the ledger holds that no checkpoint signed yet: the entries written after the
    last checkpoint's own entry, and when that checkpoint was made (None: never)."""

    entries: int
    last_at: datetime | None


def since_last_checkpoint(ledger: Ledger) -> SinceCheckpoint:
    """Two indexed look-ups: cheap enough to ask every few seconds."""
    head, _ = ledger.head()
    last = ledger.last_of("ledger.checkpoint")
    if last is None:
        return SinceCheckpoint(head, None)
    made = datetime.strptime(last.ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return SinceCheckpoint(head - last.seq, made)


def checkpoint_due(since: SinceCheckpoint, now: datetime, *, every_entries: int,
                   every_minutes: int) -> bool:
    """Whether a checkpoint is due besides the daily one: ``every_entries`` entries were
    written since the last, or ``every_minutes`` minutes passed since it and anything was
    written meanwhile (an idle exchange signs nothing new; 0 turns a rule off).

    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> def due(entries: int, minutes: int) -> bool:
    ...     return checkpoint_due(SinceCheckpoint(entries, at), at + timedelta(minutes=minutes),
    ...                           every_entries=1000, every_minutes=60)
    >>> due(999, 59), due(1000, 0), due(1, 60), due(0, 600)
    (False, True, True, False)
    """
    if since.entries <= 0:
        return False
    if every_entries and since.entries >= every_entries:
        return True
    return bool(every_minutes) and (
        since.last_at is None or now - since.last_at >= timedelta(minutes=every_minutes))


def latest(home: Home) -> Path | None:
    found = sorted(p for p in home.checkpoints.glob("checkpoint-*.json.asc")
                   if NAME_RE.fullmatch(p.name))
    return found[-1] if found else None


def read_checkpoint(path: Path, *, home: Home | None = None, exchange_key: Path | None = None
                    ) -> TreeHead:
    """A checkpoint file, its signature checked against the exchange's key."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    if exchange_key is not None:
        verified = verify_with_key_file(data, exchange_key)
    elif home is not None:
        verified = verify_document(data, home.gnupg, _exchange_keys(home))
    else:
        raise UsageError("give --home, or --exchange-key with the exchange's public key")
    head = TreeHead.from_json(verified.content)
    if head.exchange_fingerprint.upper() != verified.signer.upper():
        raise CheckFailed("the checkpoint names a key other than the one that signed it")
    return head


def _exchange_keys(home: Home) -> set[str]:
    """The exchange's key, and every key that was the exchange's before a rotation (their
    checkpoints stay valid: an agency keeps them for years)."""
    keys = {Keyring(home.gnupg).exchange_fingerprint().upper()}
    if home.ledger.exists():
        ledger = Ledger(home.ledger, readonly=True)
        try:
            keys |= exchange_fingerprints(ledger)
        finally:
            ledger.close()
    return keys


def exchange_fingerprints(ledger: Ledger) -> set[str]:
    """Every OpenPGP key that has been the exchange's, as the ledger records them."""
    found = set()
    for entry in ledger.query(Query(kind="exchange.initialised")):
        found.add(str(entry.data.get("exchange_fingerprint", "")).upper())
    for entry in ledger.query(Query(kind="exchange.key_rotated")):
        if entry.data.get("key") == "openpgp":
            found.add(str(entry.data.get("new_fingerprint", "")).upper())
    found.discard("")
    return found


def read_proof(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        raise UsageError(f"{path} is not a readable proof (JSON)") from None
    if not isinstance(value, dict):
        raise UsageError(f"{path} is not a proof")
    return value
