"""NIK (Nomor Induk Kependudukan, Indonesian population identity number).

The NIK is the 16-digit number on the KTP (identity card) and in the
Kartu Keluarga.  It has no check digit; it is laid out as::

    PP RR SS DDMMYY XXXX
    |  |  |  |      serial, 0001 and up, unique within place and date
    |  |  |  birth date; 40 is added to DD for women
    |  |  district (kecamatan)
    |  regency or city (kabupaten/kota)
    province

A NIK is structurally valid when it is 16 ASCII digits, none of the
province, regency and district codes is 00, the birth date (after
removing the 40 added for women) is a real calendar date and the serial
is not 0000.  Region codes are deliberately not checked against a list of
existing regions: the exchange contract defines validity by the date and
the serial only, and region lists change when regions are split.

The year has only two digits, so the century is ambiguous (19YY or 20YY).
A date is accepted when it exists in either century, which only matters
for 29 February: it is valid whenever YY is divisible by 4, because 20YY
is then a leap year (2000 is, even though 1900 is not).

More information:

* https://id.wikipedia.org/wiki/Nomor_Induk_Kependudukan

The examples below are constructed, not real people's numbers.

>>> validate('3171014101900001')  # a woman born 1 January 1990
'3171014101900001'
>>> validate(' 3171014101900001\\n')  # surrounding whitespace is trimmed
'3171014101900001'
>>> validate('3171017101900001')  # a woman born on the 31st: day 71
'3171017101900001'
>>> validate('3171012902000001')  # 29 February 2000
'3171012902000001'
>>> validate('3171 0141 0190 0001')  # separators inside are not accepted
Traceback (most recent call last):
    ...
exchanged.ids.exceptions.InvalidFormat: The NIK contains characters other than the digits 0-9.
>>> validate('317101410190001')
Traceback (most recent call last):
    ...
exchanged.ids.exceptions.InvalidLength: The NIK must be exactly 16 digits long.
>>> validate('3171013102900001')  # 31 February
Traceback (most recent call last):
    ...
exchanged.ids.exceptions.InvalidComponent: The birth date in the NIK is not a real date.
>>> validate('3171014101900000')
Traceback (most recent call last):
    ...
exchanged.ids.exceptions.InvalidComponent: The serial number in the NIK cannot be all zeros.
>>> is_valid('3171017104900001')  # 31 April does not exist
False
>>> info('3171014101900001')  # doctest: +NORMALIZE_WHITESPACE
NikInfo(province='31', regency='71', district='01', birth_day=1, birth_month=1,
        birth_yy=90, female=True, serial='0001')
"""

from __future__ import annotations

import calendar
import dataclasses
import re
from typing import Final

from exchanged.ids.exceptions import InvalidComponent, InvalidFormat, InvalidLength, ValidationError

__all__ = ["NikInfo", "PROBLEMS", "compact", "validate", "is_valid", "info", "problem"]

_LENGTH: Final = 16
# Only these are trimmed.  str.strip() without arguments would also remove
# Unicode spaces (NBSP, ideographic space, ...) and the vertical tab/form
# feed; those point at a broken export and the sender should hear about it.
#: what :func:`compact` trims (public: the exchange's column checks trim the same)
OUTER_WHITESPACE: Final = " \t\r\n"
# Women's birth days are stored as day + 40 (41..71).
_FEMALE_DAY_OFFSET: Final = 40


@dataclasses.dataclass(frozen=True, slots=True)
class NikInfo:
    """The parts of a valid NIK.

    ``birth_yy`` is the two-digit year as written: the century cannot be
    known from the number.  ``birth_day`` is the real day, with the 40 for
    women already removed.
    """

    province: str
    regency: str
    district: str
    birth_day: int
    birth_month: int
    birth_yy: int
    female: bool
    serial: str


# The three helpers below are shared with the NKK and NIP modules, which
# follow exactly the same input rules; keeping one copy guarantees the
# identifiers never drift apart on what "well-formed" means.


def _strip(number: str, name: str) -> str:
    """Trim surrounding ASCII whitespace, rejecting input that is not text."""
    # The declared type is str, but values come from parsed agency files
    # (JSON null, bytes from a CSV reader, integers that lost their leading
    # zeros): turn them into a validation error instead of a TypeError or
    # AttributeError that would escape the callers' error handling.
    if not isinstance(number, str):
        raise InvalidFormat(f"The {name} must be given as text.")
    return number.strip(OUTER_WHITESPACE)


def _require_digits(number: str, length: int, name: str) -> str:
    """Return the compacted number if it is exactly `length` ASCII digits."""
    number = _strip(number, name)
    # isdigit() alone is not enough: it accepts Arabic-Indic, full-width and
    # superscript digits, and int() happily converts most of them.  The only
    # ASCII characters for which isdigit() is true are 0-9, so isascii()
    # first makes it a pure ASCII test.  An empty string has no bad
    # characters; it is reported as a length problem below.
    if number and not (number.isascii() and number.isdigit()):
        raise InvalidFormat(f"The {name} contains characters other than the digits 0-9.")
    if len(number) != length:
        raise InvalidLength(f"The {name} must be exactly {length} digits long.")
    return number


def _is_real_date(year: int, month: int, day: int) -> bool:
    """Tell whether year-month-day is a date on the Gregorian calendar."""
    # Checked arithmetically rather than by catching datetime.date's
    # ValueError: raising inside an ``except`` block would attach that
    # exception as __context__, and tracebacks in logs would print it.
    if not 1 <= month <= 12:
        return False
    return 1 <= day <= calendar.monthrange(year, month)[1]


