"""Streaming CSV in and out: RFC 4180, UTF-8, problems reported by line, never by value.

Reading: UTF-8 with an optional BOM, comma-separated, one header row, LF or
CRLF. Bytes that are not UTF-8 are kept as surrogates while parsing so that
only the row that holds them is refused; a row with the wrong number of fields,
a NUL byte, an oversized field or a line too long to be a row is reported with its
line number and the reading goes on. Header names are trimmed and compared
case-insensitively. A line is never held whole beyond what a row of the header's
width can take: a longer one is dropped as it is read.

Writing: every cell that a spreadsheet would run as a formula (starting with
``= + - @``, a tab or a carriage return) is neutralised with a leading
apostrophe, in every CSV the exchange writes.
"""

from __future__ import annotations

import csv
import ctypes
import ctypes.util
import io
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from exchanged.errors import Refused
from exchanged.ids.redact import looks_personal
from exchanged.reasons import reason

#: the largest field accepted (a field bigger than this fails its row only)
MAX_FIELD = 64 * 1024
#: a physical line shorter than this is always parsed (and its problem named exactly); a
#: longer one is also parsed if a row of the header's width could be that long
LINE_FLOOR = 4 << 20
HEADER_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,63}")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: how much the reader asks of its stream at a time
READ_BYTES = 1 << 20
#: the size of a block of rows parsed at once (bounded memory, whatever the batch size)
BLOCK_BYTES = 4 << 20
#: Arrow parses a block in pieces of this size, on its threads
ARROW_BLOCK = 1 << 20


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


class LineTooLong(Exception):
    """A physical line over the source's bound was dropped (it is counted as read)."""


class ByteStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class CsvReader:
    """Reads the data rows of a CSV byte stream, after reading and checking its header.

    Two ways to read the same rows, with the same results: iterating gives one
    :class:`Record` at a time (Python's ``csv`` module, exact for every input);
    :meth:`blocks` gives columns of many rows at once for the flows that must
    keep up with gpg. A block of plain, well-formed lines (UTF-8, no NUL, no bare
    CR, quotes only around whole fields, one physical line per row, the right
    number of fields, no blank line) is parsed by Arrow's C++ CSV parser; any
    block that is not provably plain goes through the same ``csv`` module as
    iteration does, so a malformed row is reported exactly as it always was and
    only costs its own block some speed. One reader is read one way only.
    """

    def __init__(self, stream: ByteStream, *, block_bytes: int | None = None) -> None:
        self._source = _Source(stream)
        csv.field_size_limit(MAX_FIELD)
        self._reader = csv.reader(self._source.lines(), strict=True)
        self._last_line = 0
        self._block_bytes = block_bytes or BLOCK_BYTES
        self._trim = _malloc_trim()
        self.header = self._read_header()
        self.width = len(self.header)
        self._source.max_line = max_line(self.width)
        self.rows_read = 0

    def _read_header(self) -> tuple[str, ...]:
        try:
            raw = next(self._reader)
        except StopIteration:
            raise Refused(reason("NO_HEADER")) from None
        except csv.Error:
            raise Refused(reason("BAD_HEADER", detail="it cannot be parsed as CSV")) from None
        except LineTooLong:
            raise Refused(reason(
                "BAD_HEADER", detail=f"its line is longer than {self._source.max_line} bytes",
            )) from None
        self._last_line = self._source.line
        names = []
        for position, cell in enumerate(raw, start=1):
            if has_surrogates(cell):
                raise Refused(reason("BAD_ENCODING", line=1))
            name = cell.strip().lower()
            if not name:
                raise Refused(reason("BAD_HEADER", detail=f"column {position} has no name"))
            # never quote a cell that is not a column name: without a header row, the
            # first row's values (a NIK, a name) would be quoted back
            if not HEADER_NAME_RE.fullmatch(name) or looks_personal(name):
                raise Refused(reason(
                    "BAD_HEADER",
                    detail=f"column {position} is not named with letters, digits and _ "
                    "(is the header row missing?)",
                ))
            if name in names:
                raise Refused(reason("DUPLICATE_COLUMN", column=name))
            names.append(name)
        if not names:
            raise Refused(reason("NO_HEADER"))
        return tuple(names)

    def __iter__(self) -> Iterator[Record]:
        while (record := self._next_record()) is not None:
            yield record

    def _next_record(self) -> Record | None:
        """The next row by the ``csv`` module, or None at the end of the stream."""
        reader = self._reader
        while True:
            start = self._last_line + 1
            try:
                row = next(reader)
            except StopIteration:
                return None
            except csv.Error as e:
                self._last_line = self._source.line
                self.rows_read += 1
                return Record(start, None, csv_problem(str(e)))
            except LineTooLong:
                # the line was dropped unread; the csv module's state (perhaps inside a
                # quoted field begun on an earlier line of this row) goes with it
                self._reader = csv.reader(self._source.lines(), strict=True)
                self._last_line = self._source.line
                self.rows_read += 1
                return Record(start, None, RowProblem(
                    "LINE_TOO_LONG",
                    f"a line is longer than {self._source.max_line} bytes, more than a row "
                    f"of {self.width} fields can take"))
            self._last_line = self._source.line
            if not row:
                # a blank line is not a row
                continue
            self.rows_read += 1
            if len(row) != self.width:
                return Record(
                    start,
                    None,
                    RowProblem(
                        "WRONG_FIELD_COUNT",
                        f"the row has {len(row)} fields; the header has {self.width}",
                    ),
                )
            if any("\0" in cell for cell in row):
                return Record(start, None, RowProblem("NUL_BYTE", "the row contains a NUL byte"))
            if any(has_surrogates(cell) for cell in row):
                return Record(start, None, RowProblem("BAD_ENCODING", "the row is not valid UTF-8"))
            return Record(start, tuple(row))

    def blocks(self, *, ahead: int = 0) -> Iterator[Block]:
        """The remaining rows as column blocks, in order (see the class comment). With
        ``ahead``, up to that many blocks are parsed ahead on a thread of their own
        (Arrow and numpy release the GIL, so parsing overlaps the caller's work)."""
        if ahead > 0:
            return _ahead(self._blocks(), ahead)
        return self._blocks()

    def _blocks(self) -> Iterator[Block]:
        source = self._source
        while True:
            chunk = source.peek_lines(self._block_bytes)
            if chunk is None:
                return
            block = self._fast_block(chunk) if chunk else None
            if block is not None:
                source.advance(len(chunk), block.rows)
                self._last_line = source.line
                self.rows_read += block.rows
                yield block
                self._trim()
                continue
            # not provably plain: the csv module reads at least as far as the chunk went
            end = source.offset + max(len(chunk), 1)
            records: list[Record] = []
            while source.offset < end:
                record = self._next_record()
                if record is None:
                    break
                records.append(record)
            if records:
                yield _records_block(records, self.width)
                self._trim()
            elif source.at_end():
                return

    def _fast_block(self, chunk: bytes) -> Block | None:
        """Parse ``chunk`` (whole lines) with Arrow if it is provably plain, else None."""
        if chunk.startswith(b"\xef\xbb\xbf"):
            return None  # Arrow would drop it as a byte order mark; here it is data
        if b"\0" in chunk or (b"\r" in chunk and chunk.count(b"\r") != chunk.count(b"\r\n")):
            return None
        if not chunk.isascii():
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if b'"' in chunk and not _plain_quotes(chunk):
            return None
        names = [f"c{i}" for i in range(self.width)]
        try:
            table = pa_csv.read_csv(
                pa.py_buffer(chunk),
                read_options=pa_csv.ReadOptions(column_names=names, block_size=ARROW_BLOCK,
                                                use_threads=True),
                # a row with the wrong number of fields fails the parse: csv module
                parse_options=pa_csv.ParseOptions(newlines_in_values=False,
                                                  ignore_empty_lines=True),
                convert_options=pa_csv.ConvertOptions(
                    column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                    quoted_strings_can_be_null=False, check_utf8=False),
            )
        except (pa.ArrowInvalid, ValueError):
            return None
        # one row per physical line: no blank line (the csv module numbers those), and no
        # line break inside quotes
        lines = table.num_rows
        if chunk.count(b"\n") != lines:
            return None
        first = self._last_line + 1
        columns = tuple(_plain(table.column(i)) for i in range(self.width))
        # the csv module's field limit (bytes are never fewer than characters)
        if any(len(c) and pc.max(pc.binary_length(c)).as_py() > MAX_FIELD for c in columns):
            return None
        return Block(np.arange(first, first + lines, dtype=np.int64), columns, {})


