"""Tree heads (checkpoints) and the proofs that can be checked against them.

A checkpoint says: ledger L held N entries whose Merkle tree head is R, at time
T. Signed by the exchange and kept by every party, it lets anyone prove later,
without trusting the exchange's operator, that

- an entry is in the ledger (an *inclusion proof* against one checkpoint), and
- the ledger of today extends the ledger of then, with nothing rewritten or
  removed (a *consistency proof* between two checkpoints, or a recomputation
  over the ledger itself: ``ledger verify --against``).

Documents are JSON (sorted keys) inside OpenPGP signed messages; the formats
are versioned strings in a ``format`` field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from exchanged.errors import CheckFailed
from exchanged.ledger.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from exchanged.ledger.store import Entry, Ledger, entry_bytes, format_ts, utc_now

CHECKPOINT_FORMAT = "exchanged/checkpoint-v1"
INCLUSION_FORMAT = "exchanged/inclusion-proof-v1"
CONSISTENCY_FORMAT = "exchanged/consistency-proof-v1"


@dataclass(frozen=True)
class TreeHead:
    ledger_id: str
    exchange: str
    exchange_fingerprint: str
    tree_size: int
    root_hash: str
    chain_head: str
    timestamp: str
    format: str = CHECKPOINT_FORMAT

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=2).encode("utf-8") + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> TreeHead:
        try:
            raw = json.loads(data)
            if raw.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("format")
            head = cls(**{k: raw[k] for k in cls.__dataclass_fields__})
            if not isinstance(head.tree_size, int) or head.tree_size < 1:
                raise ValueError("tree_size")
            bytes.fromhex(head.root_hash)
            return head
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CheckFailed("the file is not an exchanged checkpoint") from None


def tree_head(ledger: Ledger, *, exchange: str, fingerprint: str, size: int | None = None
              ) -> TreeHead:
    """The tree head over the first ``size`` entries (default: all)."""
    head_seq, _ = ledger.head()
    size = head_seq if size is None else size
    if not 1 <= size <= head_seq:
        raise CheckFailed(f"the ledger has {head_seq} entries, not {size}")
    entry = ledger.entry(size)
    assert entry is not None
    return TreeHead(
        ledger_id=ledger.ledger_id(), exchange=exchange, exchange_fingerprint=fingerprint,
        tree_size=size, root_hash=root(ledger.leaves(size)).hex(), chain_head=entry.hash,
        timestamp=format_ts(utc_now()),
    )


def _entry_dict(e: Entry) -> dict[str, Any]:
    return {"seq": e.seq, "ts": e.ts, "kind": e.kind, "agency": e.agency, "flow": e.flow,
            "batch": e.batch, "actor": e.actor, "data": e.data_text}


def inclusion(ledger: Ledger, seq: int, head: TreeHead) -> dict[str, Any]:
    """The proof that entry ``seq`` is in the tree of checkpoint ``head``."""
    if head.ledger_id != ledger.ledger_id():
        raise CheckFailed("the checkpoint is of another ledger")
    if not 1 <= seq <= head.tree_size:
        raise CheckFailed(f"entry {seq} is not within the checkpoint's {head.tree_size} entries")
    leaves = ledger.leaves(head.tree_size)
    if root(leaves).hex() != head.root_hash:
        raise CheckFailed("this ledger no longer matches the checkpoint")
    entry = ledger.entry(seq)
    assert entry is not None
    return {
        "format": INCLUSION_FORMAT, "ledger_id": head.ledger_id, "tree_size": head.tree_size,
        "root_hash": head.root_hash, "leaf_index": seq - 1, "entry": _entry_dict(entry),
        "path": [p.hex() for p in inclusion_proof(leaves, seq - 1)],
    }


def consistency(ledger: Ledger, old: TreeHead, new: TreeHead) -> dict[str, Any]:
    """The proof that the tree of ``old`` is a prefix of the tree of ``new``."""
    ledger_id = ledger.ledger_id()
    if old.ledger_id != ledger_id or new.ledger_id != ledger_id:
        raise CheckFailed("a checkpoint is of another ledger")
    if old.tree_size > new.tree_size:
        raise CheckFailed("the first checkpoint must be the older one")
    leaves = ledger.leaves(new.tree_size)
    if root(leaves).hex() != new.root_hash:
        raise CheckFailed("this ledger no longer matches the newer checkpoint")
    return {
        "format": CONSISTENCY_FORMAT, "ledger_id": ledger_id,
        "first_size": old.tree_size, "first_root": old.root_hash,
        "second_size": new.tree_size, "second_root": new.root_hash,
        "path": [p.hex() for p in consistency_proof(leaves, old.tree_size)],
    }


def check_inclusion(proof: dict[str, Any], head: TreeHead) -> dict[str, Any]:
    """Check an inclusion proof against a (verified) checkpoint; returns the entry."""
    try:
        if proof.get("format") != INCLUSION_FORMAT:
            raise ValueError
        e = proof["entry"]
        encoded = entry_bytes(int(e["seq"]), e["ts"], e["kind"], e["agency"], e["flow"],
                              e["batch"], e["actor"], e["data"])
        path = [bytes.fromhex(p) for p in proof["path"]]
        index = int(proof["leaf_index"])
    except (ValueError, KeyError, TypeError):
        raise CheckFailed("the file is not an exchanged inclusion proof") from None
    if proof.get("ledger_id") != head.ledger_id or int(proof["tree_size"]) != head.tree_size:
        raise CheckFailed("the proof is not for this checkpoint (another ledger or size)")
    if int(e["seq"]) != index + 1:
        raise CheckFailed("the proof's entry is not at the index it claims")
    if not verify_inclusion(leaf_hash(encoded), index, head.tree_size, path,
                            bytes.fromhex(head.root_hash)):
        raise CheckFailed("the entry is NOT in the ledger of this checkpoint: the proof fails")
    result: dict[str, Any] = dict(e)
    return result


def check_consistency(proof: dict[str, Any], old: TreeHead, new: TreeHead) -> None:
    """Check a consistency proof between two (verified) checkpoints; CheckFailed if it fails."""
    if old.ledger_id != new.ledger_id:
        raise CheckFailed("the two checkpoints are of different ledgers")
    try:
        if proof.get("format") != CONSISTENCY_FORMAT:
            raise ValueError
        path = [bytes.fromhex(p) for p in proof["path"]]
        claimed = (int(proof["first_size"]), int(proof["second_size"]))
    except (ValueError, KeyError, TypeError):
        raise CheckFailed("the file is not an exchanged consistency proof") from None
    if claimed != (old.tree_size, new.tree_size) or proof.get("ledger_id") != old.ledger_id:
        raise CheckFailed("the proof is not for these two checkpoints")
    if not verify_consistency(old.tree_size, new.tree_size, bytes.fromhex(old.root_hash),
                              bytes.fromhex(new.root_hash), path):
        raise CheckFailed("the newer ledger does NOT extend the older one: history was "
                          "rewritten, or the proof is wrong")
