"""NIKs with the mistakes found in real submissions: each kind provably not a valid NIK."""

from __future__ import annotations

from typing import Final

from exchanged.testing.synth.dates import nik_date
from exchanged.testing.synth.mixing import cumulative

# Mistakes found in real submissions, with relative frequencies.
_INVALID_KINDS: Final = (
    ("space_inside", 8),
    ("grouped_spaces", 3),
    ("dash_inside", 6),
    ("dot_inside", 5),
    ("nbsp_inside", 2),
    ("digits_15", 8),
    ("digits_17", 8),
    ("letter_o_for_0", 6),
    ("letter_l_for_1", 3),
    ("fullwidth_digit", 5),
    ("february_31", 4),
    ("february_30", 4),
    ("february_29_not_leap", 4),
    ("day_72", 4),
    ("day_32", 2),
    ("day_00", 2),
    ("month_13", 3),
    ("month_00", 2),
    ("serial_0000", 4),
    ("district_00", 4),
    ("regency_00", 1),
    ("empty", 5),
    ("blank", 2),
    ("excel_scientific", 3),
    ("excel_float", 2),
    ("excel_apostrophe", 2),
)
INVALID_KINDS: Final = tuple(kind for kind, _ in _INVALID_KINDS)
INVALID_CUM: Final = cumulative(w for _, w in _INVALID_KINDS)


def invalid_nik(kind: str, region: str, iso: str, female: bool, serial: int, x: int) -> str:
    """A NIK with one realistic mistake of the given kind; never valid.

    Each branch says why the result cannot pass the structural check.
    """
    date = nik_date(iso, female)
    valid = f"{region}{date}{serial:04d}"
    pos = 1 + x % 15  # an inner position: never at either end
    x //= 15
    found = _mistyped(kind, valid, pos, x)
    if found is None:
        found = _impossible_date(kind, region, iso, date, female, serial)
    if found is None:
        found = _mangled(kind, region, date, serial, valid, x)
    if found is None:
        raise ValueError(f"unknown kind of invalid NIK: {kind}")
    return found


def _mistyped(kind: str, valid: str, pos: int, x: int) -> str | None:
    """A character wrong, lost, doubled or added inside ``valid``; None for another kind."""
    if kind == "space_inside":  # a non-digit inside
        return valid[:pos] + " " + valid[pos:]
    if kind == "grouped_spaces":  # as printed on some forms
        return " ".join(valid[n : n + 4] for n in range(0, 16, 4))
    if kind == "dash_inside":
        return valid[:pos] + "-" + valid[pos:]
    if kind == "dot_inside":
        return valid[:pos] + "." + valid[pos:]
    if kind == "nbsp_inside":  # copied from a web page or a word processor
        return valid[:pos] + "\u00a0" + valid[pos:]
    if kind == "digits_15":  # a digit lost
        return valid[:pos] + valid[pos + 1 :]
    if kind == "digits_17":  # a digit typed twice
        return valid[:pos] + valid[pos] + valid[pos:]
    if kind in ("letter_o_for_0", "letter_l_for_1"):
        return _letter_for_digit(kind, valid, pos)
    if kind == "fullwidth_digit":  # IME input: looks like a digit, is not ASCII
        if x % 10 == 0:
            return "".join(chr(0xFF10 + int(c)) for c in valid)
        return valid[:pos] + chr(0xFF10 + int(valid[pos])) + valid[pos + 1 :]
    return None


def _letter_for_digit(kind: str, valid: str, pos: int) -> str:
    """A letter O typed for a 0, or an l for a 1, from ``pos`` on (else the first one)."""
    # The month (01..12) always holds a 0 or a 1, so one of the two
    # replacements always applies.
    order = (("0", "O"), ("1", "l")) if kind == "letter_o_for_0" else (("1", "l"), ("0", "O"))
    for digit, letter in order:
        at = valid.find(digit, pos)
        if at < 0:
            at = valid.find(digit)
        if at >= 0:
            return valid[:at] + letter + valid[at + 1 :]
    raise AssertionError("unreachable: a NIK month holds a 0 or a 1")


def _impossible_date(kind: str, region: str, iso: str, date: str, female: bool,
                     serial: int) -> str | None:
    """A birth date no calendar has, in NIK digits; None for another kind."""
    yy = iso[2:4]
    mm = iso[5:7]
    day_offset = 40 if female else 0
    if kind == "february_31":
        return f"{region}{31 + day_offset}02{yy}{serial:04d}"
    if kind == "february_30":
        return f"{region}{30 + day_offset}02{yy}{serial:04d}"
    if kind == "february_29_not_leap":
        # YY not divisible by 4: neither 19YY nor 20YY is a leap year.
        year2 = int(yy)
        if year2 % 4 == 0:
            year2 = (year2 + 1) % 100
        return f"{region}{29 + day_offset}02{year2:02d}{serial:04d}"
    if kind == "day_72":  # a woman's day 32: +40 applied to a wrong day
        return f"{region}72{mm}{yy}{serial:04d}"
    if kind == "day_32":
        return f"{region}32{mm}{yy}{serial:04d}"
    if kind == "day_00":  # day 0, or day 0 + 40 for a woman
        return f"{region}{day_offset:02d}{mm}{yy}{serial:04d}"
    if kind == "month_13":
        return f"{region}{date[:2]}13{yy}{serial:04d}"
    if kind == "month_00":
        return f"{region}{date[:2]}00{yy}{serial:04d}"
    return None


def _mangled(kind: str, region: str, date: str, serial: int, valid: str, x: int) -> str | None:
    """A zero where a NIK has none, nothing at all, or what a spreadsheet made of it; None
    for another kind."""
    if kind == "serial_0000":
        return f"{region}{date}0000"
    if kind == "district_00":
        return f"{region[:4]}00{date}{serial:04d}"
    if kind == "regency_00":
        return f"{region[:2]}00{region[4:]}{date}{serial:04d}"
    if kind == "empty":
        return ""
    if kind == "blank":  # only spaces: empty once trimmed
        return " " * (1 + x % 3)
    if kind == "excel_scientific":  # a spreadsheet turned it into a number
        return f"{float(valid):.5E}"
    if kind == "excel_float":  # ... or a float written back as text
        return valid + ".0"
    if kind == "excel_apostrophe":  # the text marker typed into the cell
        return "'" + valid
    return None
