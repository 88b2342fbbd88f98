"""NIP (Nomor Induk Pegawai, Indonesian civil servant number), PNS and PPPK.

A NIP has 18 digits and no check digit.  Two layouts are in use.

Civil servants (PNS)::

    YYYYMMDD YYYYMM G SSS
    |        |      | serial, 001 and up
    |        |      gender: 1 man, 2 woman
    |        start of CPNS service (year and month)
    birth date

Government employees with a work agreement (PPPK, whose number is called
NI PPPK)::

    YYYYMMDD YYYY 21 G SSS
    |        |    |  | serial, 001 and up
    |        |    |  gender: 1 man, 2 woman
    |        |    the PPPK code 21
    |        year of appointment
    birth date

The two layouts differ only in digits 13-14: a PNS number has the CPNS
start month there (01..12), a PPPK number has the code 21, which can never
be a month.  That makes the layout unambiguous, and a PPPK number is never
judged by the PNS month rule.

Besides the dates being real, a NIP is only accepted when it is plausible:
the birth year is between 1900 and 2099, the service start year is at
least the birth year + 15 and at most 2099, the gender digit is 1 or 2 and
the serial is not 000.

The examples below are constructed, not real people's numbers.

>>> validate('199001012015031999')  # PNS: man born 1990-01-01, CPNS March 2015
'199001012015031999'
>>> validate('198807172022211997')  # PPPK: man born 1988-07-17, appointed 2022
'198807172022211997'
>>> kind('198807172022211997')
'PPPK'
>>> validate('199001012015131999')  # PNS with month 13
Traceback (most recent call last):
    ...
exchanged.ids.exceptions.InvalidComponent: The CPNS start month in the NIP is not a real month.
>>> validate('199002302015031999')  # born 30 February
Traceback (most recent call last):
    ...
exchanged.ids.exceptions.InvalidComponent: The birth date in the NIP is not a real date.
>>> validate('19900101 201503 1 999')  # as printed on documents: not accepted
Traceback (most recent call last):
    ...
exchanged.ids.exceptions.InvalidFormat: The NIP contains characters other than the digits 0-9.
>>> info('198507142010122998')  # doctest: +NORMALIZE_WHITESPACE
NipInfo(kind='PNS', birth_date=datetime.date(1985, 7, 14), start_year=2010, start_month=12,
        female=True, serial='998')
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Final, Literal

from exchanged.ids.exceptions import InvalidComponent, ValidationError
from exchanged.ids.nik import _is_real_date, _require_digits, _strip

__all__ = ["NipKind", "NipInfo", "compact", "validate", "is_valid", "kind", "info"]

NipKind = Literal["PNS", "PPPK"]

_LENGTH: Final = 18
_PPPK_CODE: Final = "21"
_MIN_BIRTH_YEAR: Final = 1900
_MAX_YEAR: Final = 2099
# Nobody enters state service before the age of 15; an earlier start year
# means the fields were swapped or mistyped.
_MIN_AGE_AT_START: Final = 15


@dataclasses.dataclass(frozen=True, slots=True)
class NipInfo:
    """The parts of a valid NIP.

    ``start_year`` is the CPNS start year for PNS and the appointment year
    for PPPK; ``start_month`` is only known for PNS and is None for PPPK.
    """

    kind: NipKind
    birth_date: datetime.date
    start_year: int
    start_month: int | None
    female: bool
    serial: str


def _kind_of_digits(number: str) -> NipKind:
    """Tell the layout of an 18-digit string; see the module docstring."""
    return "PPPK" if number[12:14] == _PPPK_CODE else "PNS"


def compact(number: str) -> str:
    """Return the NIP with surrounding whitespace removed.

    Same rule as for the NIK: only leading and trailing ASCII space, tab,
    CR and LF are removed.  The spaces NIPs are often printed with
    (``YYYYMMDD YYYYMM G SSS``) are not removed, so such a NIP is invalid
    and the sender has to send the bare digits.

    >>> compact(' 199001012015031999\\n')
    '199001012015031999'
    """
    return _strip(number, "NIP")


def validate(number: str) -> str:
    """Check that the number is a plausible PNS or PPPK NIP and return it compacted.

    Raises :class:`InvalidFormat`, :class:`InvalidLength` or
    :class:`InvalidComponent`.

    >>> validate('199203152023212996')  # PPPK, woman
    '199203152023212996'
    >>> validate('199001012004031999')  # CPNS at 14  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    exchanged.ids.exceptions.InvalidComponent: The service start year in the NIP is less than ...
    """
    number = _require_digits(number, _LENGTH, "NIP")
    birth_year = int(number[0:4])
    if not _MIN_BIRTH_YEAR <= birth_year <= _MAX_YEAR:
        raise InvalidComponent("The birth year in the NIP is not plausible.")
    if not _is_real_date(birth_year, int(number[4:6]), int(number[6:8])):
        raise InvalidComponent("The birth date in the NIP is not a real date.")
    start_year = int(number[8:12])
    if start_year < birth_year + _MIN_AGE_AT_START:
        raise InvalidComponent(
            "The service start year in the NIP is less than fifteen years after the birth year."
        )
    if start_year > _MAX_YEAR:
        raise InvalidComponent("The service start year in the NIP is not plausible.")
    # For PPPK digits 13-14 are the code 21 and there is nothing more to
    # check; for PNS they are the CPNS start month.
    if _kind_of_digits(number) == "PNS" and not 1 <= int(number[12:14]) <= 12:
        raise InvalidComponent("The CPNS start month in the NIP is not a real month.")
    if number[14] not in ("1", "2"):
        raise InvalidComponent("The gender digit in the NIP must be 1 (man) or 2 (woman).")
    if number[15:18] == "000":
        raise InvalidComponent("The serial number in the NIP cannot be all zeros.")
    return number


def is_valid(number: str) -> bool:
    """Tell whether the number is a plausible PNS or PPPK NIP; never raises.

    >>> is_valid('199001012015033999')  # gender digit 3
    False
    """
    try:
        validate(number)
    except ValidationError:
        return False
    return True


def kind(number: str) -> NipKind:
    """Validate the NIP and tell whether it is a PNS or a PPPK number.

    >>> kind('199001012015031999')
    'PNS'
    """
    return _kind_of_digits(validate(number))


def info(number: str) -> NipInfo:
    """Validate the NIP and return its parts.

    >>> info('198807172022211997').start_month is None
    True
    """
    number = validate(number)
    number_kind = _kind_of_digits(number)
    return NipInfo(
        kind=number_kind,
        birth_date=datetime.date(int(number[0:4]), int(number[4:6]), int(number[6:8])),
        start_year=int(number[8:12]),
        start_month=int(number[12:14]) if number_kind == "PNS" else None,
        female=number[14] == "2",
        serial=number[15:18],
    )
