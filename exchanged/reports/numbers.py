"""Numbers and dates written the Indonesian way: ``1.234``, ``76,2 %``, ``3 April 2023``."""

from __future__ import annotations

from datetime import date

MONTHS_ID = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
             "September", "Oktober", "November", "Desember")


def angka(value: int) -> str:
    """A whole number with ``.`` between thousands.

    >>> angka(1234567), angka(0)
    ('1.234.567', '0')
    """
    return f"{value:,}".replace(",", ".")


def persen(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage with one decimal after a comma; ``-`` of nothing.

    >>> persen(762, 1000), persen(1, 3), persen(0, 0)
    ('76,2 %', '33,3 %', '-')
    """
    if whole <= 0:
        return "-"
    return f"{100 * part / whole:.1f}".replace(".", ",") + " %"


def tanggal(d: date) -> str:
    """A date as Indonesian documents write it.

    >>> tanggal(date(2023, 4, 3))
    '3 April 2023'
    """
    return f"{d.day} {MONTHS_ID[d.month - 1]} {d.year}"
