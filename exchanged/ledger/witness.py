"""Witnessed checkpoints, the exchange's side: notes published, cosignatures recorded.

Beside each OpenPGP-signed checkpoint the exchange publishes the same tree head as a
C2SP ``tlog-checkpoint`` note signed with its Ed25519 note key (``keys/note.ed25519``,
made on first use), a consistency proof from the checkpoint before it, and
``witnesses.json.asc``: the note key and every agency's witness key, signed with the
exchange's OpenPGP key (which the agencies pinned already), so that an agency can trust
the note key without a new step. Each agency's client checks every new note against the
last it saw and co-signs it (:mod:`exchanged.client.witness`); its cosignature comes
back over SFTP (``/inbox/ledger/checkpoint-<size>.cosig``), is verified, recorded
(``ledger.cosigned``) and added to the note, which is delivered again to every agency:
each party sees which others co-signed what. An exchange that showed two parties two
histories cannot make one party's cosignature fit the other's history.

The files in ``/outbox/ledger/`` (and ``HOME/checkpoints/``)::

    checkpoint-0000001843.note          the note, with every cosignature received
    checkpoint-0000001843.proof.json    consistency proof from the checkpoint before it
    witnesses.json.asc                  the note key and the witness keys (OpenPGP-signed)
    checkpoint-0000001843.cosig.refused.json   why an agency's cosignature was refused
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchanged.crypto.keys import Keyring
from exchanged.crypto.signing import sign_document
from exchanged.errors import CheckFailed, Reason
from exchanged.home import Home, atomic_write, make_private_dir
from exchanged.home.agencies import Agencies
from exchanged.home.drop import PlantedLink, deliver
from exchanged.ledger.merkle import consistency_proof
from exchanged.ledger.notes import (
    COSIGNATURE_V1,
    Note,
    NoteKey,
    Verifier,
    checkpoint_text,
    parse_note,
)
from exchanged.ledger.store import Ledger
from exchanged.ledger.treehead import CONSISTENCY_FORMAT, TreeHead
from exchanged.reasons import reason

log = logging.getLogger("exchanged.ledger.witness")

LEDGER_FOLDER = "ledger"
WITNESSES_FORMAT = "exchanged/witnesses-v1"
REFUSAL_FORMAT = "exchanged/cosignature-refused-v1"
WITNESSES_NAME = "witnesses.json.asc"
NOTE_RE = re.compile(r"checkpoint-(\d{10})\.note")
COSIG_RE = re.compile(r"checkpoint-(\d{10})\.cosig")
#: what a note served in an outbox starts with (the origin line)
ORIGIN_PREFIX = "exchanged.invalid/ledger/"
#: a cosignature file: a vkey line and a signature line or two
MAX_COSIG_BYTES = 4096
#: a cosignature dated further ahead than this of the exchange's clock is refused
FUTURE_SLACK_S = 300


def origin(ledger_id: str) -> str:
    """The log's origin line (and its note key's name): one per ledger."""
    return f"{ORIGIN_PREFIX}{ledger_id}"


def note_name(size: int) -> str:
    return f"checkpoint-{size:010d}.note"


def proof_name(size: int) -> str:
    return f"checkpoint-{size:010d}.proof.json"


def _note_key_path(home: Home) -> Path:
    return home.keys / "note.ed25519"


def _witness_keys_path(home: Home) -> Path:
    return home.keys / "witnesses.json"


def note_key(home: Home, ledger: Ledger) -> NoteKey:
    """The exchange's Ed25519 note key, made (0600) the first time a note is signed."""
    path = _note_key_path(home)
    if path.exists():
        return NoteKey.load(path.read_bytes())
    key = NoteKey.generate(origin(ledger.ledger_id()))
    atomic_write(path, key.dump())
    return key


def witness_keys(home: Home) -> dict[str, Verifier]:
    path = _witness_keys_path(home)
    if not path.exists():
        return {}
    raw = json.loads(path.read_bytes())
    return {agency: Verifier.from_vkey(vkey) for agency, vkey in raw.items()}


