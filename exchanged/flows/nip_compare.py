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
  read at all. The batch goes on;
* the status of its ``max_comparisons_per_nip`` bound (``TIDAK_DIPERIKSA``),
  not compared, when the agency has had the NIP compared as often as the bound
  allows within its period: the flow asks the budget the pipeline gives it
  (:class:`~exchanged.flows.base.ComparisonBudget`), and knows nothing else of
  the count.

A batch that carries one NIP on two lines is refused whole (``REPEATED_NIP``,
naming the lines), and nothing of it is compared or counted: one NIP on 128
lines, each with another ``tmt_jabatan``, would otherwise read SIASN's value
off the answer in a single batch. Refusing the batch rather than answering
the repeats as invalid says plainly that the batch is wrong (one employee has
one position) and leaves no choice of which line gets compared.

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
from dataclasses import dataclass
from datetime import date
from typing import IO, Final

import numpy as np
import numpy.typing as npt

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
#: how many repeated lines a REPEATED_NIP refusal names
SHOWN_REPEATS: Final = 20

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


@dataclass(frozen=True)
class _Layout:
    """Where a batch's columns are, and which compared fields it carries (policy order)."""

    ref_at: int  # -1: the batch has no ref column
    nip_at: int
    others: tuple[tuple[Column, int], ...]
    #: (name, column, index into a row's checked values)
    compared: tuple[tuple[str, Column, int], ...]

    @classmethod
    def of(cls, header: Sequence[str], flow: Flow) -> _Layout:
        others = tuple((column, i) for i, name in enumerate(header)
                       if name != "nip" and (column := flow.column(name)) is not None)
        position = {column.name: n for n, (column, _) in enumerate(others)}
        compared = tuple((name, column, position[name]) for name in flow.compares
                         if (column := flow.column(name)) is not None and name in position)
        return cls(header.index("ref") if "ref" in header else -1, header.index("nip"),
                   others, compared)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.compared)

    def ref(self, record: Record) -> list[str]:
        """The answer's ref cell (none if the batch has no ref column)."""
        if self.ref_at < 0:
            return []
        return [record.fields[self.ref_at].strip() if record.fields is not None else ""]


@dataclass(frozen=True)
class _Checked:
    """A row's NIP (canonical; None if not structurally valid) and its values (canonical;
    None if the row is invalid)."""

    nip: str | None
    values: tuple[str, ...] | None


def _checked(record: Record, layout: _Layout) -> _Checked:
    if record.fields is None:
        return _Checked(None, None)
    try:
        nip = nip_id.validate(record.fields[layout.nip_at])
    except ValidationError:
        return _Checked(None, None)
    values: list[str] = []
    for column, i in layout.others:
        checked = check_value(column, record.fields[i])
        if isinstance(checked, ValueProblem):
            return _Checked(nip, None)
        values.append(checked)
    return _Checked(nip, tuple(values))


class _Repeats:
    """The structurally valid NIPs of a batch and their lines, to find any NIP sent twice.

    Kept as numbers (8 bytes each, and the line): a batch of a million rows costs 16 MB,
    checked once at the end by sorting."""

    def __init__(self) -> None:
        self._nips: list[npt.NDArray[np.uint64]] = []
        self._lines: list[npt.NDArray[np.int64]] = []

    def add(self, part: Sequence[Record], checked: Sequence[_Checked]) -> None:
        pairs = [(int(c.nip), r.line) for r, c in zip(part, checked, strict=True)
                 if c.nip is not None]
        self._nips.append(np.array([n for n, _ in pairs], dtype=np.uint64))
        self._lines.append(np.array([line for _, line in pairs], dtype=np.int64))

    def repeated(self) -> list[tuple[int, int]]:
        """(line, line of the NIP's first appearance) of every line that repeats a NIP."""
        if not self._nips:
            return []
        nips, lines = np.concatenate(self._nips), np.concatenate(self._lines)
        order = np.argsort(nips, kind="stable")  # equal NIPs keep their order: first line first
        ordered = nips[order]
        same = np.zeros(len(ordered), dtype=np.bool_)
        same[1:] = ordered[1:] == ordered[:-1]
        if not same.any():
            return []
        first = np.maximum.accumulate(np.where(same, 0, np.arange(len(ordered))))
        at = np.flatnonzero(same)
        return sorted(zip(lines[order[at]].tolist(), lines[order[first[at]]].tolist(),
                          strict=True))


