"""Recognising and masking what could be personal identifiers in free text.

A NIK or NKK is 16 digits and a NIP 18: any run of exactly 16 or 18 digits in
a value the exchange would store or show (a ledger field) is treated as one.

A name the sender chose (a batch id) is held to a stricter rule, since it is
recorded and quoted back: it must carry nothing *like* an identifier either
(:func:`identifier_like`): no run of ten digits or more (a NIK with a digit more
or less, a telephone number), no 15 to 19 digits broken up by separators, and no
date of birth (a whole date more than ten years before today).
"""

from __future__ import annotations

import re
from datetime import date

PERSONAL_NUMBER_RE = re.compile(r"(?<!\d)(\d{16}|\d{18})(?!\d)")
#: a run of digits long enough to be (part of) an identifier or a telephone number
LONG_DIGITS_RE = re.compile(r"\d{10,}")
#: 15 to 19 digits with only separators between them: a NIK, NKK or NIP written in groups
GROUPED_DIGITS_RE = re.compile(r"(?<![\d])\d(?:[._ -]?\d){14,18}(?![\d])")
#: whole dates: YYYY-MM-DD, YYYYMMDD, DD-MM-YYYY, DDMMYYYY (separators . _ - or none)
DATE_RES = (
    re.compile(r"(?<!\d)(?P<y>(?:19|20)\d\d)[._-]?(?P<m>[01]\d)[._-]?(?P<d>[0-3]\d)(?!\d)"),
    re.compile(r"(?<!\d)(?P<d>[0-3]\d)[._-]?(?P<m>[01]\d)[._-]?(?P<y>(?:19|20)\d\d)(?!\d)"),
)
#: a whole date this many years old or more is taken for a date of birth
BIRTH_DATE_YEARS = 10


def looks_personal(text: str) -> bool:
    """Does ``text`` hold a 16- or 18-digit number?

    >>> looks_personal("kpm-3171014101900001"), looks_personal("kpm-2026-11")
    (True, False)
    """
    return PERSONAL_NUMBER_RE.search(text) is not None


def mask(text: str) -> str:
    """``text`` with every run of ten digits or more replaced by ``#``.

    >>> mask("kpm-3171014101900001.csv.gpg"), mask("kpm-2026-11.csv.gpg")
    ('kpm-################.csv.gpg', 'kpm-2026-11.csv.gpg')
    """
    return LONG_DIGITS_RE.sub(lambda m: "#" * len(m.group()), text)


def identifier_like(text: str, today: date | None = None) -> bool:
    """Does ``text`` carry something like a personal identifier or a date of birth?

    >>> identifier_like("kpm-35060565087310169"), identifier_like("3171.0141.0190.0001")
    (True, True)
    >>> identifier_like("Yanti_Purwanti_1973-08-25", today=date(2026, 12, 1))
    True
    >>> identifier_like("kpm-2026-11-w4"), identifier_like("kpm-20261126T030405Z")
    (False, False)
    >>> identifier_like("kpm-2026-11-26", today=date(2026, 12, 1))
    False
    """
    if LONG_DIGITS_RE.search(text) or GROUPED_DIGITS_RE.search(text):
        return True
    year_now = (today or date.today()).year
    for pattern in DATE_RES:
        for m in pattern.finditer(text):
            try:
                found = date(int(m["y"]), int(m["m"]), int(m["d"]))
            except ValueError:
                continue
            if found.year <= year_now - BIRTH_DATE_YEARS:
                return True
    return False