def _is_real_yymmdd(yy: int, month: int, day: int) -> bool:
    """Tell whether a date with a two-digit year exists in 19YY or 20YY."""
    # The leap years 2000..2099 are a superset of 1900..1999 (2000 is one,
    # 1900 is not) and every other month has the same length in both
    # centuries, so checking 20YY alone answers "real in either century".
    return _is_real_date(2000 + yy, month, day)


def compact(number: str) -> str:
    """Return the NIK with surrounding whitespace removed.

    Only leading and trailing ASCII space, tab, CR and LF are removed.
    Nothing inside the number is touched: separators make it invalid, so
    the sender learns to fix its data instead of the exchange guessing.

    >>> compact('\\t3171014101900001\\r\\n')
    '3171014101900001'
    >>> compact('3171-01-410190-0001')
    '3171-01-410190-0001'
    """
    return _strip(number, "NIK")


def validate(number: str) -> str:
    """Check that the number is a structurally valid NIK and return it compacted.

    Raises :class:`InvalidFormat`, :class:`InvalidLength` or
    :class:`InvalidComponent`.

    >>> validate('3171010101900001')  # a man born 1 January 1990
    '3171010101900001'
    >>> validate('3100014101900001')
    Traceback (most recent call last):
        ...
    exchanged.ids.exceptions.InvalidComponent: The regency code in the NIK cannot be 00.
    """
    number = _require_digits(number, _LENGTH, "NIK")
    wrong = _wrong_part(number)
    if wrong is not None:
        raise InvalidComponent(wrong[1])
    return number


def _wrong_part(number: str) -> tuple[str, str] | None:
    """The first impossible part of 16 ASCII digits: its code and sentence, or None."""
    # Checked in the order the parts appear, so the first wrong part is the
    # one reported.
    for at, part in ((0, "province"), (2, "regency"), (4, "district")):
        if number[at:at + 2] == "00":
            return "NIK_BAD_REGION", f"The {part} code in the NIK cannot be 00."
    day = int(number[6:8])
    if day > _FEMALE_DAY_OFFSET:
        day -= _FEMALE_DAY_OFFSET
    # Raw days 32..40 fall through unchanged and fail the date check; so do
    # 72 and above, which are still too large after removing the 40.
    if not _is_real_yymmdd(int(number[10:12]), int(number[8:10]), day):
        return "NIK_BAD_DATE", "The birth date in the NIK is not a real date."
    if number[12:16] == "0000":
        return "NIK_BAD_SERIAL", "The serial number in the NIK cannot be all zeros."
    return None


# A number a spreadsheet turned into floating point and wrote back in scientific
# notation (3.17101E+15, or 3,17101E+15 in an Indonesian locale): its digits are lost.
_SCIENTIFIC: Final = re.compile(r"[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+")

#: what :func:`problem` may answer, first match wins (answer files' ``alasan`` column)
PROBLEMS: Final = ("NIK_EMPTY", "NIK_SCIENTIFIC_NOTATION", "NIK_NOT_DIGITS",
                   "NIK_WRONG_LENGTH", "NIK_BAD_REGION", "NIK_BAD_DATE", "NIK_BAD_SERIAL")


def problem(number: str) -> str | None:
    """A short code for what keeps the value from being a valid NIK, or None if it is one.

    The code names the kind of mistake, never the value, so that the sender can
    find the cause in its own data (an export from Excel, a column cut short).

    >>> problem('3171014101900001') is None
    True
    >>> problem('3.17101E+15'), problem('3,17101E+15')
    ('NIK_SCIENTIFIC_NOTATION', 'NIK_SCIENTIFIC_NOTATION')
    >>> problem('  '), problem('3171-0141-0190-0001'), problem('317101410190001')
    ('NIK_EMPTY', 'NIK_NOT_DIGITS', 'NIK_WRONG_LENGTH')
    >>> problem('0071014101900001'), problem('3171013102900001'), problem('3171014101900000')
    ('NIK_BAD_REGION', 'NIK_BAD_DATE', 'NIK_BAD_SERIAL')
    """
    if not isinstance(number, str):
        return "NIK_NOT_DIGITS"
    text = number.strip(OUTER_WHITESPACE)
    if not text:
        return "NIK_EMPTY"
    if _SCIENTIFIC.fullmatch(text):
        return "NIK_SCIENTIFIC_NOTATION"
    if not (text.isascii() and text.isdigit()):
        return "NIK_NOT_DIGITS"
    if len(text) != _LENGTH:
        return "NIK_WRONG_LENGTH"
    wrong = _wrong_part(text)
    return None if wrong is None else wrong[0]


def is_valid(number: str) -> bool:
    """Tell whether the number is a structurally valid NIK; never raises.

    >>> is_valid('3171014101900001')
    True
    >>> is_valid('3171015101900001')  # day 51 - 40 = 11 January: fine
    True
    >>> is_valid('3171014001900001')  # day 40 - 40 = 0
    False
    """
    try:
        validate(number)
    except ValidationError:
        return False
    return True


def info(number: str) -> NikInfo:
    """Validate the NIK and return its parts.

    >>> info('3171010101900001').female
    False
    >>> info('3171017101900001').birth_day
    31
    """
    number = validate(number)
    raw_day = int(number[6:8])
    female = raw_day > _FEMALE_DAY_OFFSET
    return NikInfo(
        province=number[0:2],
        regency=number[2:4],
        district=number[4:6],
        birth_day=raw_day - _FEMALE_DAY_OFFSET if female else raw_day,
        birth_month=int(number[8:10]),
        birth_yy=int(number[10:12]),
        female=female,
        serial=number[12:16],
    )