def refuse_repeats(flow: Flow, repeats: Sequence[tuple[int, int]]) -> Refused:
    """The refusal of a batch that sends a NIP twice: its lines, never its NIPs."""
    shown = ", ".join(f"{line} ({first})" for line, first in repeats[:SHOWN_REPEATS])
    if len(repeats) > SHOWN_REPEATS:
        shown += ", ..."
    bound = flow.max_comparisons_per_nip
    clause = bound.clause if bound is not None else flow.clause
    return Refused(reason("REPEATED_NIP", count=len(repeats), lines=shown, flow=flow.name,
                          clause=clause))


class NipCompare(FlowKind):
    """Does each employee's data match the reference dataset's, field by field?"""

    name = "nip-compare"
    bounds_comparisons = True

    def check(self, flow: Flow) -> Iterator[FlowProblem]:
        yield from matching_problems(self, flow, "nip",
                                     ("found", "not_found", "invalid", "differs"))
        if not flow.compares:
            yield FlowProblem((), "a nip-compare flow must list the columns it compares")
        if flow.max_comparisons_per_nip is None:
            # unbounded, the flow is an oracle of the register's values (docs/security.md)
            yield FlowProblem((), "a nip-compare flow must bound how often one NIP is "
                              "compared (max_comparisons_per_nip: {count, days, status, "
                              "clause})")

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
    layout = _Layout.of(reader.header, flow)
    answer, bound = flow.answer, flow.max_comparisons_per_nip
    if bound is not None and ctx.comparisons is None:
        # the pipeline gives every bounded flow its budget: never compare unbounded
        raise RuntimeError("a bounded nip-compare flow was given no comparison budget")
    statuses = [answer.found, answer.differs, answer.not_found, answer.invalid]
    counts = dict.fromkeys(statuses + ([bound.status] if bound is not None else []), 0)
    writer = CsvWriter(out, (["ref"] if layout.ref_at >= 0 else []) + ["nip", "status",
                                                                        DIFFERS_COLUMN])
    repeats = _Repeats()
    rows = 0
    try:
        for part in _chunks(reader, CHUNK):
            rows += len(part)
            if flow.max_rows is not None and rows > flow.max_rows:
                raise too_many_rows(flow)
            checked = [_checked(record, layout) for record in part]
            repeats.add(part, checked)
            for cells, status in _answered(part, checked, layout, ctx, snapshot):
                writer.write(cells)
                counts[status] += 1
    finally:
        writer.close()
    repeated = repeats.repeated()
    if repeated:
        # the answer written so far is discarded: nothing of this batch is disclosed
        raise refuse_repeats(flow, repeated)
    return FlowResult(rows=rows, counts=counts, reference_snapshot=snapshot.snapshot_id)


def _answered(part: Sequence[Record], checked: Sequence[_Checked], layout: _Layout,
              ctx: FlowContext, snapshot: Snapshot) -> Iterator[tuple[list[str], str]]:
    """The answer rows of one chunk, with their statuses: one lookup, one budget request."""
    answer, bound = ctx.flow.answer, ctx.flow.max_comparisons_per_nip
    comparable = [c.nip for c in checked if c.nip is not None and c.values is not None]
    found = snapshot.lookup("nip", comparable, layout.fields)
    wanted = [nip for nip in comparable if nip in found]
    allowed = (dict(zip(wanted, ctx.comparisons.take(wanted), strict=True))
               if ctx.comparisons is not None else {})
    for record, row in zip(part, checked, strict=True):
        ref = layout.ref(record)
        if row.nip is None or row.values is None:
            raw = record.fields[layout.nip_at].strip() if record.fields is not None else ""
            yield [*ref, raw, answer.invalid, ""], answer.invalid
            continue
        kept = found.get(row.nip)
        if kept is None:
            yield [*ref, row.nip, answer.not_found, ""], answer.not_found
        elif bound is not None and not allowed.get(row.nip, False):
            yield [*ref, row.nip, bound.status, ""], bound.status
        else:
            values = row.values
            differ = [name for (name, column, at), register_value
                      in zip(layout.compared, kept, strict=True)
                      if values[at] and not same_value(column, values[at], register_value)]
            status = answer.differs if differ else answer.found
            yield [*ref, row.nip, status, SEPARATOR.join(differ)], status
