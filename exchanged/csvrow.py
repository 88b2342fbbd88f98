"""One CSV row as the exchange writes it: every field quoted, nothing a spreadsheet runs.

The row-at-a-time half of :mod:`exchanged.csvio.writer` (whose docstring explains both
defences), in the standard library alone: the agency's client writes CSV the same way
without the server's column packages (numpy, pyarrow).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import IO, Final

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: inside a value, where a spreadsheet may begin a cell of its own: Excel's list separator
#: in Indonesian (and every comma-decimal) locale, and what naive readers split on
PART_SEPARATORS = (";", "\t", "\r", "\n")
#: what may stand before a formula's first character and still let it run: spaces
#: (trimmed by LibreOffice's "trim spaces") and quotes (a part ``"=1`` opens a quote that
#: the next ``"`` closes, leaving ``=1``)
LEAD = ' "'
#: a cell that starts otherwise and holds no separator is left as it is (nearly every cell)
_SUSPECT_START = frozenset(FORMULA_START + tuple(LEAD))

# the start of the value, or of any part after a separator, followed by what would run:
# an apostrophe goes there (a zero-width match: nothing of the value is lost)
_RUNNABLE_PART_RE: Final = re.compile(
    "(?:^|(?<=[" + re.escape("".join(PART_SEPARATORS)) + "]))"
    "(?=[" + re.escape(LEAD) + "]*[" + re.escape("".join(FORMULA_START)) + "])")


def neutralise(cell: str) -> str:
    """Make a cell safe to open in a spreadsheet, however the spreadsheet splits it.

    >>> neutralise("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> neutralise("ASN"), neutralise("jabatan;tmt_jabatan")
    ('ASN', 'jabatan;tmt_jabatan')
    >>> neutralise("Kementerian Sosial;=2+3"), neutralise(' "=1;x; -2')
    ("Kementerian Sosial;'=2+3", '\\' "=1;x;\\' -2')
    """
    # nearly every cell (a NIP, a status, a name) is left as it is without the regular
    # expression: letters and digits only, or no separator and nothing suspect first
    if cell.isalnum() or not cell:
        return cell
    if (cell[0] not in _SUSPECT_START and ";" not in cell and "\t" not in cell
            and "\n" not in cell and "\r" not in cell):
        return cell
    return _RUNNABLE_PART_RE.sub("'", cell)



class CsvWriter:
    """Writes rows as RFC 4180 CSV (CRLF), UTF-8, every field quoted and neutralised.

    ``line_end``: "\\n" only where a command has always printed LF-ended CSV (the
    ledger's, for the operator's shell); the cells are quoted and neutralised all the same.
    """

    def __init__(self, stream: IO[bytes], header: Sequence[str], *, header_row: bool = True,
                 line_end: str = "\r\n") -> None:
        self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=False)
        self._writer = csv.writer(self._text, lineterminator=line_end, quoting=csv.QUOTE_ALL)
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
