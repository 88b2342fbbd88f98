"""Recognising and masking what could be personal identifiers in free text.

A NIK or NKK is 16 digits and a NIP 18: any run of exactly 16 or 18 digits in
a value the exchange would store or show (a file name, a batch id, a ledger
field) is treated as one.
"""

from __future__ import annotations

import re

PERSONAL_NUMBER_RE = re.compile(r"(?<!\d)(\d{16}|\d{18})(?!\d)")


def looks_personal(text: str) -> bool:
    """Does ``text`` hold a 16- or 18-digit number?

    >>> looks_personal("kpm-3171014101900001"), looks_personal("kpm-2026-11")
    (True, False)
    """
    return PERSONAL_NUMBER_RE.search(text) is not None


def mask(text: str) -> str:
    """``text`` with every 16- or 18-digit number replaced by ``#``.

    >>> mask("kpm-3171014101900001.csv.gpg")
    'kpm-################.csv.gpg'
    """
    return PERSONAL_NUMBER_RE.sub(lambda m: "#" * len(m.group()), text)
