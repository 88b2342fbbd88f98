"""Reading a CSV batch: its header checked, then its rows one at a time or in column blocks.

UTF-8 with an optional BOM, comma-separated, one header row, LF or CRLF. Bytes
that are not UTF-8 are kept as surrogates while parsing so that only the row
that holds them is refused; a row with the wrong number of fields, a NUL byte,
an oversized field or a line too long to be a row is reported with its line
number and the reading goes on. Header names are trimmed and compared
case-insensitively. A line is never held whole beyond what a row of the
header's width can take: a longer one is dropped as it is read.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from exchanged.csvio.blocks import Block, malloc_trim, read_ahead, records_block
from exchanged.csvio.plain import fast_block
from exchanged.csvio.rows import (
    MAX_FIELD,
    Record,
    RowProblem,
    csv_problem,
    has_surrogates,
    max_line,
)
from exchanged.csvio.source import ByteStream, LineTooLong, Source
from exchanged.errors import Refused
from exchanged.ids.redact import looks_personal
from exchanged.reasons import reason

HEADER_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,63}")
#: the size of a block of rows parsed at once (bounded memory, whatever the batch size)
BLOCK_BYTES = 4 << 20


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
        self._source = Source(stream)
        csv.field_size_limit(MAX_FIELD)
        self._reader = csv.reader(self._source.lines(), strict=True)
        self._last_line = 0
        self._block_bytes = block_bytes or BLOCK_BYTES
        self._trim = malloc_trim()
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

    def blocks(self, *, ahead: int = 0, trim_every: int = 1) -> Iterator[Block]:
        """The remaining rows as column blocks, in order (see the class comment). With
        ``ahead``, up to that many blocks are parsed ahead on a thread of their own
        (Arrow and numpy release the GIL, so parsing overlaps the caller's work). Freed
        memory is handed back to the system after every ``trim_every`` blocks: each trim
        makes the next blocks fault their pages in afresh (docs/performance.md)."""
        if ahead > 0:
            return read_ahead(self._blocks(trim_every), ahead)
        return self._blocks(trim_every)

    def _blocks(self, trim_every: int = 1) -> Iterator[Block]:
        source = self._source
        made = 0

        def trim() -> None:
            nonlocal made
            made += 1
            if made % trim_every == 0:
                self._trim()

        # a small first block: the flow (and gpg sealing its answer) starts sooner
        size = max(self._block_bytes // 8, 1)
        while True:
            chunk = source.peek_lines(size)
            size = self._block_bytes
            if chunk is None:
                return
            block = fast_block(chunk, self.width, self._last_line + 1) if chunk else None
            if block is not None:
                source.advance(len(chunk), block.rows)
                self._last_line = source.line
                self.rows_read += block.rows
                yield block
                trim()
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
                yield records_block(records, self.width)
                trim()
            elif source.at_end():
                return
