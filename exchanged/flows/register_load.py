"""``reference-load`` flows (asn-register, kpm-register): a snapshot replacing the previous one.

Every row is checked against the flow's column types; invalid rows and
repeated NIKs or NIPs are reported by line number (the first occurrence is
kept) and the valid rows become a new snapshot, holding the identifiers only
as keyed hashes and, of the other columns, only those the policy ``keeps``.
The snapshot becomes current only when the batch's result is committed, so a
load that fails halfway leaves the previous snapshot in force.

The answer is a CSV ``record,line,code,detail``: ``summary`` rows first
(ROWS_READ, ROWS_LOADED, ROWS_INVALID, SNAPSHOT), then one ``invalid`` row per
refused line.
"""

from __future__ import annotations

import csv
import heapq
import os
from collections.abc import Iterator, Sequence
from typing import IO, Final

import numpy as np
import pyarrow as pa

from exchanged.csvio import Block, CsvReader, CsvWriter, string_view
from exchanged.errors import Refused
from exchanged.flows.base import (
    CheckedColumn,
    DatasetUpdate,
    FlowContext,
    FlowResult,
    ValueProblem,
    check_column,
    fixed_width,
    too_many_rows,
)
from exchanged.flows.kind import FlowKind, FlowProblem
from exchanged.flows.model import IDENTIFIER_TYPES, Column, Flow
from exchanged.flows.tokens import TokenColumn, refuse_tokens, token_column
from exchanged.matching.fuzzy import FuzzyIndexBuilder, discard_index, index_path
from exchanged.matching.register import IdentifierCipher, SnapshotBuilder, U64Pairs, token_key
from exchanged.reasons import reason

#: blocks parsed ahead of the one being checked (each some megabytes)
BLOCKS_AHEAD = 2
#: blocks between two hand-backs of freed memory: a load's memory stays flat without a
#: trim after every block, and each trim cost the next blocks their page faults
#: (6 M rows: 629,000 faults and 8.8 s of CPU trimming every block, 241,000 and 7.7 s
#: every 8th)
TRIM_EVERY = 8

HEADER = ("record", "line", "code", "detail")


class RegisterLoad(FlowKind):
    """A reference dataset, loaded whole: the snapshot the matching kinds answer from."""

    name = "reference-load"
    # an empty load is refused by the load itself (NO_ROWS), which first discards
    # the snapshot and the fuzzy index it began
    needs_rows = False
    builds_dataset = True

    def check(self, flow: Flow) -> Iterator[FlowProblem]:
        if flow.dataset is None:
            yield FlowProblem((), "a reference-load flow must name the dataset it loads")
        if not any(c.type in ("nik", "nip") and c.required for c in flow.columns):
            yield FlowProblem(("columns",), "a reference-load flow must require a nik or nip "
                              "column to match on")

    def run(self, reader: CsvReader, out: IO[bytes], ctx: FlowContext) -> FlowResult:
        return register_load(reader, out, ctx)


REGISTER_LOAD: Final = RegisterLoad()


