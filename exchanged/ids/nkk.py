"""NKK (Nomor Kartu Keluarga, Indonesian family card number).

The NKK is the 16-digit number of a Kartu Keluarga (family card).  It has
no check digit; it is laid out as::

    PPRRSS DDMMYY XXXX
    |      |      serial, 0001 and up
    |      date the card was entered (no +40: it is not a person's birth date)
    region: province, regency/city and district, as in the NIK

An NKK is structurally valid when it is 16 ASCII digits, none of the
province, regency and district codes is 00 (the region uses the same codes
as the NIK), the date is a real calendar date in 19YY or 20YY and the
serial is not 0000.  As for the NIK, region codes are not checked against a
list of existing regions.

Input is handled exactly as for the NIK: only surrounding ASCII whitespace
is trimmed, anything else that is not an ASCII digit makes the number
invalid.

The examples below are constructed, not real family card numbers.

>>> validate('3171012001100042')  # entered 20 January 2010
'3171012001100042'
>>> validate('3171012902000042')  # 29 February 2000
'3171012902000042'
>>> validate('3171014101100042')  # day 41: the +40 rule is for NIKs only
Traceback (most recent call last):
    ...
exchanged.ids.exceptions.InvalidComponent: The date in the NKK is not a real date.
>>> validate('317101200110004')
Traceback (most recent call last):
    ...
exchanged.ids.exceptions.InvalidLength: The NKK must be exactly 16 digits long.
>>> info('3171012001100042')  # doctest: +NORMALIZE_WHITESPACE
NkkInfo(province='31', regency='71', district='01', entry_day=20, entry_month=1,
        entry_yy=10, serial='0042')
"""

from __future__ import annotations

import dataclasses
from typing import Final

from exchanged.ids.exceptions import InvalidComponent, ValidationError
from exchanged.ids.nik import _is_real_yymmdd, _require_digits, _strip

__all__ = ["NkkInfo", "compact", "validate", "is_valid", "info"]

_LENGTH: Final = 16


@dataclasses.dataclass(frozen=True, slots=True)
class NkkInfo:
    """The parts of a valid NKK.

    ``entry_yy`` is the two-digit year as written: the century cannot be
    known from the number.
    """

    province: str
    regency: str
    district: str
    entry_day: int
    entry_month: int
    entry_yy: int
    serial: str


def compact(number: str) -> str:
    """Return the NKK with surrounding whitespace removed.

    Only leading and trailing ASCII space, tab, CR and LF are removed;
    separators inside the number are left in place and make it invalid.

    >>> compact(' 3171012001100042\\t')
    '3171012001100042'
    """
    return _strip(number, "NKK")


def validate(number: str) -> str:
    """Check that the number is a structurally valid NKK and return it compacted.

    Raises :class:`InvalidFormat`, :class:`InvalidLength` or
    :class:`InvalidComponent`.

    >>> validate('3171012001100000')
    Traceback (most recent call last):
        ...
    exchanged.ids.exceptions.InvalidComponent: The serial number in the NKK cannot be all zeros.
    """
    number = _require_digits(number, _LENGTH, "NKK")
    if number[0:2] == "00":
        raise InvalidComponent("The province code in the NKK cannot be 00.")
    if number[2:4] == "00":
        raise InvalidComponent("The regency code in the NKK cannot be 00.")
    if number[4:6] == "00":
        raise InvalidComponent("The district code in the NKK cannot be 00.")
    if not _is_real_yymmdd(int(number[10:12]), int(number[8:10]), int(number[6:8])):
        raise InvalidComponent("The date in the NKK is not a real date.")
    if number[12:16] == "0000":
        raise InvalidComponent("The serial number in the NKK cannot be all zeros.")
    return number


def is_valid(number: str) -> bool:
    """Tell whether the number is a structurally valid NKK; never raises.

    >>> is_valid('3171012902010042')  # 29 February 2001 or 1901
    False
    """
    try:
        validate(number)
    except ValidationError:
        return False
    return True


def info(number: str) -> NkkInfo:
    """Validate the NKK and return its parts.

    >>> info('3171012001100042').entry_yy
    10
    """
    number = validate(number)
    return NkkInfo(
        province=number[0:2],
        regency=number[2:4],
        district=number[4:6],
        entry_day=int(number[6:8]),
        entry_month=int(number[8:10]),
        entry_yy=int(number[10:12]),
        serial=number[12:16],
    )
