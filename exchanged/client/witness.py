"""The agency as a witness of the exchange's ledger: part of ``exchanged fetch``.

At every fetch the client reads the exchange's checkpoint notes in ``/outbox/ledger/``,
and, with what it kept from the last fetch (``<state>/witness/<server>/<agency>/``, 0600):

1. checks the note key and the other parties' witness keys: ``witnesses.json.asc``,
   signed by the exchange's pinned OpenPGP key; each key is pinned on first sight and a
   changed one refused;
2. checks each note newer than the last it saw: signed by the note key, and a
   consistency proof (RFC 9162 section 2.1.4) linking it to the one before, back to the
   last it saw: the ledger only grew;
3. checks every other party's cosignature on those notes: each is a statement by that
   party that the same history was shown to it;
4. co-signs the newest (c2sp.org/tlog-cosignature, its own Ed25519 witness key, made on
   first use in ``<state>/witness/<agency>.key``) and uploads the cosignature to
   ``/inbox/ledger/``; its first cosignature registers the key with the exchange.

A note that does not extend what the agency saw — the exchange rewrote history, or
showed another party another branch — ends the fetch with :class:`SplitView` (exit 1),
naming the split and who co-signed each side.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchanged.client.agency import Client, ClientError, Warn, warn_on_stderr
from exchanged.crypto.signing import verify_document
from exchanged.errors import CheckFailed, KeyProblem
from exchanged.home import atomic_write
from exchanged.ledger.merkle import verify_consistency
from exchanged.ledger.notes import Checkpoint, Note, NoteKey, Verifier, parse_note
from exchanged.ledger.witness import (
    COSIG_RE,
    LEDGER_FOLDER,
    NOTE_RE,
    WITNESSES_FORMAT,
    WITNESSES_NAME,
    origin,
    proof_name,
)

FOLDER = f"/outbox/{LEDGER_FOLDER}"
__all__ = ["SplitView", "Witnessed", "check", "warn_on_stderr", "witness_key"]


class SplitView(CheckFailed):
    """The exchange showed this agency a history that does not extend what it saw, or that
    another party did not see: the ledger is split (exit 1)."""


@dataclass(frozen=True)
class Witnessed:
    """What a fetch found of the ledger's checkpoints."""

    size: int
    previous: int | None
    cosigned_by: tuple[str, ...]
    uploaded: bool
    silent: tuple[str, ...]
    #: the agency's own witness key (a vkey), for its administrator to confirm
    vkey: str


