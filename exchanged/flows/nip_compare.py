"""``nip-compare`` flows (jabfung-integration): does an employee's functional position match SIASN?

Kemensos sends, per employee under its guidance, the NIP and the position
data it holds (Pasal 2 huruf b, Pasal 3 ayat (2) huruf c); each row is
matched to the reference register by NIP and answered, one answer row per
input row and in the same order, with ``ref`` (if the batch has that
column), ``nip``, ``status`` and ``berbeda``:

* the flow's ``found`` status (``SESUAI``) when every compared field the row
  carries equals the register's;
* its ``differs`` status (``BERBEDA``), with ``berbeda`` naming the fields
  that differ in the order of the policy's ``compares``
  (``jabatan;tmt_jabatan``) — never the register's values (Pasal 3 ayat (1)
  huruf d);
* its ``not_found`` status when the NIP is not in the register;
* its ``invalid`` status when the NIP is not a structurally valid NIP, when
  another value breaks its column's type (an impossible ``tmt_jabatan``, an
  empty required field, text over its length), or when the row cannot be
  read at all. The batch goes on.

Values are compared as what they mean, not as typed: text without regard to
case, accents, spaces and punctuation (``Ahli  Pertama`` is ``ahli-pertama``);
dates as dates. A field the register holds empty differs from any value
sent; an optional compared column the row leaves empty is not compared.

Rows are read in chunks, each looked up in one query, so memory does not
grow with the batch.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from datetime import date
from typing import IO, Final

from exchanged.csvio import CsvReader, CsvWriter, Record
from exchanged.errors import Refused
from exchanged.flows.base import (
    FlowContext,
    FlowResult,
    ValueProblem,
    check_value,
    too_many_rows,
)
from exchanged.flows.kind import FlowKind, FlowProblem, matching_problems
from exchanged.flows.model import Column, Flow
from exchanged.ids import nip as nip_id
from exchanged.ids.exceptions import ValidationError
from exchanged.matching.register import Snapshot
from exchanged.reasons import reason

CHUNK: Final = 5000
#: the answer's column that names the fields that differ
DIFFERS_COLUMN: Final = "berbeda"
#: how the fields that differ are joined in ``berbeda``
SEPARATOR: Final = ";"

_NOT_WORD_RE: Final = re.compile(r"[\W_]+")


def text_key(value: str) -> str:
    """What a text value says, for comparing: no case, accents, spaces or punctuation.

    >>> text_key("Pekerja Sosial Ahli  Pertama") == text_key("PEKERJA SOSIAL AHLI-PERTAMA")
    True
    >>> text_key("Dinas Sosial Kab. Bogor") == text_key(" dinas sosial kab bogor ")
    True
    >>> text_key("Ahli Muda") == text_key("Ahli Madya")
    False
    """
    decomposed = unicodedata.normalize("NFKD", value)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_WORD_RE.sub("", bare.casefold())


def same_value(column: Column, sent: str, kept: str) -> bool:
    """Does the register's ``kept`` say what the batch's (already checked) ``sent`` says?

    >>> same_value(Column("tmt_jabatan", "date"), "2020-01-01", " 2020-01-01")
    True
    >>> same_value(Column("tmt_jabatan", "date"), "2020-01-01", "")
    False
    >>> same_value(Column("jabatan"), "Pekerja Sosial", "PEKERJA  SOSIAL")
    True
    """
    if column.type == "date":
        try:
            return date.fromisoformat(kept.strip()) == date.fromisoformat(sent)
        except ValueError:
            return False
    if column.type == "integer":
        try:
            return int(kept.strip()) == int(sent)
        except ValueError:
            return False
    return bool(kept.strip()) and text_key(kept) == text_key(sent)


def _chunks(reader: CsvReader, size: int) -> Iterator[list[Record]]:
    part: list[Record] = []
    for record in reader:
        part.append(record)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part


def _checked(record: Record, nip_at: int, others: Sequence[tuple[Column, int]]
             ) -> tuple[str, list[str]] | None:
    """The row's NIP and its values (canonical), or None if the row is invalid."""
    if record.fields is None:
        return None
    try:
        nip = nip_id.validate(record.fields[nip_at])
    except ValidationError:
        return None
    values: list[str] = []
    for column, i in others:
        checked = check_value(column, record.fields[i])
        if isinstance(checked, ValueProblem):
            return None
        values.append(checked)
    return nip, values


