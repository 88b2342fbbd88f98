"""Checkpoints as C2SP signed notes, and the parties' cosignatures on them.

The exchange's OpenPGP-signed checkpoint says what the ledger held; it cannot say that
every party was shown the *same* ledger. For that each agency acts as a witness: it
checks that each new checkpoint extends the last one it saw and co-signs it, and the
exchange serves every party's cosignature with the checkpoint. The formats are the
transparency-log ecosystem's own, so that any tool of that ecosystem can check them:

- c2sp.org/tlog-checkpoint: the note text is the origin line, the tree size in decimal,
  the root hash in base64, each ending in a newline;
- c2sp.org/signed-note: the text, a blank line, then one line per signature,
  ``— <key name> base64(key ID || signature)``; the exchange signs with Ed25519
  (signature type 0x01, key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]);
- c2sp.org/tlog-cosignature: a witness signs ``cosignature/v1\\ntime <t>\\n`` + the note
  text with Ed25519 (type 0x04); the signature is the timestamp (8 bytes, big-endian)
  and the 64-byte signature;
- verifier keys (vkeys): ``<name>+<key ID in hex>+base64(type || public key)``.

>>> log = NoteKey.generate("exchanged.invalid/ledger/x")
>>> note = log.sign_note(checkpoint_text("exchanged.invalid/ledger/x", 7, bytes(32)))
>>> parsed = parse_note(note)
>>> parsed.checkpoint().tree_size, log.verifier().verifies(parsed)
(7, True)
>>> witness = NoteKey.generate("kemensos", cosigner=True)
>>> line = witness.cosign(parsed.text, timestamp=1764800000)
>>> cosigned = parse_note(parsed.with_signatures([line]).render())
>>> witness.verifier().cosigned_at(cosigned)
1764800000
>>> Verifier.from_vkey(witness.verifier().vkey()) == witness.verifier()
True
>>> NoteKey.load(witness.dump()) == witness
True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from exchanged.errors import CheckFailed

#: signed-note signature types
ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\N{EM DASH}"
#: key names: non-empty, no spaces, no '+'; ours are agency ids and the log's origin
KEY_NAME_RE = re.compile(r"[A-Za-z0-9._/:-]{1,200}")
#: at least 16 signatures must be accepted; a note with every party's is far below this
MAX_NOTE_BYTES = 16 * 1024
MAX_SIGNATURES = 64


def key_id(name: str, sig_type: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public).digest()[:4]


def checkpoint_text(origin: str, size: int, root_hash: bytes) -> str:
    """A tlog-checkpoint note text (no extension lines)."""
    return f"{origin}\n{size}\n{base64.b64encode(root_hash).decode()}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    def render(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()

    def with_signatures(self, lines: list[Signature]) -> Note:
        """This note with ``lines`` added, each (name, key ID) once: a newer line of the same
        key replaces the older."""
        keep = {(s.name, s.key_id): s for s in self.signatures}
        for s in lines:
            keep[(s.name, s.key_id)] = s
        return Note(self.text, tuple(keep.values()))

    def checkpoint(self) -> Checkpoint:
        lines = self.text.split("\n")
        try:
            size = int(lines[1])
            if not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
                raise ValueError
            root_hash = base64.b64decode(lines[2], validate=True)
            if len(root_hash) != 32 or not lines[0]:
                raise ValueError
        except (ValueError, IndexError, binascii.Error):
            raise CheckFailed("the note is not a checkpoint (origin, size, root hash)") from None
        return Checkpoint(lines[0], size, root_hash)


def parse_note(data: bytes) -> Note:
    """A signed note read strictly (signed-note's rules); CheckFailed if it is not one."""
    if len(data) > MAX_NOTE_BYTES:
        raise CheckFailed("the note is too large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckFailed("the note is not UTF-8") from None
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise CheckFailed("the note holds control characters")
    cut = text.rfind("\n\n")
    if cut < 0 or not text.endswith("\n"):
        raise CheckFailed("the note has no signatures")
    body, sig_lines = text[:cut + 1], text[cut + 2:].split("\n")[:-1]
    if not sig_lines or len(sig_lines) > MAX_SIGNATURES:
        raise CheckFailed("the note has no signatures, or too many")
    signatures = []
    for line in sig_lines:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH or not KEY_NAME_RE.fullmatch(parts[1]):
            raise CheckFailed("a signature line of the note is malformed")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise CheckFailed("a signature of the note is not base64") from None
        if len(raw) < 5:
            raise CheckFailed("a signature of the note is too short")
        signatures.append(Signature(parts[1], raw[:4], raw[4:]))
    return Note(body, tuple(signatures))


@dataclass(frozen=True)
class Verifier:
    """A public key with its name and signature type: what a verifier is configured with."""

    name: str
    sig_type: int
    public: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.sig_type, self.public)

    def vkey(self) -> str:
        return (f"{self.name}+{self.key_id.hex()}+"
                f"{base64.b64encode(bytes([self.sig_type]) + self.public).decode()}")

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        try:
            name, kid, b64 = vkey.strip().split("+", 2)
            raw = base64.b64decode(b64, validate=True)
            found = cls(name, raw[0], raw[1:])
        except (ValueError, IndexError, binascii.Error):
            raise CheckFailed("not a verifier key (name+id+key)") from None
        if (not KEY_NAME_RE.fullmatch(name) or found.sig_type not in (ED25519, COSIGNATURE_V1)
                or len(found.public) != 32 or found.key_id.hex() != kid.lower()):
            raise CheckFailed(f"the verifier key of {name!r} is not an Ed25519 vkey")
        return found

    def _mine(self, note: Note) -> list[Signature]:
        return [s for s in note.signatures if s.name == self.name and s.key_id == self.key_id]

    def _check(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def verifies(self, note: Note) -> bool:
        """The note carries this (log) key's signature, and it verifies; a signature of this
        key that does not verify is CheckFailed (signed-note: reject the whole note)."""
        mine = self._mine(note)
        for s in mine:
            if not self._check(note.text.encode(), s.signature):
                raise CheckFailed(f"the signature of {self.name} on the note does not verify")
        return bool(mine)

    def cosigned_at(self, note: Note) -> int | None:
        """The timestamp of this witness's cosignature on the note, None if it has none;
        CheckFailed if its cosignature does not verify."""
        found = None
        for s in self._mine(note):
            if len(s.signature) != 72:
                raise CheckFailed(f"the cosignature of {self.name} is malformed")
            (timestamp,) = struct.unpack(">Q", s.signature[:8])
            if timestamp >= 1 << 63 or not self._check(
                    cosigned_message(note.text, timestamp), s.signature[8:]):
                raise CheckFailed(f"the cosignature of {self.name} on the checkpoint does not "
                                  f"verify")
            found = max(found or 0, timestamp)
        return found


def cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class NoteKey:
    """An Ed25519 private key with its name: the exchange's note key, an agency's witness key."""

    name: str
    private: bytes
    cosigner: bool = False

    @classmethod
    def generate(cls, name: str, *, cosigner: bool = False) -> NoteKey:
        if not KEY_NAME_RE.fullmatch(name):
            raise ValueError("a key name has no spaces or '+'")
        raw = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(name, raw, cosigner)

    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.private)

    def verifier(self) -> Verifier:
        public = self._key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, COSIGNATURE_V1 if self.cosigner else ED25519, public)

    def sign_note(self, text: str) -> bytes:
        signature = Signature(self.name, self.verifier().key_id, self._key().sign(text.encode()))
        return Note(text, (signature,)).render()

    def cosign(self, text: str, *, timestamp: int) -> Signature:
        signed = self._key().sign(cosigned_message(text, timestamp))
        return Signature(self.name, self.verifier().key_id,
                         struct.pack(">Q", timestamp) + signed)

    def dump(self) -> bytes:
        """The key file, in the Go note package's form for a signer key:
        ``PRIVATE+KEY+<name>+<key ID>+base64(type || private key)`` (kept 0600)."""
        v = self.verifier()
        raw = base64.b64encode(bytes([v.sig_type]) + self.private).decode()
        return f"PRIVATE+KEY+{self.name}+{v.key_id.hex()}+{raw}\n".encode()

    @classmethod
    def load(cls, data: bytes) -> NoteKey:
        try:
            private, key, name, kid, b64 = data.decode().strip().split("+", 4)
            raw = base64.b64decode(b64, validate=True)
            if (private, key) != ("PRIVATE", "KEY") or raw[0] not in (ED25519, COSIGNATURE_V1):
                raise ValueError
            found = cls(name, raw[1:], raw[0] == COSIGNATURE_V1)
            if found.verifier().key_id.hex() != kid:
                raise ValueError
        except (ValueError, IndexError, UnicodeDecodeError, binascii.Error):
            raise CheckFailed("the note key file is damaged") from None
        return found
