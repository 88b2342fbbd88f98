"""Writing CSV: every field quoted, and nothing a spreadsheet would run as a formula.

Two defences, in every CSV the exchange writes (answers, summaries, ``ledger
query --format csv``), row by row (:class:`CsvWriter`) or a column block at a
time (:func:`csv_cells`):

* every field is quoted (``csv.QUOTE_ALL``), so that a spreadsheet that splits
  on commas never takes a ``;`` or a ``,`` inside a value for the end of a cell;
* every *part* of a value that a spreadsheet could open as a cell of its own
  and that would start with ``= + - @``, a tab or a carriage return (after any
  spaces or quotes) gets a leading apostrophe (:func:`neutralise`). A part is
  the value's start and whatever follows a ``;``, a tab or a line break inside
  it: Excel in an Indonesian (or any comma-decimal) locale opens a ``.csv`` by
  splitting each line on ``;``, its list separator, whatever the quotes say
  once the line's first field has ended, and a reader that ignores quotes
  splits on line breaks and tabs. ``Kementerian Sosial;=2+3`` is written
  ``"Kementerian Sosial;'=2+3"``: no way of splitting it yields a cell that
  starts with ``=``. (A ``,`` inside a quoted value is left alone: a reader
  that splits on commas honours the quote that every field now starts with.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from exchanged.csvio.blocks import string_view
from exchanged.csvrow import FORMULA_START, LEAD, PART_SEPARATORS, CsvWriter, neutralise

__all__ = ["FORMULA_START", "CsvWriter", "csv_cells", "neutralise", "sparse_cells", "write_columns"]



def _byte_table(chars: Sequence[str]) -> npt.NDArray[np.bool_]:
    """Which of the 256 byte values are one of ``chars`` (read-only: a constant)."""
    table = np.zeros(256, dtype=np.bool_)
    table[[ord(c) for c in chars]] = True
    table.setflags(write=False)
    return table


_FORMULA_BYTES = _byte_table(FORMULA_START)
#: a value starting with one of these may need neutralising (a formula, or spaces or a
#: quote before one)
_SUSPECT_START_BYTES = _byte_table(FORMULA_START + tuple(LEAD))
_SEPARATORS = "".join(PART_SEPARATORS).encode("ascii")


def _rows_holding(values: pa.StringArray, chars: bytes) -> npt.NDArray[np.bool_] | None:
    """Which values hold one of ``chars`` (ASCII, so never inside a UTF-8 sequence); None
    if none does (nearly always)."""
    offsets, data = string_view(values)
    body = data[offsets[0]:offsets[-1]]
    hit = body == chars[0]
    for c in chars[1:]:
        hit |= body == c
    where = np.flatnonzero(hit)
    if not len(where):
        return None
    found = np.zeros(len(values), dtype=np.bool_)
    found[np.searchsorted(offsets, where + offsets[0], side="right") - 1] = True
    return found


def _neutralised(values: pa.StringArray) -> pa.StringArray:
    """:func:`neutralise` over a column: numpy finds the few values it may change."""
    offsets, data = string_view(values)
    lengths = np.diff(offsets)
    first = data[np.minimum(offsets[:-1], len(data) - 1)]
    formula = (lengths > 0) & _FORMULA_BYTES[first]
    # the rare values that need a closer look: a separator inside, or spaces or a quote
    # before what could be a formula
    odd = (lengths > 0) & ~formula & _SUSPECT_START_BYTES[first]
    separated = _rows_holding(values, _SEPARATORS)
    if separated is not None:
        odd |= separated
    simple = formula & ~odd
    if simple.any():  # a formula character first and no separator: one apostrophe
        values = pc.if_else(pa.array(simple), pc.binary_join_element_wise("'", values, ""),
                            values)
    if odd.any():
        rows = np.flatnonzero(odd)
        words = [neutralise(v) for v in values.take(pa.array(rows)).to_pylist()]
        values = pc.replace_with_mask(values, pa.array(odd), pa.array(words, type=pa.string()))
    return values


def csv_cells(values: pa.StringArray) -> pa.StringArray:
    """The contents of cells as :class:`CsvWriter` writes them, before quoting: neutralised
    (:func:`write_columns` puts every one between quotes and doubles the quotes inside)."""
    offsets, _ = string_view(values)
    if not len(values) or offsets[-1] == offsets[0]:
        return values
    return _neutralised(values)


def sparse_cells(rows: int, cells: Mapping[int, str]) -> pa.StringArray:
    """A column of ``rows`` cells, empty but for ``cells`` (by row: few, from a small set
    of words such as reason codes), made by one take from its distinct words instead of
    from a Python list of every row."""
    words = sorted(set(cells.values()))
    codes = np.zeros(rows, dtype=np.int32)
    if cells:
        at = {word: i + 1 for i, word in enumerate(words)}
        codes[np.fromiter(cells.keys(), dtype=np.int64, count=len(cells))] = np.fromiter(
            (at[w] for w in cells.values()), dtype=np.int32, count=len(cells))
    dictionary = csv_cells(pa.array(["", *words], type=pa.string()))
    result: pa.StringArray = dictionary.take(pa.array(codes))
    return result


#: every field quoted (never null: the columns hold "" for nothing), CRLF as the csv module
_ROWS = pa_csv.WriteOptions(include_header=False, quoting_style="all_valid", eol="\r\n",
                            batch_size=1 << 16)


def write_columns(out: IO[bytes], cells: Sequence[pa.StringArray]) -> None:
    """Rows of cells (see :func:`csv_cells`), each quoted, comma-separated, CRLF-ended.

    Arrow's CSV writer quotes every field and doubles the quotes inside, in C++, a
    batch of rows at a time: 0.05 s a million answer rows, where one Arrow join of the
    cells and the text between them took 0.18 s (docs/performance.md)."""
    if not cells or not len(cells[0]):
        return
    table = pa.table(list(cells), names=[f"c{i}" for i in range(len(cells))])
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, write_options=_ROWS)
    out.write(sink.getvalue())


class BlocksBehind:
    """Each block's answer rows made and written on a thread of their own, in the blocks'
    order, while the caller works on the next block: Arrow makes and writes the rows
    without the GIL, so the two overlap.

    At most ``depth`` blocks wait, so memory stays a few blocks'. An error of the thread
    (the answer's pipe closed, the disk full) is raised by the next :meth:`submit` or by
    :meth:`close`; after an error of the caller's, :meth:`abort` waits for the thread
    without raising (what it was writing is thrown away with the answer)."""

    def __init__(self, depth: int = 2) -> None:
        self._depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="answer-rows")
        self._queued: deque[Future[None]] = deque()

    def submit(self, write: Callable[[], None]) -> None:
        while len(self._queued) >= self._depth:
            self._queued.popleft().result()
        self._queued.append(self._pool.submit(write))

    def close(self) -> None:
        """Wait until every block is written; raises the first error of the thread."""
        try:
            while self._queued:
                self._queued.popleft().result()
        finally:
            self.abort()

    def abort(self) -> None:
        for future in self._queued:
            future.cancel()
        self._queued.clear()
        self._pool.shutdown(wait=True)