def _safe(server: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", server)


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def witness_key(state: Path, agency: str) -> NoteKey:
    """The agency's witness key, made (0600) on first use."""
    path = _private_dir(state / "witness") / f"{agency}.key"
    if path.exists():
        return NoteKey.load(path.read_bytes())
    key = NoteKey.generate(agency, cosigner=True)
    atomic_write(path, key.dump(), mode=0o600)
    return key


def _keys(client: Client, data: bytes, agency: str) -> tuple[str, Verifier, dict[str, Verifier]]:
    """The origin, the note key and the other parties' witness keys, from the exchange's
    signed document, each pinned on first sight."""
    try:
        doc: dict[str, Any] = json.loads(
            verify_document(data, client.keyring.home, client.exchange_fpr).content)
        if doc.get("format") != WITNESSES_FORMAT:
            raise ValueError
        log_key = Verifier.from_vkey(str(doc["log_key"]))
        found = {str(a): Verifier.from_vkey(str(v)) for a, v in dict(doc["witnesses"]).items()}
        where = str(doc["origin"])
    except (ValueError, KeyError, TypeError):
        raise CheckFailed(f"{WITNESSES_NAME} is not the exchange's list of witness keys") from None
    if where != origin(str(doc["ledger_id"])) or log_key.name != where:
        raise CheckFailed("the exchange's note key does not name its ledger")
    _pin(client, "note_key", log_key.vkey(), "the exchange's checkpoint note key")
    others = {}
    for party, verifier in found.items():
        if party == agency:
            continue
        _pin(client, f"witness_key:{party}", verifier.vkey(), f"the witness key of {party}")
        others[party] = verifier
    return where, log_key, others


def _pin(client: Client, what: str, value: str, said: str) -> None:
    pinned = client.pins.get(client.server, what)
    if pinned is None:
        client.pins.set(client.server, what, value)
    elif pinned != value:
        raise KeyProblem(f"{said} CHANGED since it was pinned ({value.split('+')[1]} is not "
                         f"{pinned.split('+')[1]}): it could be a forged one. Ask the other "
                         f"party by a second channel; if it really changed, remove {what} for "
                         f"{client.server} from {client.pins.path}")


def _proof(client: Client, size: int, names: set[str]) -> dict[str, Any] | None:
    if proof_name(size) not in names:
        return None
    try:
        value = json.loads(client.download(f"{FOLDER}/{proof_name(size)}"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _links(proof: dict[str, Any] | None, old: Checkpoint, new: Checkpoint) -> bool:
    """Does ``proof`` show that the tree of ``old`` is a prefix of the tree of ``new``?"""
    if old.tree_size == new.tree_size:
        return old.root_hash == new.root_hash
    if proof is None:
        return False
    try:
        path = [bytes.fromhex(p) for p in proof["path"]]
        if (int(proof["first_size"]), int(proof["second_size"])) != (old.tree_size,
                                                                      new.tree_size):
            return False
    except (KeyError, TypeError, ValueError):
        return False
    return verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, path)


def _who(note: Note, others: dict[str, Verifier]) -> list[str]:
    return sorted(p for p, v in others.items() if v.cosigned_at(note) is not None)


def _split(agency: str, seen: Checkpoint, seen_by: list[str], other: Checkpoint,
           other_by: list[str]) -> SplitView:
    def side(c: Checkpoint, by: list[str]) -> str:
        return f"checkpoint {c.tree_size} ({', '.join(by) or 'co-signed by no one'})"

    return SplitView(
        f"the exchange's ledger is SPLIT: {side(other, other_by)} does not extend "
        f"{side(seen, seen_by)} that {agency} saw: the exchange rewrote its history or is "
        f"showing the parties different ledgers; keep {FOLDER} and the client's witness "
        f"state as evidence and tell the other parties")


def check(client: Client, state: Path, warn: Warn) -> Witnessed | None:
    """Steps 1 to 4 above; None if the exchange publishes no checkpoint notes (yet)."""
    sftp = client.sftp()
    try:
        names = set(sftp.listdir(FOLDER))
    except OSError:
        return None
    sizes = sorted(int(m.group(1)) for n in names if (m := NOTE_RE.fullmatch(n)))
    if not sizes or WITNESSES_NAME not in names:
        return None
    agency = client.agency
    where, log_key, others = _keys(client, client.download(f"{FOLDER}/{WITNESSES_NAME}"), agency)
    folder = _private_dir(state / "witness" / _safe(client.server) / agency)
    last_path = folder / "last.note"
    last = parse_note(last_path.read_bytes()) if last_path.exists() else None
    floor = last.checkpoint().tree_size if last else 0
    current, current_note = (last.checkpoint(), last) if last else (None, None)
    previous = current.tree_size if current else None
    heard: dict[str, int] = {}
    for size in (s for s in sizes if s >= floor):
        note = parse_note(client.download(f"{FOLDER}/checkpoint-{size:010d}.note"))
        if not log_key.verifies(note):
            raise CheckFailed(f"checkpoint note {size} is not signed by the exchange's note key")
        point = note.checkpoint()
        if point.origin != where or point.tree_size != size:
            raise CheckFailed(f"checkpoint note {size} names another ledger or size")
        by = _who(note, others)
        if current is not None and current_note is not None and not _links(
                _proof(client, size, names), current, point):
            raise _split(agency, current, _who(current_note, others) + [agency], point, by)
        current, current_note = point, note
        for party in by:
            heard[party] = size
    assert current is not None and current_note is not None
    uploaded = _cosign(client, state, current_note, current)
    atomic_write(last_path, current_note.render(), mode=0o600)
    silent = tuple(p for p in sorted(others) if p not in heard)
    for party in silent:
        warn(f"{party} has co-signed no checkpoint since {floor or 'the first'}: if it stays "
             f"silent, compare the last checkpoint with {party} by a second channel")
    return Witnessed(current.tree_size, previous, tuple(_who(current_note, others)), uploaded,
                     silent, witness_key(state, agency).verifier().vkey())


def _cosign(client: Client, state: Path, note: Note, point: Checkpoint) -> bool:
    """Co-sign ``note`` and upload the cosignature, unless the note carries it already."""
    key = witness_key(state, client.agency)
    mine = key.verifier()
    if mine.cosigned_at(note) is not None:
        return False
    line = key.cosign(note.text, timestamp=int(time.time()))
    name = f"checkpoint-{point.tree_size:010d}.cosig"
    assert COSIG_RE.fullmatch(name)
    refused = f"{FOLDER}/{name}.refused.json"
    sftp = client.sftp()
    try:
        sftp.remove(refused)
    except OSError:
        pass
    try:
        with sftp.open(f"/inbox/{LEDGER_FOLDER}/{name}", "wb") as f:
            f.write((mine.vkey() + "\n" + line.line()).encode())
    except OSError as e:
        raise ClientError(f"the cosignature of checkpoint {point.tree_size} could not be "
                          f"uploaded: {e}") from None
    try:
        body = json.loads(client.download(refused))
    except (ClientError, ValueError):
        return True
    reasons = "; ".join(f"{r.get('code')}: {r.get('message')}" for r in body.get("reasons", []))
    raise ClientError(f"the exchange refused the cosignature of checkpoint "
                      f"{point.tree_size}: {reasons}")
