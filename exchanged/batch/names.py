"""Batch ids and outcome names: what an upload's file name may carry, and what its answer is called.

A batch id is what the agency chose (``<batch-id>.csv.gpg``); it must not carry a
NIK or NIP, since it is recorded in the ledger and quoted back. Outcome names are
derived from it, and the sealed message carries the same name without ``.gpg``.
"""

from __future__ import annotations

import re

from exchanged.ids.redact import identifier_like, mask

BATCH_NAME_RE = re.compile(r"(?P<id>[A-Za-z0-9._-]{1,64})\.csv\.(?:gpg|pgp|asc)")
#: the names the exchange makes for outcomes itself: a replay's rejection
#: (``<batch-id>.replay-<n>``) and an upload's own id (``YYYYMMDDTHHMMSSZ-xxxxxxxx``). No
#: batch id may take one, so that an outcome name can never be another's (by construction)
RESERVED_RE = re.compile(r".*\.replay-\d+|\d{8}T\d{6}Z-[0-9a-f]{8}", re.IGNORECASE)

#: an outcome's kind -> the suffix of its file in the outbox
OUTCOME_SUFFIXES = {"result": ".result.csv.gpg", "rejected": ".rejected.json.gpg"}


def batch_id_of(name: str) -> str | None:
    """The batch id a file name carries, or None if the name breaks the rule.

    >>> batch_id_of("2026-11-kpm.csv.gpg")
    '2026-11-kpm'
    >>> batch_id_of("../x.csv.gpg") is None, batch_id_of("b1.csv.gpg\\n") is None
    (True, True)
    """
    m = BATCH_NAME_RE.fullmatch(name)
    if m is None or m["id"].startswith("."):
        return None
    return m["id"]


def batch_id_looks_personal(batch_id: str) -> bool:
    """Something like a NIK, NIP or date of birth (:func:`exchanged.ids.redact.identifier_like`).

    >>> batch_id_looks_personal("kpm-3171.0141.0190.0001"), batch_id_looks_personal("2026-11-w4")
    (True, False)
    """
    return identifier_like(batch_id)


def batch_id_reserved(batch_id: str) -> bool:
    """Is ``batch_id`` one of the names the exchange gives outcomes itself?

    >>> batch_id_reserved("s1.replay-1"), batch_id_reserved("20261203T225829Z-0a1b2c3d")
    (True, True)
    >>> batch_id_reserved("s1.replay"), batch_id_reserved("kpm-2026-11-w4")
    (False, False)
    """
    return RESERVED_RE.fullmatch(batch_id) is not None


def shown_name(name: str) -> str:
    """A file name made safe to quote back: printable ASCII, 80 characters at most, digits
    masked."""
    safe = mask("".join(ch if 32 < ord(ch) < 127 else "?" for ch in name))
    return repr(safe[:80] + ("..." if len(safe) > 80 else ""))


def inner_name(batch_id: str, kind: str) -> str:
    """The name the sealed message carries for a batch's outcome of ``kind``.

    >>> inner_name("b1", "rejected")
    'b1.rejected.json'
    """
    return batch_id + OUTCOME_SUFFIXES[kind].removesuffix(".gpg")
