"""``nik-lookup`` flows (kpm-verification): is each NIK in the reference register?

One answer row per input row, in the same order: the input's ``ref`` (if the
batch has that column), the ``nik``, a ``status`` and only the register fields
the policy discloses. A row whose NIK is not structurally valid, or that
cannot be read at all, is answered ``TIDAK_VALID`` and the batch goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from exchanged.csvio import CsvReader, CsvWriter, Record
from exchanged.errors import Rejected
from exchanged.flows.base import FlowContext, FlowResult
from exchanged.ids import nik as nik_id
from exchanged.reasons import reason

ASN = "ASN"
NOT_FOUND = "TIDAK_DITEMUKAN"
INVALID = "TIDAK_VALID"
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
    header = (["ref"] if has_ref else []) + ["nik", "status", *disclosed]
    writer = CsvWriter(out, header)
    counts = {ASN: 0, NOT_FOUND: 0, INVALID: 0}
    blank = ("",) * len(disclosed)
    rows = 0
    try:
        for part in chunks(reader, CHUNK):
            rows += len(part)
            if flow.max_rows is not None and rows > flow.max_rows:
                raise Rejected(reason("TOO_MANY_ROWS", limit=flow.max_rows))
            valid: list[str | None] = []
            for record in part:
                value = None
                if record.fields is not None:
                    try:
                        value = nik_id.validate(record.fields[nik_at])
                    except ValueError:
                        value = None
                valid.append(value)
            found = snapshot.lookup_niks({v for v in valid if v is not None}, disclosed)
            for record, value in zip(part, valid, strict=True):
                ref = []
                if has_ref:
                    ref = [record.fields[ref_at].strip() if record.fields is not None else ""]
                if value is None:
                    raw = record.fields[nik_at].strip() if record.fields is not None else ""
                    writer.write([*ref, raw, INVALID, *blank])
                    counts[INVALID] += 1
                elif value in found:
                    writer.write([*ref, value, ASN, *found[value]])
                    counts[ASN] += 1
                else:
                    writer.write([*ref, value, NOT_FOUND, *blank])
                    counts[NOT_FOUND] += 1
    finally:
        writer.close()
        snapshot.close()
    return FlowResult(rows=rows, counts=counts, reference_snapshot=snapshot.snapshot_id)
