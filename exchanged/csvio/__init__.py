"""Streaming CSV in and out: RFC 4180, UTF-8, problems reported by line, never by value."""

from exchanged.csvio.blocks import Block, string_view
from exchanged.csvio.reader import HEADER_NAME_RE, CsvReader
from exchanged.csvio.rows import LINE_FLOOR, MAX_FIELD, Record, RowProblem, max_line
from exchanged.csvio.source import ByteStream, LineTooLong
from exchanged.csvio.writer import (
    FORMULA_START,
    BlocksBehind,
    CsvWriter,
    csv_cells,
    neutralise,
    sparse_cells,
    write_columns,
)

__all__ = [
    "FORMULA_START",
    "BlocksBehind",
    "HEADER_NAME_RE",
    "LINE_FLOOR",
    "MAX_FIELD",
    "Block",
    "ByteStream",
    "CsvReader",
    "CsvWriter",
    "LineTooLong",
    "Record",
    "RowProblem",
    "csv_cells",
    "max_line",
    "neutralise",
    "sparse_cells",
    "string_view",
    "write_columns",
]
