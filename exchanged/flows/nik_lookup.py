"""``nik-lookup`` flows (kpm-verification, kpm-status): is each NIK in the reference data?

One answer row per input row, in the same order: the input's ``ref`` (if the
batch has that column), the ``nik``, a ``status`` and only the reference fields
the policy discloses. The statuses are the policy's (``ASN`` /
``TIDAK_DITEMUKAN`` / ``TIDAK_VALID`` for kpm-verification). A row whose NIK
is not structurally valid, whose other columns break their types (a ``ref``
over its length, a ``tanggal_lahir`` that is no date), or that cannot be read
at all, is answered with the ``invalid`` status and the batch goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from exchanged.csvio import CsvReader, CsvWriter, Record
from exchanged.errors import Rejected
from exchanged.flows.base import (
    FlowContext,
    FlowResult,
    ValueProblem,
    check_value,
    too_many_rows,
)
from exchanged.ids import nik as nik_id
from exchanged.reasons import reason

CHUNK = 5000


def chunks(reader: CsvReader, size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in reader:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def nik_lookup(reader: CsvReader, out: IO[bytes], ctx: FlowContext) -> FlowResult:
    flow = ctx.flow
    assert flow.reference is not None
    snapshot = ctx.references.current(flow.reference)
    if snapshot is None:
        raise Rejected(reason("NO_REFERENCE_DATA", dataset=flow.reference))
    disclosed = tuple(f for f in flow.discloses if f in snapshot.columns)
    has_ref = "ref" in reader.header
    ref_at = reader.header.index("ref") if has_ref else -1
    nik_at = reader.header.index("nik")
    # the other columns are checked against their types too: a row that breaks one is
    # answered as invalid, like a row with an invalid NIK
    others = [(column, i) for i, name in enumerate(reader.header)
              if name != "nik" and (column := flow.column(name)) is not None]
    header = (["ref"] if has_ref else []) + ["nik", "status", *disclosed]
    writer = CsvWriter(out, header)
    found_status, not_found, invalid = flow.answer.found, flow.answer.not_found, flow.answer.invalid
    counts = {found_status: 0, not_found: 0, invalid: 0}
    blank = ("",) * len(disclosed)
    rows = 0
    try:
        for part in chunks(reader, CHUNK):
            rows += len(part)
            if flow.max_rows is not None and rows > flow.max_rows:
                raise too_many_rows(flow)
            valid: list[str | None] = []
            for record in part:
                value = None
                if record.fields is not None and all(
                    not isinstance(check_value(column, record.fields[i]), ValueProblem)
                    for column, i in others
                ):
                    try:
                        value = nik_id.validate(record.fields[nik_at])
                    except ValueError:
                        value = None
                valid.append(value)
            found = snapshot.lookup("nik", {v for v in valid if v is not None}, disclosed)
            for record, value in zip(part, valid, strict=True):
                ref = []
                if has_ref:
                    ref = [record.fields[ref_at].strip() if record.fields is not None else ""]
                if value is None:
                    raw = record.fields[nik_at].strip() if record.fields is not None else ""
                    writer.write([*ref, raw, invalid, *blank])
                    counts[invalid] += 1
                elif value in found:
                    writer.write([*ref, value, found_status, *found[value]])
                    counts[found_status] += 1
                else:
                    writer.write([*ref, value, not_found, *blank])
                    counts[not_found] += 1
    finally:
        writer.close()
        snapshot.close()
    return FlowResult(rows=rows, counts=counts, reference_snapshot=snapshot.snapshot_id)
