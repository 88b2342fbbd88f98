"""``reference-load`` flows (asn-register, kpm-register): a snapshot that replaces the previous one.

Every row is checked against the flow's column types; invalid rows and
repeated NIKs or NIPs are reported by line number (the first occurrence is
kept) and the valid rows become a new snapshot, holding the identifiers only
as keyed hashes and, of the other columns, only those the policy ``keeps``. The snapshot becomes current
only when the batch's result is committed, so a load that fails halfway
leaves the previous snapshot in force.

The answer is a CSV ``record,line,code,detail``: ``summary`` rows first
(ROWS_READ, ROWS_LOADED, ROWS_INVALID, SNAPSHOT), then one ``invalid`` row per
refused line.
"""

from __future__ import annotations

import csv
import heapq
import os
from typing import IO

from exchanged.csvio import CsvReader, CsvWriter
from exchanged.errors import Rejected
from exchanged.flows.base import (
    DatasetUpdate,
    FlowContext,
    FlowResult,
    ValueProblem,
    check_value,
    too_many_rows,
)
from exchanged.policy.model import IDENTIFIER_TYPES
from exchanged.reasons import reason

HEADER = ("record", "line", "code", "detail")


def register_load(reader: CsvReader, out: IO[bytes], ctx: FlowContext) -> FlowResult:
    flow = ctx.flow
    assert flow.dataset is not None
    positions = [(flow.column(name), i) for i, name in enumerate(reader.header)]
    keys = tuple(c.name for c in flow.columns if c.type in IDENTIFIER_TYPES)
    unique = tuple(c.name for c in flow.columns if c.type in ("nik", "nip"))
    keys_at = [reader.header.index(k) if k in reader.header else -1 for k in keys]
    kept_at = [reader.header.index(n) if n in reader.header else -1 for n in flow.keeps]
    builder = ctx.references.store(flow.dataset).new_snapshot(
        ctx.new_snapshot_id, keys=keys, unique=unique, values=flow.keeps)
    problems_path = ctx.work / "problems.csv"
    fd = os.open(problems_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    invalid = 0
    rows = 0
    try:
        with os.fdopen(fd, "wb") as problems_file:
            problems = CsvWriter(problems_file, HEADER)
            for record in reader:
                rows += 1
                if flow.max_rows is not None and rows > flow.max_rows:
                    raise too_many_rows(flow)
                if record.fields is None:
                    assert record.problem is not None
                    problems.write(["invalid", str(record.line), record.problem.code,
                                    record.problem.message])
                    invalid += 1
                    continue
                values: list[str] = []
                problem: ValueProblem | None = None
                for column, i in positions:
                    assert column is not None  # the policy admitted every column
                    checked = check_value(column, record.fields[i])
                    if isinstance(checked, ValueProblem):
                        problem = checked
                        break
                    values.append(checked)
                if problem is not None:
                    problems.write(["invalid", str(record.line), problem.code, problem.message])
                    invalid += 1
                    continue
                builder.add(
                    record.line,
                    [values[i] if i >= 0 else "" for i in keys_at],
                    [values[i] if i >= 0 else "" for i in kept_at],
                )
            report = builder.finish()
            invalid += len(report.duplicates)
            problems.close()
    except BaseException:
        builder.abort()
        raise
    if rows == 0:
        builder.abort()
        raise Rejected(reason("NO_ROWS"))
    if report.rows_loaded == 0:
        builder.abort()
        raise Rejected(reason("NO_VALID_ROWS"))
    writer = CsvWriter(out, HEADER)
    writer.write(["summary", "", "ROWS_READ", str(rows)])
    writer.write(["summary", "", "ROWS_LOADED", str(report.rows_loaded)])
    writer.write(["summary", "", "ROWS_INVALID", str(invalid)])
    writer.write(["summary", "", "SNAPSHOT", report.snapshot_id])
    writer.close()
    duplicates = (
        ["invalid", str(d.line), f"DUPLICATE_{d.column.upper()}",
         f"the {d.column} repeats line {d.first_line}; the first occurrence is kept"]
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
    )
