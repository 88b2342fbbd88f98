"""Birth dates of synthetic people: every day of a span of years, preformatted once."""

from __future__ import annotations

import datetime
from typing import Final

_TWO_DIGITS: Final = tuple(f"{n:02d}" for n in range(100))

# (ISO date, YYYYMMDD, NIK DDMMYY for a man, for a woman, year, month)
Day = tuple[str, str, str, str, int, int]


def day_table(first_year: int, last_year: int) -> tuple[tuple[Day, ...], tuple[int, ...]]:
    """Every day of the years, preformatted; and the index of each 1 January.

    Preformatting once (some 30,000 days) saves a date object and several
    string formats per generated row.
    """
    days: list[Day] = []
    year_base: list[int] = []
    d = datetime.date(first_year, 1, 1)
    one = datetime.timedelta(days=1)
    while d.year <= last_year:
        if d.month == 1 and d.day == 1:
            year_base.append(len(days))
        mmyy = f"{d.month:02d}{d.year % 100:02d}"
        days.append(
            (
                d.isoformat(),
                f"{d.year:04d}{d.month:02d}{d.day:02d}",
                f"{d.day:02d}{mmyy}",
                f"{d.day + 40:02d}{mmyy}",
                d.year,
                d.month,
            )
        )
        d += one
    return tuple(days), tuple(year_base)


def iso_days(first_year: int, last_year: int) -> tuple[str, ...]:
    """Every day of the years as YYYY-MM-DD: the lean table for KPM batches.

    One short string per day (about 2 MB for 88 years) rather than the
    register's preformatted tuples (three times that): KPM people span twice
    as many years, and a batch should stay small next to the rows it streams.
    """
    first = datetime.date(first_year, 1, 1).toordinal()
    last = datetime.date(last_year, 12, 31).toordinal()
    return tuple(datetime.date.fromordinal(n).isoformat() for n in range(first, last + 1))


def nik_date(iso: str, female: bool) -> str:
    """The NIK's DDMMYY for a YYYY-MM-DD birth date, with 40 added for women."""
    day = _TWO_DIGITS[int(iso[8:10]) + 40] if female else iso[8:10]
    return day + iso[5:7] + iso[2:4]


def days_in_year(year: int) -> int:
    return 366 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 365
