"""A data row as the CSV reader gives it: its line, its fields or what was wrong with it."""

from __future__ import annotations

from dataclasses import dataclass

#: the largest field accepted (a field bigger than this fails its row only)
MAX_FIELD = 64 * 1024
#: a physical line shorter than this is always parsed (and its problem named exactly); a
#: longer one is also parsed if a row of the header's width could be that long
LINE_FLOOR = 4 << 20


@dataclass(frozen=True)
class RowProblem:
    code: str
    message: str


@dataclass(frozen=True)
class Record:
    """One data row: the line it starts on, and its fields or what was wrong with it."""

    line: int
    fields: tuple[str, ...] | None
    problem: RowProblem | None = None


def max_line(width: int) -> int:
    """The longest physical line a row of ``width`` fields may take: every field at the
    field limit in 4-byte characters (or doubled quotes), quoted, with its comma, and a
    CRLF. A longer line cannot be a valid row, so it is dropped unread rather than held
    whole (one line of gigabytes would otherwise exhaust the daemon's memory)."""
    return max(LINE_FLOOR, width * (4 * MAX_FIELD + 3) + 2)


def csv_problem(text: str) -> RowProblem:
    if "NUL" in text:
        return RowProblem("NUL_BYTE", "the row contains a NUL byte")
    if "field larger than field limit" in text:
        return RowProblem("FIELD_TOO_LARGE", f"a field is larger than {MAX_FIELD} bytes")
    if "unexpected end of data" in text or "EOF" in text:
        return RowProblem("UNCLOSED_QUOTE", "a quoted field is not closed before the end")
    return RowProblem("BAD_CSV", "the row is not valid CSV")


def has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
