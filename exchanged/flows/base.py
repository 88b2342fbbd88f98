"""What every flow shares: its inputs, its result, and the checks of column values.

A flow turns the rows of one opened batch into an answer. It sees a
:class:`~exchanged.csvio.CsvReader` and a binary stream to write the answer
to; it knows nothing of SFTP, OpenPGP or the spool.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Protocol

from exchanged.csvio import CsvReader
from exchanged.errors import Rejected
from exchanged.ids import nik, nip, nkk
from exchanged.ids.exceptions import ValidationError
from exchanged.matching.register import RegisterStore, Snapshot
from exchanged.policy.model import Column, Flow
from exchanged.reasons import reason

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class DatasetUpdate:
    """A new reference snapshot, to become current when the batch's result commits."""

    dataset: str
    snapshot_id: str
    rows: int


@dataclass(frozen=True)
class FlowResult:
    """What a flow reports: row counts by status (for the ledger), and any dataset change."""

    rows: int
    counts: Mapping[str, int]
    dataset_update: DatasetUpdate | None = None
    #: the reference snapshot the answer was computed against
    reference_snapshot: str | None = None


class References(Protocol):
    """Access to reference datasets, given to flows by the pipeline."""

    def store(self, dataset: str) -> RegisterStore: ...

    def current(self, dataset: str) -> Snapshot | None: ...


@dataclass(frozen=True)
class FlowContext:
    flow: Flow
    references: References
    #: a private folder for this batch's temporary files (plaintext allowed)
    work: Path
    #: an id for a snapshot this batch may create
    new_snapshot_id: str
    extra: Mapping[str, str] = field(default_factory=dict)


class FlowHandler(Protocol):
    def __call__(self, reader: CsvReader, out: IO[bytes], ctx: FlowContext) -> FlowResult: ...


@dataclass(frozen=True)
class ValueProblem:
    code: str
    message: str


def _check_identifier(
    validate: Callable[[str], str], code: str, label: str
) -> Callable[[Column, str], str | ValueProblem]:
    def check(column: Column, value: str) -> str | ValueProblem:
        try:
            return validate(value)
        except ValidationError:
            return ValueProblem(code, f"{column.name} is not a structurally valid {label}")

    return check


def _check_date(column: Column, value: str) -> str | ValueProblem:
    text = value.strip()
    if DATE_RE.fullmatch(text):
        try:
            date.fromisoformat(text)
            return text
        except ValueError:
            pass
    return ValueProblem("BAD_DATE", f"{column.name} is not a real date written YYYY-MM-DD")


def _check_text(column: Column, value: str) -> str | ValueProblem:
    text = value.strip()
    if column.max_length is not None and len(text) > column.max_length:
        return ValueProblem(
            "TOO_LONG", f"{column.name} is longer than {column.max_length} characters"
        )
    if any(ord(ch) < 32 for ch in text):
        return ValueProblem("CONTROL_CHARACTER", f"{column.name} contains control characters")
    if column.pattern is not None and not re.fullmatch(column.pattern, text):
        return ValueProblem("PATTERN_MISMATCH", f"{column.name} does not have the required form")
    return text


def _check_enum(column: Column, value: str) -> str | ValueProblem:
    text = value.strip()
    for allowed in column.values:
        if text.upper() == allowed.upper():
            return allowed
    return ValueProblem("NOT_ALLOWED_VALUE", f"{column.name} must be one of {', '.join(column.values)}")


def _check_integer(column: Column, value: str) -> str | ValueProblem:
    text = value.strip()
    if text.isascii() and text.lstrip("-").isdigit():
        return text
    return ValueProblem("NOT_A_NUMBER", f"{column.name} is not a whole number")


CHECKS: Mapping[str, Callable[[Column, str], str | ValueProblem]] = {
    "nik": _check_identifier(nik.validate, "INVALID_NIK", "NIK"),
    "nip": _check_identifier(nip.validate, "INVALID_NIP", "NIP"),
    "nkk": _check_identifier(nkk.validate, "INVALID_NKK", "NKK"),
    "date": _check_date,
    "text": _check_text,
    "enum": _check_enum,
    "integer": _check_integer,
}


def too_many_rows(flow: Flow) -> Rejected:
    """The refusal of a batch over the flow's row limit, naming the rule that refuses it."""
    return Rejected(reason("TOO_MANY_ROWS", limit=flow.max_rows),
                    details={"decision": "deny", "rules": [f"{flow.name}.rows"],
                             "clauses": [flow.limits_clause or flow.clause]})


def check_value(column: Column, value: str) -> str | ValueProblem:
    """The canonical value of a cell, or what is wrong with it (never quoting it)."""
    if not value.strip():
        if column.required:
            return ValueProblem("EMPTY_VALUE", f"{column.name} is empty")
        return ""
    return CHECKS[column.type](column, value)
