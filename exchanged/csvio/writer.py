"""Writing CSV: every cell a spreadsheet would run as a formula is neutralised.

Every cell that starts with ``= + - @``, a tab or a carriage return gets a
leading apostrophe, in every CSV the exchange writes, row by row
(:class:`CsvWriter`) or a column block at a time (:func:`csv_cells`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import IO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from exchanged.csvio.blocks import string_view

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def _byte_table(chars: Sequence[str]) -> npt.NDArray[np.bool_]:
    """Which of the 256 byte values are one of ``chars`` (read-only: a constant)."""
    table = np.zeros(256, dtype=np.bool_)
    table[[ord(c) for c in chars]] = True
    table.setflags(write=False)
    return table


_FORMULA_BYTES = _byte_table(FORMULA_START)
_QUOTE_BYTES = _byte_table(',"\r\n')


def csv_cells(values: pa.StringArray) -> pa.StringArray:
    """Cells as :class:`CsvWriter` writes them: neutralised, then quoted where csv would
    (a comma, a quote, CR or LF inside)."""
    if not len(values):
        return values
    offsets, data = string_view(values)
    if not len(data):
        return values
    lengths = np.diff(offsets)
    formula = (lengths > 0) & _FORMULA_BYTES[data[np.minimum(offsets[:-1], len(data) - 1)]]
    if formula.any():
        values = pc.if_else(pa.array(formula), pc.binary_join_element_wise("'", values, ""),
                            values)
    special = np.flatnonzero(_QUOTE_BYTES[data[offsets[0]:offsets[-1]]])
    if len(special):
        quote = np.zeros(len(values), dtype=np.bool_)
        quote[np.searchsorted(offsets, special + offsets[0], side="right") - 1] = True
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
        values = pc.if_else(pa.array(quote), quoted, values)
    return values


def write_columns(out: IO[bytes], cells: Sequence[pa.StringArray]) -> None:
    """Rows of ready cells (see :func:`csv_cells`), comma-separated, CRLF-ended."""
    lines = pc.binary_join_element_wise(
        pc.binary_join_element_wise(*cells, ","), pa.scalar("\r\n"), "")
    offsets, data = string_view(lines)
    out.write(data[offsets[0]:offsets[-1]].data)


class CsvWriter:
    """Writes rows as RFC 4180 CSV (CRLF), UTF-8, every cell neutralised.

    ``line_end``: "\\n" only where a command has always printed LF-ended CSV (the
    ledger's, for the operator's shell); the cells are neutralised all the same.
    """

    def __init__(self, stream: IO[bytes], header: Sequence[str], *, header_row: bool = True,
                 line_end: str = "\r\n") -> None:
        self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=False)
        self._writer = csv.writer(self._text, lineterminator=line_end)
        if header_row:
            self._writer.writerow([neutralise(h) for h in header])
        self.rows = 0

    def write(self, row: Sequence[str]) -> None:
        self._writer.writerow([neutralise(c) for c in row])
        self.rows += 1

    def write_many(self, rows: Iterable[Sequence[str]]) -> None:
        for row in rows:
            self.write(row)

    def flush(self) -> None:
        """Hand what is written so far to the stream (a reader may be waiting: --follow)."""
        self._text.flush()  # and the stream under it

    def close(self) -> None:
        self._text.flush()
        self._text.detach()
