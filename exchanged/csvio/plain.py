"""The fast path of the CSV reader: a chunk of provably plain lines parsed by Arrow's C++ parser."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from exchanged.csvio.blocks import Block
from exchanged.csvio.rows import MAX_FIELD


def fast_block(chunk: memoryview, width: int, first: int) -> Block | None:
    """Parse ``chunk`` (whole lines of ``width`` fields, the first numbered ``first``) with
    Arrow if it is provably plain, else None. The bytes are looked at by numpy, which
    leaves the GIL to the thread matching the block before (bytes.count held it)."""
    data = np.frombuffer(chunk, dtype=np.uint8)
    if not len(data):
        return None
    if bytes(data[:3]) == b"\xef\xbb\xbf":
        return None  # Arrow would drop it as a byte order mark; here it is data
    lowest, highest = int(data.min()), int(data.max())
    if lowest == 0:
        return None  # a NUL byte
    if lowest <= 13:
        cr = data == 13
        # a CR only ever as the first half of a CRLF
        if cr.any() and np.count_nonzero(cr) != np.count_nonzero(cr[:-1] & (data[1:] == 10)):
            return None
    quotes = np.flatnonzero(data == 34)
    if len(quotes) and not plain_quotes(data, quotes):
        return None
    names = [f"c{i}" for i in range(width)]
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(chunk),
            # the chunk in one piece, on this thread: its columns then need no joining of
            # pieces (CPU for 1 M rows 0.16 -> 0.14 s), and this thread already runs beside
            # the flow's and gpg's (docs/performance.md)
            read_options=pa_csv.ReadOptions(column_names=names, block_size=len(chunk) + 1,
                                            use_threads=False),
            # a row with the wrong number of fields fails the parse: csv module
            parse_options=pa_csv.ParseOptions(newlines_in_values=False,
                                              ignore_empty_lines=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                # not UTF-8: the csv module (Arrow checks the cells, in C++; what is
                # outside them, quotes, commas and line ends, is ASCII). A chunk all
                # ASCII is UTF-8 already: the check cost 0.25 s of 6 M register rows,
                # finding the highest byte 0.03 s
                check_utf8=highest >= 128),
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    # one row per physical line: no blank line (the csv module numbers those), and no
    # line break inside quotes (the chunk is one block of Arrow's, whose parser keeps a
    # quoted line break in the value: the row then spans two lines)
    lines = table.num_rows
    if np.count_nonzero(data == 10) != lines:
        return None
    columns = tuple(_plain_column(table.column(i)) for i in range(width))
    # the csv module's field limit (bytes are never fewer than characters)
    if any(len(c) and pc.max(pc.binary_length(c)).as_py() > MAX_FIELD for c in columns):
        return None
    return Block(np.arange(first, first + lines, dtype=np.int64), columns, {})


def _plain_column(column: pa.ChunkedArray) -> pa.StringArray:
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    assert isinstance(array, pa.StringArray)
    return array


def plain_quotes(data: npt.NDArray[np.uint8], quotes: npt.NDArray[np.intp]) -> bool:
    """Every quote (at ``quotes`` in ``data``) opens a field, closes it, or doubles a quote
    inside it: then Arrow and the csv module read the chunk alike. A line break inside
    quotes is found by :func:`fast_block`, which counts rows against lines."""
    if len(quotes) % 2:
        return False
    n = len(quotes)
    index = np.arange(n)
    opening = quotes[0::2]
    closing = quotes[1::2]
    # an opening quote starts a field, or is the second of a doubled quote
    before = np.where(opening > 0, data[np.maximum(opening - 1, 0)], 10)
    after_pair = np.zeros(len(opening), dtype=np.bool_)
    after_pair[1:] = quotes[index[2::2] - 1] == opening[1:] - 1
    if not np.all((before == 44) | (before == 10) | after_pair):
        return False
    # a closing quote ends a field, or is the first of a doubled quote
    nxt = data[np.minimum(closing + 1, len(data) - 1)]
    pair_next = np.zeros(len(closing), dtype=np.bool_)
    has_next = index[1::2] + 1 < n
    pair_next[has_next] = quotes[index[1::2][has_next] + 1] == closing[has_next] + 1
    if not np.all((nxt == 44) | (nxt == 10) | (nxt == 13) | pair_next):
        return False
    return True