def _malloc_trim() -> Callable[[], None]:
    """glibc's ``malloc_trim``, or nothing where there is no glibc.

    A block's columns and the arrays made from them are freed by one thread and
    allocated again by another; glibc keeps what is freed in per-thread arenas and
    raises its threshold for handing large blocks back to the system, so without a
    trim after each block the daemon's memory would creep up with the number of blocks
    (measured: 380 MB after 1 million rows, 820 MB after 10 million). Trimming costs
    about 2 ms a block.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return lambda: None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def release() -> None:
        trim(0)

    return release


def _ahead(blocks: Iterator[Block], depth: int) -> Iterator[Block]:
    """``blocks`` produced on a thread, at most ``depth`` waiting."""
    items: queue.Queue[Block | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Block | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for block in blocks:
                if not put(block):
                    return
            put(None)
        except BaseException as e:  # handed to the consumer
            put(e)

    thread = threading.Thread(target=produce, name="csv-blocks", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class Block:
    """Consecutive data rows as columns (header order); an unreadable row has "" in every
    column and its problem in ``problems`` (by its index in the block)."""

    lines: npt.NDArray[np.int64]
    columns: tuple[pa.StringArray, ...]
    problems: Mapping[int, RowProblem]

    @property
    def rows(self) -> int:
        return len(self.lines)

    def readable(self) -> npt.NDArray[np.bool_]:
        ok = np.ones(self.rows, dtype=np.bool_)
        if self.problems:
            ok[list(self.problems)] = False
        return ok


def _records_block(records: Sequence[Record], width: int) -> Block:
    lines = np.fromiter((r.line for r in records), dtype=np.int64, count=len(records))
    problems = {i: r.problem for i, r in enumerate(records) if r.problem is not None}
    blank = ("",) * width
    rows = [r.fields if r.fields is not None else blank for r in records]
    columns = tuple(pa.array(list(column), type=pa.string()) for column in zip(*rows))
    return Block(lines, columns, problems)


def _plain(column: pa.ChunkedArray) -> pa.StringArray:
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    assert isinstance(array, pa.StringArray)
    return array


def _plain_quotes(chunk: bytes) -> bool:
    """Every quote opens a field, closes it, or doubles a quote inside it, and no quoted
    field holds a line break: then Arrow and the csv module read the chunk alike."""
    data = np.frombuffer(chunk, dtype=np.uint8)
    quotes = np.flatnonzero(data == 34)
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
    # no line break inside quotes
    lengths = closing - opening - 1
    total = int(lengths.sum())
    if total:
        starts = np.repeat(opening + 1 - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        inside = data[starts + np.arange(total)]
        if np.any((inside == 10) | (inside == 13)):
            return False
    return True


class _Source:
    """The byte stream, buffered, read as lines (for the csv module) or as chunks of
    whole lines (for Arrow); counts the physical lines consumed."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._consumed = 0
        self.line = 0
        self._bom_checked = False
        #: the longest physical line :meth:`lines` yields (set by the reader from the header)
        self.max_line = LINE_FLOOR

    @property
    def offset(self) -> int:
        """Bytes consumed since the start of the stream."""
        return self._consumed + self._pos

    def at_end(self) -> bool:
        return self._eof and self._pos >= len(self._buf)

    def _fill(self, want: int) -> None:
        while len(self._buf) - self._pos < want and not self._eof:
            data = self._stream.read(max(READ_BYTES, want - (len(self._buf) - self._pos)))
            if not data:
                self._eof = True
                break
            if self._pos:
                self._consumed += self._pos
                self._buf = self._buf[self._pos:] + data
                self._pos = 0
            else:
                self._buf += data
        if not self._bom_checked and (len(self._buf) >= 3 or self._eof):
            self._bom_checked = True
            if self._buf.startswith(b"\xef\xbb\xbf"):
                self._pos += 3

    def lines(self) -> Iterator[str]:
        """Lines ending in LF, CRLF or a lone CR, as ``open(newline="")`` splits them;
        bytes that are not UTF-8 become lone surrogates (caught per row). A line longer
        than :attr:`max_line` is dropped as it is read and :class:`LineTooLong` raised
        (which ends this generator: the caller starts another)."""
        while True:
            self._fill(1)
            if self._pos >= len(self._buf):
                return
            # how far (from the line's start) is known to hold no line end: each read is
            # searched once, not the whole line again after every read
            searched = 0
            while True:
                m = _LINE_END.search(self._buf, self._pos + searched)
                # a CR at the end of what has been read may be the first half of a CRLF
                complete = m is not None and (m.group() != b"\r" or m.end() < len(self._buf))
                if complete or self._eof:
                    break
                held = len(self._buf) - self._pos
                if held > self.max_line + 1:  # over the bound even if it ends in CR LF
                    self._skip_line()
                    raise LineTooLong
                searched = max(held - 1, 0)  # a last CR is searched again
                self._fill(held + READ_BYTES)
            end = m.end() if m is not None else len(self._buf)
            if (m.start() if m is not None else end) - self._pos > self.max_line:
                self._pos = end
                self.line += 1
                raise LineTooLong
            raw = self._buf[self._pos:end]
            self._pos = end
            self.line += 1
            yield raw.decode("utf-8", "surrogateescape")

    def _skip_line(self) -> None:
        """Drop the rest of the current physical line, a read at a time."""
        while True:
            m = _LINE_END.search(self._buf, self._pos)
            if m is not None and (m.group() != b"\r" or m.end() < len(self._buf) or self._eof):
                self._pos = m.end()
                break
            if self._eof:
                self._pos = len(self._buf)
                break
            # keep only a last CR, which may be the first half of a CRLF
            keep = len(self._buf) - 1 if self._buf.endswith(b"\r") else len(self._buf)
            self._consumed += keep
            self._buf = self._buf[keep:]
            self._pos = 0
            self._fill(len(self._buf) + 1)
        self.line += 1

    def peek_lines(self, size: int) -> bytes | None:
        """Up to about ``size`` bytes of whole LF-ended lines from here (b"" if the next
        line is longer, or has no LF); None at the end of the stream."""
        self._fill(size)
        if self._pos >= len(self._buf):
            return None
        cut = self._buf.rfind(b"\n", self._pos, self._pos + size)
        if cut < 0:
            return b""
        # a CR at the cut's end could be the first half of a CRLF split by a read: no,
        # the cut ends at a LF, which is never the first half of anything
        return self._buf[self._pos:cut + 1]

    def advance(self, size: int, lines: int) -> None:
        self._pos += size
        self.line += lines


_LINE_END = re.compile(rb"\r\n|\r|\n")


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


def string_view(values: pa.StringArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """The offsets (one more than the values) and the UTF-8 bytes of a string array, as
    numpy arrays over Arrow's own buffers (no copy of the text)."""
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[values.offset:values.offset + len(values) + 1]
    data = (np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None
            else np.zeros(0, dtype=np.uint8))
    return offsets.astype(np.int64), data


_FORMULA_BYTES = np.zeros(256, dtype=np.bool_)
_FORMULA_BYTES[[ord(c) for c in FORMULA_START]] = True
_QUOTE_BYTES = np.zeros(256, dtype=np.bool_)
_QUOTE_BYTES[[ord(c) for c in ',"\r\n']] = True


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