def register_witness_key(home: Home, ledger: Ledger, agency: str, vkey: str, *,
                         actor: str) -> Verifier:
    """Register (or replace) an agency's witness key; recorded as ``ledger.witness_key``."""
    verifier = Verifier.from_vkey(vkey)
    if verifier.sig_type != COSIGNATURE_V1 or verifier.name != agency:
        raise CheckFailed(f"a witness key of {agency} is a cosignature/v1 vkey named {agency}")
    with _notes_locked(home):
        keys = {a: v.vkey() for a, v in witness_keys(home).items()}
        before = keys.get(agency)
        keys[agency] = verifier.vkey()
        ledger.append("ledger.witness_key", agency=agency, actor=actor, vkey=verifier.vkey(),
                      replaced=before, first_use=actor == agency)
        atomic_write(_witness_keys_path(home), json.dumps(keys, sort_keys=True).encode())
    return verifier


@contextmanager
def _notes_locked(home: Home) -> Iterator[None]:
    """One writer of notes at a time: the daemon's SFTP threads (cosignatures), its
    scheduler and ``exchanged ledger checkpoint`` (another process)."""
    make_private_dir(home.checkpoints)
    with open(home.checkpoints / ".notes.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def notes(home: Home) -> list[tuple[int, Path]]:
    found = []
    for path in home.checkpoints.glob("checkpoint-*.note"):
        m = NOTE_RE.fullmatch(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def _deliver_all(home: Home, name: str, data: bytes, agencies: list[str]) -> list[str]:
    delivered = []
    for agency in agencies:
        try:
            deliver(home, agency, LEDGER_FOLDER, name, data)
        except PlantedLink as e:
            log.error("%s not delivered to %s: %s", name, agency, e)
            continue
        delivered.append(agency)
    return delivered


def witnesses_document(home: Home, ledger: Ledger, fingerprint: str) -> bytes:
    """The note key and every witness key, signed with the exchange's OpenPGP key."""
    body = {"format": WITNESSES_FORMAT, "ledger_id": ledger.ledger_id(),
            "origin": origin(ledger.ledger_id()),
            "log_key": note_key(home, ledger).verifier().vkey(),
            "witnesses": {a: v.vkey() for a, v in sorted(witness_keys(home).items())}}
    return sign_document(home.gnupg, fingerprint,
                         json.dumps(body, sort_keys=True, indent=2).encode() + b"\n")


def publish(home: Home, ledger: Ledger, head: TreeHead, agencies: list[str]) -> None:
    """The checkpoint ``head`` as a signed note, with the consistency proof from the note
    before it, and the witness keys: kept in ``checkpoints/`` and delivered to every agency."""
    key = note_key(home, ledger)
    root_hash = bytes.fromhex(head.root_hash)
    with _notes_locked(home):
        earlier = [(size, path) for size, path in notes(home) if size < head.tree_size]
        note = key.sign_note(checkpoint_text(origin(head.ledger_id), head.tree_size, root_hash))
        atomic_write(home.checkpoints / note_name(head.tree_size), note)
        files = [(note_name(head.tree_size), note)]
        if earlier:
            size, path = earlier[-1]
            before = parse_note(path.read_bytes()).checkpoint()
            proof = {"format": CONSISTENCY_FORMAT, "ledger_id": head.ledger_id,
                     "first_size": size, "first_root": before.root_hash.hex(),
                     "second_size": head.tree_size, "second_root": head.root_hash,
                     "path": [p.hex() for p in consistency_proof(
                         ledger.leaves(head.tree_size), size)]}
            # "format" first: what the outbox's filter recognises
            data = json.dumps(proof, separators=(",", ":")).encode() + b"\n"
            atomic_write(home.checkpoints / proof_name(head.tree_size), data)
            files.append((proof_name(head.tree_size), data))
    files.append((WITNESSES_NAME, witnesses_document(home, ledger, head.exchange_fingerprint)))
    for name, data in files:
        _deliver_all(home, name, data, agencies)


@dataclass(frozen=True)
class CosignResult:
    """A cosignature recorded (``reason`` None) or refused (why), with its ledger entry."""

    size: int
    seq: int
    reason: Reason | None = None


def _refuse(home: Home, ledger: Ledger, agency: str, size: int, why: Reason) -> CosignResult:
    seq = ledger.append("ledger.cosignature_refused", agency=agency, actor=agency,
                        tree_size=size, reasons=[why.code])
    body = {"format": REFUSAL_FORMAT, "checkpoint": size, "ledger_seq": seq,
            "reasons": [{"code": why.code, "message": why.message, "pesan": why.pesan}]}
    try:
        deliver(home, agency, LEDGER_FOLDER, f"checkpoint-{size:010d}.cosig.refused.json",
                json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
    except PlantedLink as e:
        log.error("a cosignature refusal not delivered to %s: %s", agency, e)
    log.warning("cosignature of checkpoint %d by %s refused: %s", size, agency, why.code)
    return CosignResult(size, seq, why)


def _parse_upload(data: bytes) -> tuple[str, Note]:
    """The vkey line and the signature lines of a cosignature upload."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckFailed("not UTF-8") from None
    first, _, rest = text.partition("\n")
    # the lines are parsed as the signatures of an empty note: the same strict rules
    return first, parse_note(b"x\n\n" + rest.encode())


def receive_cosignature(home: Home, ledger: Ledger, agency: str, name: str, data: bytes,
                        *, now: float | None = None) -> CosignResult:
    """Check, record and serve an agency's cosignature of the checkpoint named by ``name``
    (``checkpoint-<size>.cosig``): a vkey line, then its tlog-cosignature line."""
    m = COSIG_RE.fullmatch(name)
    size = int(m.group(1)) if m else 0
    path = home.checkpoints / note_name(size)
    if not m or not path.exists():
        return _refuse(home, ledger, agency, size, reason("UNKNOWN_CHECKPOINT", size=size))
    try:
        if len(data) > MAX_COSIG_BYTES:
            raise CheckFailed("too large")
        vkey, lines = _parse_upload(data)
        offered = Verifier.from_vkey(vkey)
    except CheckFailed as e:
        return _refuse(home, ledger, agency, size,
                       reason("BAD_COSIGNATURE", size=size, why=e.message))
    registered = witness_keys(home).get(agency)
    if registered is not None and registered != offered:
        return _refuse(home, ledger, agency, size, reason(
            "WITNESS_KEY_MISMATCH", key_id=offered.key_id.hex(),
            registered=registered.key_id.hex()))
    note = parse_note(path.read_bytes())
    mine = [s for s in lines.signatures if s.name == offered.name and s.key_id == offered.key_id]
    try:
        if offered.sig_type != COSIGNATURE_V1 or offered.name != agency or len(mine) != 1:
            raise CheckFailed(f"one cosignature/v1 line by a key named {agency}")
        at = offered.cosigned_at(note.with_signatures(mine))
        if at is None or at > (now or time.time()) + FUTURE_SLACK_S:
            raise CheckFailed("dated in the future")
    except CheckFailed as e:
        return _refuse(home, ledger, agency, size,
                       reason("BAD_COSIGNATURE", size=size, why=e.message))
    if registered is None:  # first use: the agency's first cosignature registers its key
        register_witness_key(home, ledger, agency, offered.vkey(), actor=agency)
    checkpoint = note.checkpoint()
    with _notes_locked(home):
        note = parse_note(path.read_bytes()).with_signatures(mine)
        seq = ledger.append(
            "ledger.cosigned", agency=agency, actor=agency, tree_size=size,
            root_hash=checkpoint.root_hash.hex(), key_id=offered.key_id.hex(), cosigned_at=at,
            cosignature=base64.b64encode(mine[0].key_id + mine[0].signature).decode())
        atomic_write(path, note.render())
    everyone = Agencies(home).all()
    _deliver_all(home, note_name(size), note.render(), list(everyone))
    if registered is None:
        fingerprint = Keyring(home.gnupg).exchange_fingerprint()
        _deliver_all(home, WITNESSES_NAME, witnesses_document(home, ledger, fingerprint),
                     list(everyone))
    log.info("checkpoint %d co-signed by %s", size, agency)
    return CosignResult(size, seq)


def cosigners(note: Note, keys: dict[str, Verifier]) -> list[str]:
    """The agencies whose valid cosignature the note carries."""
    return sorted(a for a, v in keys.items() if v.cosigned_at(note) is not None)


def describe(home: Home) -> list[dict[str, Any]]:
    """Every note the exchange published, with who co-signed it (for ``ledger witnesses``)."""
    keys = witness_keys(home)
    out = []
    for size, path in notes(home):
        note = parse_note(path.read_bytes())
        out.append({"tree_size": size, "root_hash": note.checkpoint().root_hash.hex(),
                    "cosigned_by": cosigners(note, keys)})
    return out
