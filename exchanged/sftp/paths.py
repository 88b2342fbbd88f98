"""What an agency sees of its drop folders: client paths, names, sealed outcomes, attributes.

Paths are resolved against a virtual root (``..`` stops at ``/``); a drop folder
is reached without following a link, and only regular files show in it: in an
inbox the uploads held under a temporary name, in an outbox only sealed OpenPGP
messages.
"""

from __future__ import annotations

import os
import re
import stat as stat_mod
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from exchanged.home.drop import is_held, open_below

TEMPORARY_SUFFIXES = (".filepart", ".part", ".partial", ".tmp", ".upload")
SAFE_HELD_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")
MAX_NAME_BYTES = 1024
#: the components of a drop folder's path that are the agency's tree (agency, area, flow):
#: each is opened without following a link
TREE_DEPTH = 3
#: what an outcome starts with: a public-key encrypted session key packet (tag 1, old or
#: new format), version 3, an 8-byte key id, an algorithm gpg encrypts to
SEALED_TAGS = (0x84, 0x85, 0x86, 0xC1)
PUBKEY_ALGORITHMS = (1, 2, 16, 18, 22, 25)
#: ... or an armored OpenPGP message (the ledger's signed checkpoints)
ARMOR = b"-----BEGIN PGP MESSAGE-----"


@dataclass(frozen=True)
class Place:
    """What a normalised path names in the agency's tree."""

    kind: str  # root | area | flow | file | none
    area: str = ""
    flow: str = ""
    name: str = ""


def is_temporary_name(name: str) -> bool:
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def normalise(path: str) -> str:
    """Resolve a client path against the virtual root; ``..`` never climbs above ``/``.

    >>> normalise("../../etc/passwd")
    '/etc/passwd'
    >>> normalise("inbox/./kpm-verification/")
    '/inbox/kpm-verification'
    """
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def looks_sealed(head: bytes) -> bool:
    """Does a file that starts with ``head`` look like an OpenPGP message the exchange made?

    >>> looks_sealed(bytes([0x84, 0x5E, 3]) + bytes(8) + bytes([18]))
    True
    >>> looks_sealed(b"-----BEGIN PGP MESSAGE-----\\n"), looks_sealed(b"SQLite format 3\\0")
    (True, False)
    """
    if head.startswith(ARMOR):
        return True
    if len(head) < 12 or head[0] not in SEALED_TAGS:
        return False
    # the body starts after the length: one octet (old format, type 0), two (type 1), four
    # (type 2); a new-format length of one, two or five octets
    if head[0] == 0xC1:
        start = 2 if head[1] < 192 else 3 if head[1] < 224 else 6
    else:
        start = 1 + {0x84: 1, 0x85: 2, 0x86: 4}[head[0]]
    body = head[start:start + 10]
    return len(body) == 10 and body[0] == 3 and body[9] in PUBKEY_ALGORITHMS


#: what the exchange's plain-text ledger files start with (checkpoint notes, consistency
#: proofs, refusals of a cosignature): anything else in an outbox is not its own
NOTE_HEAD = b"exchanged.invalid/ledger/"
JSON_HEAD = b'{"format":"exchanged/'


def looks_served(name: str, head: bytes) -> bool:
    """May a file called ``name`` starting with ``head`` be served from an outbox? Sealed
    OpenPGP messages, and the exchange's own notes (``.note``), proofs (``.json``) and
    timestamp tokens (``.tsr``).

    >>> looks_served("checkpoint-0000000007.note", b"exchanged.invalid/ledger/6f1c\\n7\\n")
    True
    >>> looks_served("register.key", b"exchanged.invalid/ledger/"), looks_served("x.json", b"{}")
    (False, False)
    """
    if name.endswith(".note"):
        return head.startswith(NOTE_HEAD)
    if name.endswith(".json"):
        return head.startswith(JSON_HEAD)
    if name.endswith(".tsr"):
        return looks_granted_timestamp(head)
    return looks_sealed(head)


def looks_granted_timestamp(head: bytes) -> bool:
    """Does ``head`` start an RFC 3161 TimeStampResp with status granted (a DER SEQUENCE
    of a few kilobytes whose first element is the PKIStatusInfo ``SEQUENCE { 0 }``)?

    >>> looks_granted_timestamp(bytes.fromhex("3082078e30030201003082"))
    True
    >>> looks_granted_timestamp(bytes(32))
    False
    """
    if len(head) < 11 or head[0] != 0x30 or head[1] not in (0x82, 0x83):
        return False
    start = 2 + head[1] - 0x80
    return head[start:start + 5] == b"\x30\x03\x02\x01\x00"


def dir_attributes(name: str) -> paramiko.SFTPAttributes:
    attr = paramiko.SFTPAttributes()
    attr.filename = name
    attr.st_mode = stat_mod.S_IFDIR | 0o700
    attr.st_size = 0
    attr.st_uid = attr.st_gid = 0
    attr.st_mtime = attr.st_atime = int(time.time())
    return attr


def file_attributes(name: str, st: os.stat_result) -> paramiko.SFTPAttributes:
    attr = paramiko.SFTPAttributes.from_stat(st, name)
    attr.st_uid = attr.st_gid = 0
    attr.st_mode = stat_mod.S_IFREG | 0o600
    return attr


def open_tree_folder(path: Path) -> int:
    """Open a drop folder, following no link in the agency's part of its path.

    The last :data:`TREE_DEPTH` components (agency, inbox or outbox, flow) are each
    opened relative to the one before with ``O_NOFOLLOW``, so a drop folder that was
    replaced by a link to elsewhere raises ``OSError`` instead of being served.
    """
    return open_below(path.parents[TREE_DEPTH - 1], path.parts[-TREE_DEPTH:])


def entry(folder: int, name: str, area: str, *, held: Sequence[Path]) -> os.stat_result | None:
    """The stat of a file an agency may see in an open drop folder, else None.

    Regular files only, never through a link; in an outbox, only sealed OpenPGP messages.
    Never one of ``held`` (the databases the daemon holds open) by another name: such a
    file is not even opened (see :func:`~exchanged.home.drop.is_held`).
    """
    try:
        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except (OSError, ValueError):
        return None
    if not stat_mod.S_ISREG(st.st_mode) or is_held(st, held):
        return None
    if area == "outbox":
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
        except OSError:
            return None
        try:
            if not looks_served(name, os.pread(fd, 64, 0)):
                return None
        finally:
            os.close(fd)
    return st


def is_held_name(name: str) -> bool:
    """Is an upload of this name held in the inbox when it is closed (a temporary name, of
    safe characters), and handed over only when it is renamed?"""
    return is_temporary_name(name) and bool(SAFE_HELD_NAME.fullmatch(name))


def listable(name: str, area: str) -> bool:
    """Hidden files (our own temporaries) never show; inbox shows only held uploads."""
    if area == "outbox":
        return not name.startswith(".")
    return is_held_name(name)