def register_load(reader: CsvReader, out: IO[bytes], ctx: FlowContext) -> FlowResult:
    flow = ctx.flow
    assert flow.dataset is not None
    positions = [(flow.column(name), i) for i, name in enumerate(reader.header)]
    columns = tuple(c.name for c in flow.columns if c.type in IDENTIFIER_TYPES)
    keys_at = [reader.header.index(k) if k in reader.header else -1 for k in columns]
    # on tokens, the snapshot indexes the nik column under a name that names the token key
    named = {c: token_key(c, flow.tokens.key_fingerprint) if flow.tokens and c == "nik" else c
             for c in columns}
    keys = tuple(named[c] for c in columns)
    unique = tuple(named[c.name] for c in flow.columns if c.type in ("nik", "nip"))
    kept_at = [reader.header.index(n) if n in reader.header else -1 for n in flow.keeps]
    store = ctx.references.store(flow.dataset)
    builder = store.new_snapshot(ctx.new_snapshot_id, keys=keys, unique=unique, values=flow.keeps)
    # the fuzzy fallback's index: names and birth dates, protected, never the values themselves
    fuzzy: FuzzyIndexBuilder | None = None
    names_at = -1, -1
    if ctx.build_fuzzy_index and "nama" in reader.header and "tanggal_lahir" in reader.header:
        fuzzy = FuzzyIndexBuilder(index_path(store.directory, ctx.new_snapshot_id),
                                  store.secret, ctx.work)
        names_at = reader.header.index("nama"), reader.header.index("tanggal_lahir")
    problems_path = ctx.work / "problems.csv"
    fd = os.open(problems_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    invalid = 0
    rows = 0
    try:
        with os.fdopen(fd, "wb") as problems_file:
            problems = CsvWriter(problems_file, HEADER)
            for block in reader.blocks(ahead=BLOCKS_AHEAD, trim_every=TRIM_EVERY):
                rows += block.rows
                if flow.max_rows is not None and rows > flow.max_rows:
                    raise too_many_rows(flow)
                invalid += _load_block(flow, block, positions, keys, keys_at, kept_at,
                                       builder, problems, store.cipher, fuzzy, names_at)
            report = builder.finish()
            if fuzzy is not None:
                # the rows the snapshot left out (repeated NIK or NIP) leave the index too
                fuzzy.finish(d.line for d in report.duplicates)
            invalid += len(report.duplicates)
            problems.close()
    except BaseException:
        builder.abort()
        if fuzzy is not None:
            fuzzy.abort()
            discard_index(store.directory, ctx.new_snapshot_id)
        raise
    if rows == 0 or report.rows_loaded == 0:
        builder.abort()
        discard_index(store.directory, ctx.new_snapshot_id)
        raise Refused(reason("NO_ROWS" if rows == 0 else "NO_VALID_ROWS"))
    writer = CsvWriter(out, HEADER)
    writer.write(["summary", "", "ROWS_READ", str(rows)])
    writer.write(["summary", "", "ROWS_LOADED", str(report.rows_loaded)])
    writer.write(["summary", "", "ROWS_INVALID", str(invalid)])
    writer.write(["summary", "", "SNAPSHOT", report.snapshot_id])
    writer.close()
    column_of = {key: column for column, key in named.items()}
    duplicates = (
        ["invalid", str(d.line), f"DUPLICATE_{column_of[d.column].upper()}",
         f"the {column_of[d.column]} repeats line {d.first_line}; the first occurrence is kept"]
        for d in report.duplicates
    )
    with open(problems_path, encoding="utf-8", newline="") as f:
        problem_rows = csv.reader(f)
        next(problem_rows)  # its header
        # both are in line order: merge them so the answer lists lines in order
        merged = heapq.merge(problem_rows, duplicates, key=lambda row: int(row[1]))
        details = CsvWriter(out, HEADER, header_row=False)
        details.write_many(merged)
        details.close()
    problems_path.unlink()
    return FlowResult(
        rows=rows,
        counts={"loaded": report.rows_loaded, "invalid": invalid},
        dataset_update=DatasetUpdate(flow.dataset, report.snapshot_id, report.rows_loaded),
        token_key=flow.tokens.key_fingerprint if flow.tokens else None,
    )


def _check(flow: Flow, column: Column, block: Block, i: int
           ) -> tuple[CheckedColumn, TokenColumn | None]:
    """One column of a block checked; a nik column refuses tokens on a flow of NIKs, and on
    a flow of tokens holds only tokens (an empty cell: a NIK its sender found invalid)."""
    readable = block.readable()
    if column.type == "nik" and flow.tokens is not None:
        values = block.columns[i]
        tokens = token_column(flow, column.name, values, readable, block.lines)
        problems = {}
        if column.required:
            empty = readable.copy()
            empty[tokens.rows] = False
            problems = {row: ValueProblem("EMPTY_VALUE", f"{column.name} is empty")
                        for row in np.flatnonzero(empty).tolist()}
        return CheckedColumn(values, problems), tokens
    result = check_column(column, block.columns[i], readable)
    if column.type == "nik" and result.problems:
        rows = np.array(sorted(result.problems), dtype=np.int64)
        refuse_tokens(flow, column.name, block.columns[i].take(pa.array(rows)),
                      readable[rows], block.lines[rows])
    return result, None


def _load_block(flow: Flow, block: Block, positions: Sequence[tuple[Column | None, int]],
                keys: Sequence[str], keys_at: Sequence[int], kept_at: Sequence[int],
                builder: SnapshotBuilder, problems: CsvWriter,
                cipher: IdentifierCipher, fuzzy: FuzzyIndexBuilder | None = None,
                names_at: tuple[int, int] = (-1, -1)) -> int:
    """Check one block's rows, report the refused ones, hand the others to the builder;
    returns how many were refused."""
    readable = block.readable()
    keeps = flow.keeps
    checked: list[CheckedColumn] = []
    tokens: dict[int, TokenColumn] = {}
    first_problem: dict[int, ValueProblem] = {}
    for column, i in positions:
        assert column is not None  # the policy admitted every column
        result, in_tokens = _check(flow, column, block, i)
        if in_tokens is not None:
            tokens[i] = in_tokens
        checked.append(result)
        for row, problem in result.problems.items():
            # the first column in the file's order that fails names the row's problem
            first_problem.setdefault(row, problem)
    refused = sorted({*block.problems, *first_problem})
    for row in refused:
        line = str(int(block.lines[row]))
        found = block.problems.get(row)
        if found is not None:
            problems.write(["invalid", line, found.code, found.message])
        else:
            problems.write(["invalid", line, first_problem[row].code, first_problem[row].message])
    good = readable.copy()
    good[refused] = False
    rows = np.flatnonzero(good)
    keyed: dict[str, tuple[U64Pairs, np.ndarray]] = {}
    for k, at in zip(keys, keys_at):
        values = np.zeros((len(rows), 2), dtype=np.uint64)
        present = np.zeros(len(rows), dtype=np.bool_)
        if at >= 0:
            canonical = checked[at].values
            offsets, _ = string_view(canonical)
            lengths = np.diff(offsets)[rows]
            present = lengths > 0
            if at in tokens:  # a column of tokens, decoded by its check
                where = np.full(block.rows, -1, dtype=np.int64)
                where[tokens[at].rows] = np.arange(len(tokens[at].rows))
                mine = np.flatnonzero(present)
                values[mine] = cipher.tokens(k, tokens[at].digests[where[rows[mine]]])
                keyed[k] = (values, present)
                continue
            widths = lengths[present]
            if len(widths) == len(rows) and len(widths) and widths.min() == widths.max():
                # every row has the identifier, all of one width (nearly always): keyed
                # in one call, without picking rows by width
                values = cipher.digits(k, fixed_width(canonical, rows, int(widths[0])))
            else:
                for width in np.unique(widths).tolist():
                    mine = np.flatnonzero(lengths == width)
                    values[mine] = cipher.digits(k, fixed_width(canonical, rows[mine],
                                                                int(width)))
        keyed[k] = (values, present)
    kept = {name: checked[at].values if at >= 0 else None for name, at in zip(keeps, kept_at)}
    builder.add_block(block.lines[rows], keyed, kept, select=rows)
    if fuzzy is not None:
        nama_at, dob_at = names_at
        take = pa.array(rows)
        fuzzy.add_many(block.lines[rows].tolist(), checked[nama_at].values.take(take).to_pylist(),
                       checked[dob_at].values.take(take).to_pylist())
    return len(refused)