class NipCompare(FlowKind):
    """Does each employee's data match the reference dataset's, field by field?"""

    name = "nip-compare"

    def check(self, flow: Flow) -> Iterator[FlowProblem]:
        yield from matching_problems(self, flow, "nip",
                                     ("found", "not_found", "invalid", "differs"))
        if not flow.compares:
            yield FlowProblem((), "a nip-compare flow must list the columns it compares")

    def run(self, reader: CsvReader, out: IO[bytes], ctx: FlowContext) -> FlowResult:
        return nip_compare(reader, out, ctx)


NIP_COMPARE: Final = NipCompare()


def nip_compare(reader: CsvReader, out: IO[bytes], ctx: FlowContext) -> FlowResult:
    flow = ctx.flow
    assert flow.reference is not None
    snapshot = ctx.references.current(flow.reference)
    if snapshot is None:
        raise Refused(reason("NO_REFERENCE_DATA", dataset=flow.reference))
    try:
        if "nip" not in snapshot.keys or any(f not in snapshot.columns for f in flow.compares):
            # a register loaded before it kept the compared fields cannot answer:
            # BKN's next upload brings them (saying SESUAI or BERBEDA without
            # them would be a guess)
            raise Refused(reason("NO_REFERENCE_DATA", dataset=flow.reference))
        return _compare(reader, out, ctx, snapshot)
    finally:
        snapshot.close()


def _compare(reader: CsvReader, out: IO[bytes], ctx: FlowContext, snapshot: Snapshot
             ) -> FlowResult:
    flow = ctx.flow
    header = reader.header
    has_ref = "ref" in header
    ref_at = header.index("ref") if has_ref else -1
    nip_at = header.index("nip")
    others = [(column, i) for i, name in enumerate(header)
              if name != "nip" and (column := flow.column(name)) is not None]
    position = {column.name: n for n, (column, _) in enumerate(others)}
    # the compared fields the batch carries, in the policy's order
    compared = [(name, column, position[name]) for name in flow.compares
                if (column := flow.column(name)) is not None and name in position]
    fields = tuple(name for name, _, _ in compared)
    answer = flow.answer
    counts = {answer.found: 0, answer.differs: 0, answer.not_found: 0, answer.invalid: 0}
    writer = CsvWriter(out, (["ref"] if has_ref else []) + ["nip", "status", DIFFERS_COLUMN])
    rows = 0
    try:
        for part in _chunks(reader, CHUNK):
            rows += len(part)
            if flow.max_rows is not None and rows > flow.max_rows:
                raise too_many_rows(flow)
            checked = [_checked(record, nip_at, others) for record in part]
            found = snapshot.lookup("nip", {c[0] for c in checked if c is not None}, fields)
            for record, row in zip(part, checked, strict=True):
                ref = []
                if has_ref:
                    ref = [record.fields[ref_at].strip() if record.fields is not None else ""]
                if row is None:
                    raw = record.fields[nip_at].strip() if record.fields is not None else ""
                    writer.write([*ref, raw, answer.invalid, ""])
                    counts[answer.invalid] += 1
                    continue
                nip, values = row
                kept = found.get(nip)
                if kept is None:
                    writer.write([*ref, nip, answer.not_found, ""])
                    counts[answer.not_found] += 1
                    continue
                differ = [name for (name, column, at), register_value
                          in zip(compared, kept, strict=True)
                          if values[at] and not same_value(column, values[at], register_value)]
                status = answer.differs if differ else answer.found
                writer.write([*ref, nip, status, SEPARATOR.join(differ)])
                counts[status] += 1
    finally:
        writer.close()
    return FlowResult(rows=rows, counts=counts, reference_snapshot=snapshot.snapshot_id)
