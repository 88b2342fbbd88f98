"""Streaming CSV in and out: RFC 4180, UTF-8, problems reported by line, never by value.

Reading: UTF-8 with an optional BOM, comma-separated, one header row, LF or
CRLF. Bytes that are not UTF-8 are kept as surrogates while parsing so that
only the row that holds them is refused; a row with the wrong number of fields,
a NUL byte or an oversized field is reported with its line number and the
reading goes on. Header names are trimmed and compared case-insensitively.

Writing: every cell that a spreadsheet would run as a formula (starting with
``= + - @``, a tab or a carriage return) is neutralised with a leading
apostrophe, in every CSV the exchange writes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from exchanged.errors import Rejected
from exchanged.reasons import reason
from exchanged.redact import looks_personal

#: the largest field accepted (a field bigger than this fails its row only)
MAX_FIELD = 64 * 1024
HEADER_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,63}")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


class CsvReader:
    """Iterates the data rows of a CSV byte stream, after reading and checking its header."""

    def __init__(self, stream: IO[bytes]) -> None:
        # surrogateescape: invalid UTF-8 becomes lone surrogates, caught per row
        self._text = io.TextIOWrapper(
            stream, encoding="utf-8-sig", errors="surrogateescape", newline=""
        )
        csv.field_size_limit(MAX_FIELD)
        self._reader = csv.reader(self._text, strict=True)
        self._last_line = 0
        self.header = self._read_header()
        self.width = len(self.header)
        self.rows_read = 0

    def _read_header(self) -> tuple[str, ...]:
        try:
            raw = next(self._reader)
        except StopIteration:
            raise Rejected(reason("NO_HEADER")) from None
        except csv.Error:
            raise Rejected(reason("BAD_HEADER", detail="it cannot be parsed as CSV")) from None
        self._last_line = self._reader.line_num
        names = []
        for position, cell in enumerate(raw, start=1):
            if has_surrogates(cell):
                raise Rejected(reason("BAD_ENCODING", line=1))
            name = cell.strip().lower()
            if not name:
                raise Rejected(reason("BAD_HEADER", detail=f"column {position} has no name"))
            # never quote a cell that is not a column name: without a header row, the
            # first row's values (a NIK, a name) would be quoted back
            if not HEADER_NAME_RE.fullmatch(name) or looks_personal(name):
                raise Rejected(reason(
                    "BAD_HEADER",
                    detail=f"column {position} is not named with letters, digits and _ "
                    "(is the header row missing?)",
                ))
            if name in names:
                raise Rejected(reason("DUPLICATE_COLUMN", column=name))
            names.append(name)
        if not names:
            raise Rejected(reason("NO_HEADER"))
        return tuple(names)

    def __iter__(self) -> Iterator[Record]:
        reader = self._reader
        while True:
            start = self._last_line + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                self._last_line = reader.line_num
                self.rows_read += 1
                yield Record(start, None, csv_problem(str(e)))
                continue
            self._last_line = reader.line_num
            if not row:
                # a blank line is not a row
                continue
            self.rows_read += 1
            if len(row) != self.width:
                yield Record(
                    start,
                    None,
                    RowProblem(
                        "WRONG_FIELD_COUNT",
                        f"the row has {len(row)} fields; the header has {self.width}",
                    ),
                )
                continue
            if any("\0" in cell for cell in row):
                yield Record(start, None, RowProblem("NUL_BYTE", "the row contains a NUL byte"))
                continue
            if any(has_surrogates(cell) for cell in row):
                yield Record(start, None, RowProblem("BAD_ENCODING", "the row is not valid UTF-8"))
                continue
            yield Record(start, tuple(row))


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


def neutralise(cell: str) -> str:
    """Make a cell safe to open in a spreadsheet.

    >>> neutralise("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> neutralise("ASN")
    'ASN'
    """
    if cell.startswith(FORMULA_START):
        return "'" + cell
    return cell


class CsvWriter:
    """Writes rows as RFC 4180 CSV (CRLF), UTF-8, every cell neutralised."""

    def __init__(self, stream: IO[bytes], header: Sequence[str], *, header_row: bool = True) -> None:
        self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=False)
        self._writer = csv.writer(self._text, lineterminator="\r\n")
        if header_row:
            self._writer.writerow([neutralise(h) for h in header])
        self.rows = 0

    def write(self, row: Sequence[str]) -> None:
        self._writer.writerow([neutralise(c) for c in row])
        self.rows += 1

    def write_many(self, rows: Iterable[Sequence[str]]) -> None:
        for row in rows:
            self.write(row)

    def close(self) -> None:
        self._text.flush()
        self._text.detach()
