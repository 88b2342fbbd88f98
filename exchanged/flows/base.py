"""What every flow shares: its inputs, its result, and the checks of column values.

A flow turns the rows of one opened batch into an answer. It sees a
:class:`~exchanged.csvio.CsvReader` and a binary stream to write the answer
to; it knows nothing of SFTP, OpenPGP or the spool.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from exchanged.csvio import string_view
from exchanged.errors import Refused
from exchanged.flows.model import Column, Flow
from exchanged.ids import nik, nip, nkk
from exchanged.ids.exceptions import ValidationError
from exchanged.matching.register import RegisterStore, Snapshot
from exchanged.reasons import reason

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class DatasetUpdate:
    """A new reference snapshot, to become current when the batch's result commits."""

    dataset: str
    snapshot_id: str
    rows: int


@dataclass(frozen=True)
class Comparisons:
    """What a batch took of its flow's comparison bound, to be counted when its answer is
    recorded (in the same transaction), and never if it is not: the pipeline's to fill in
    from the :class:`ComparisonBudget` it gave the flow. The identifiers are only keyed
    values, never the numbers."""

    #: the day the batch counts on (its receipt, in the agreement's zone), and the bound
    day: date
    count: int
    days: int
    #: one keyed value per row compared (a NIP appears once in a batch)
    keys: tuple[str, ...]
    #: rows not compared because their NIP's bound was spent
    refused: int


@dataclass(frozen=True)
class FlowResult:
    """What a flow reports: row counts by status (for the ledger), and any dataset change."""

    rows: int
    counts: Mapping[str, int]
    dataset_update: DatasetUpdate | None = None
    #: the reference snapshot the answer was computed against
    reference_snapshot: str | None = None
    #: what the batch took of its flow's comparison bound (set by the pipeline)
    comparisons: Comparisons | None = None
    #: the fingerprint of the agencies' token key, for a flow that matched or loaded tokens
    token_key: str | None = None
    #: rows answered as invalid, by the code of their ``alasan`` (counts only, no values)
    invalid_reasons: Mapping[str, int] | None = None

    def with_comparisons(self, comparisons: Comparisons) -> FlowResult:
        return replace(self, comparisons=comparisons)


class ComparisonBudget(Protocol):
    """How often one more comparison of a NIP is allowed: the one thing a flow learns of its
    ``max_comparisons_per_nip`` bound, given to it by the pipeline (which keeps the count
    beside the ledger, keyed, and counts what the flow took when the answer is recorded)."""

    def take(self, identifiers: Sequence[str]) -> list[bool]:
        """For each identifier (valid, canonical), whether this batch may compare it once
        more; each True is one comparison taken, counted only if the answer is recorded."""
        ...


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
    #: a reference load builds the fuzzy fallback's index beside its snapshot; the
    #: pipeline asks for it only when a flow of the policy matching against the
    #: dataset has the fallback switched on (it costs a pass over names and dates)
    build_fuzzy_index: bool = False
    #: what may still be compared, for a flow with a ``max_comparisons_per_nip`` bound
    comparisons: ComparisonBudget | None = None


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
    return ValueProblem("NOT_ALLOWED_VALUE",
                        f"{column.name} must be one of {', '.join(column.values)}")


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


def too_many_rows(flow: Flow) -> Refused:
    """The refusal of a batch over the flow's row limit, naming the rule that refuses it."""
    return Refused(reason("TOO_MANY_ROWS", limit=flow.max_rows),
                    details={"decision": "deny", "rules": [f"{flow.name}.rows"],
                             "clauses": [flow.limits_clause or flow.clause]})


def check_value(column: Column, value: str) -> str | ValueProblem:
    """The canonical value of a cell, or what is wrong with it (never quoting it)."""
    if not value.strip():
        if column.required:
            return ValueProblem("EMPTY_VALUE", f"{column.name} is empty")
        return ""
    return CHECKS[column.type](column, value)


# -- whole columns at once ---------------------------------------------------------------------
#
# The checks above, over a column of a block. Numpy accepts the values that are plainly
# valid (16 ASCII digits that make a real NIK, a date written YYYY-MM-DD, short ASCII text
# without spaces around it ...), which are nearly all; every other value goes through
# check_value itself, so a column's verdicts are exactly check_value's.

Mask = npt.NDArray[np.bool_]
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)


@dataclass(frozen=True)
class CheckedColumn:
    """A column after its checks: the canonical values ("" where a row failed) and, by
    row index in the block, what was wrong."""

    values: pa.StringArray
    problems: Mapping[int, ValueProblem]


def fixed_width(values: pa.StringArray, rows: npt.NDArray[np.int64], width: int
                ) -> npt.NDArray[np.uint8]:
    """The bytes of ``values[rows]`` (each exactly ``width`` bytes) as a (rows, width) matrix."""
    offsets, data = string_view(values)
    if len(rows) == len(values) and offsets[-1] - offsets[0] == width * len(rows):
        # every value has the width (nearly always): the bytes are already a matrix
        whole: npt.NDArray[np.uint8] = data[offsets[0]:offsets[-1]].reshape(len(rows), width)
        return whole
    # each row's bytes through a sliding window over the data: one copy of width bytes a
    # row, where an index matrix of width positions a row took four times as long
    if not len(rows):
        return np.empty((0, width), dtype=np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(data, width)
    matrix: npt.NDArray[np.uint8] = windows[offsets[rows]]
    return matrix


def _pair_table() -> npt.NDArray[np.int16]:
    """Two ASCII bytes read as one little-endian 16-bit word -> their value 0..99, or -1
    if either is not a digit: a whole identifier is checked a pair of digits at a time."""
    table = np.full(1 << 16, -1, dtype=np.int16)
    for tens in range(10):
        for ones in range(10):
            table[(48 + tens) | ((48 + ones) << 8)] = tens * 10 + ones
    return table


_PAIRS = _pair_table()


def _pairs(m: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """The digit pairs of an (n, even width) byte matrix, as values 0..99 (-1: not digits)."""
    words = np.ascontiguousarray(m).view("<u2")
    # take, not _PAIRS[words]: numpy's general indexing is a third slower (mapiter)
    pairs: npt.NDArray[np.int16] = np.take(_PAIRS, words)
    return pairs


def _real_date(year: npt.NDArray[np.int32], month: npt.NDArray[np.int16],
               day: npt.NDArray[np.int16]) -> Mask:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    good_month = (month >= 1) & (month <= 12)
    days = _DAYS[np.where(good_month, month, 0)] + (leap & (month == 2))
    real: Mask = good_month & (day >= 1) & (day <= days)
    return real


#: bytes of a 64-bit word: ASCII '0', and what takes a byte of 0..9 to 0x7f at most
_ZEROS = np.uint64(0x3030303030303030)
_UP_TO_NINE = np.uint64(0x7676767676767676)
_HIGH_BITS = np.uint64(0x8080808080808080)
_ONES = np.uint64(0x0101010101010101)
#: the bytes of the first half's pairs that are not the province, regency and district
_NOT_REGION = np.uint64(0xFFFFFF00FF00FF00)
_LOW_BYTE = np.uint64(0xFF)


def _nik_dates() -> npt.NDArray[np.bool_]:
    """Whether NIK date digits are a real date, by (DD as written, MM, YY % 4): DD has 40
    added for women; YY is real in 19YY or 20YY if real in 20YY (see exchanged.ids.nik)."""
    table = np.zeros(100 * 100 * 4, dtype=np.bool_)
    for written in range(100):
        day = written - 40 if written > 40 else written
        for month in range(1, 13):
            for leap_year in range(4):
                days = _DAYS[month] + (month == 2 and leap_year == 0)
                table[(written * 100 + month) * 4 + leap_year] = 1 <= day <= days
    table.setflags(write=False)
    return table


_NIK_DATES = _nik_dates()


def nik_ok(m: npt.NDArray[np.uint8]) -> Mask:
    """Rows of 16 bytes that are valid NIKs (exactly :func:`exchanged.ids.nik.validate`).

    Eight digits at a time: each half of a row read as one 64-bit word, its bytes
    made 0..9 by one XOR and checked to be digits by one addition (a byte over 9, or
    one with its high bit set, shows a high bit), every two digits made one value 0..99
    by one multiplication, the region codes checked for a zero pair in one test, the date
    by one look-up: a third of the time of a table look-up a pair (docs/performance.md)."""
    w = np.ascontiguousarray(m).view("<u8")
    x = w ^ _ZEROS
    high = (x | (x + _UP_TO_NINE)) & _HIGH_BITS
    ok: Mask = (high[:, 0] | high[:, 1]) == 0
    pairs = x * np.uint64(10) + (x >> np.uint64(8))  # byte 2k: digits 2k, 2k+1 as 0..99
    first, second = pairs[:, 0], pairs[:, 1]
    # province, regency, district: no zero byte among them (every pair is below 0x80)
    region = first | _NOT_REGION
    ok &= ((region - _ONES) & ~region & _HIGH_BITS) == 0
    date = ((first >> np.uint64(48)) & _LOW_BYTE) * np.uint64(400) + (
        (second & _LOW_BYTE) * np.uint64(4) + ((second >> np.uint64(16)) & np.uint64(3)))
    ok &= _NIK_DATES[np.minimum(date, np.uint64(len(_NIK_DATES) - 1)).astype(np.intp)]
    ok &= (second >> np.uint64(32)) & np.uint64(0x00FF00FF) != 0  # serial
    return ok


def _digit_pairs(p: npt.NDArray[np.int16]) -> Mask:
    """Rows of :func:`_pairs` that are all digits (no -1). ``np.all(p >= 0, axis=1)`` is
    a reduction along a short axis, the slowest numpy has: four pairs' sign bits at a
    time as one 64-bit word where the row allows, else a column at a time."""
    n, k = p.shape
    if k % 4 == 0:
        words = np.ascontiguousarray(p).view(np.uint64)
        signs = np.uint64(0x8000800080008000)
        bad = words[:, 0] & signs
        for j in range(1, k // 4):
            bad |= words[:, j] & signs
        all_digits: Mask = bad == 0
        return all_digits
    ok: Mask = p[:, 0] >= 0
    for j in range(1, k):
        ok &= p[:, j] >= 0
    return ok


def _real_date_in_century(year: npt.NDArray[np.int32], yy: npt.NDArray[np.int16],
                          month: npt.NDArray[np.int16], day: npt.NDArray[np.int16]) -> Mask:
    """:func:`_real_date` for a year whose last two digits ``yy`` are at hand: the leap
    year needs no division then (year % 400 == 0 is yy == 0 and year % 16 == 0)."""
    leap = ((yy & 3) == 0) & ((yy != 0) | ((year & 15) == 0))
    good_month = (month >= 1) & (month <= 12)
    days = _DAYS[np.where(good_month, month, 0)] + (leap & (month == 2))
    real: Mask = good_month & (day >= 1) & (day <= days)
    return real


def nip_ok(m: npt.NDArray[np.uint8]) -> Mask:
    """Rows of 18 bytes that are valid NIPs (exactly :func:`exchanged.ids.nip.validate`)."""
    p = _pairs(m)
    ok = _digit_pairs(p)
    birth = p[:, 0].astype(np.int32) * 100 + p[:, 1]
    ok &= (birth >= 1900) & (birth <= 2099)
    ok &= _real_date_in_century(birth, p[:, 1], p[:, 2], p[:, 3])
    start = p[:, 4].astype(np.int32) * 100 + p[:, 5]
    ok &= (start >= birth + 15) & (start <= 2099)
    code = p[:, 6]  # CPNS month, or 21 for PPPK
    ok &= (code == 21) | ((code >= 1) & (code <= 12))
    gender = p[:, 7]  # the gender digit (1 or 2), then the serial's first digit
    ok &= (gender >= 10) & (gender <= 29)
    ok &= ((gender != 10) & (gender != 20)) | (p[:, 8] != 0)  # serial
    return ok


def _date_ok(m: npt.NDArray[np.uint8]) -> Mask:
    """Rows of 10 bytes that are dates written YYYY-MM-DD (as :func:`_check_date` says)."""
    p = _pairs(m[:, [0, 1, 2, 3, 5, 6, 8, 9]])
    ok = _digit_pairs(p)
    ok &= (m[:, 4] == 45) & (m[:, 7] == 45)
    year = p[:, 0].astype(np.int32) * 100 + p[:, 1]
    ok &= year >= 1  # date.fromisoformat refuses year 0
    ok &= _real_date_in_century(year, p[:, 1], p[:, 2], p[:, 3])
    return ok


def _rows_with_bytes_below_32(values: pa.StringArray) -> Mask:
    offsets, data = string_view(values)
    found = np.zeros(len(values), dtype=np.bool_)
    where = np.flatnonzero(data[offsets[0]:offsets[-1]] < 32) + offsets[0]
    if len(where):
        found[np.searchsorted(offsets, where, side="right") - 1] = True
    return found


def _accepted(column: Column, values: pa.StringArray, readable: Mask
              ) -> tuple[Mask, pa.StringArray]:
    """Which rows numpy can vouch for, and their canonical values (the others: anything)."""
    offsets, data = string_view(values)
    lengths = np.diff(offsets)
    accepted = np.zeros(len(values), dtype=np.bool_)
    if not column.required:
        accepted |= lengths == 0  # an empty optional cell is "" whatever the type
    fixed = {"nik": (16, nik_ok), "nip": (18, nip_ok), "date": (10, _date_ok)}
    if column.type in fixed:
        width, test = fixed[column.type]
        rows = np.flatnonzero((lengths == width) & readable)
        accepted[rows[test(fixed_width(values, rows, width))]] = True
    elif column.type == "text" and column.pattern is None and len(values):
        body = data[offsets[0]:offsets[-1]]
        # a column all ASCII (nearly always) is known from its bytes' largest value
        ascii_ = (np.ones(len(values), dtype=np.bool_) if not len(body) or body.max() < 128
                  else pc.string_is_ascii(values).to_numpy(zero_copy_only=False))
        plain = ascii_ & (lengths > 0) & ~_rows_with_bytes_below_32(values)
        if column.max_length is not None:
            plain &= lengths <= column.max_length
        first = data[np.minimum(offsets[:-1], max(len(data) - 1, 0))] if len(data) else None
        last = data[np.maximum(offsets[1:] - 1, 0)] if len(data) else None
        if first is not None and last is not None:
            plain &= (first != 32) & (last != 32)
            accepted |= plain
    elif column.type == "enum" and len(values):
        encoded = values.dictionary_encode()
        distinct = encoded.dictionary.to_pylist()
        verdicts = [check_value(column, str(v)) for v in distinct]
        good = np.array([not isinstance(v, ValueProblem) for v in verdicts], dtype=np.bool_)
        indices = encoded.indices
        accepted |= good[indices.to_numpy(zero_copy_only=False)] & (lengths > 0)
        if verdicts == distinct:  # every value already as the policy writes it
            return accepted & readable, values
        words = pa.array([v if isinstance(v, str) else "" for v in verdicts], type=pa.string())
        return accepted & readable, words.take(indices)
    return accepted & readable, values


def check_column(column: Column, values: pa.StringArray, readable: Mask) -> CheckedColumn:
    """:func:`check_value` over a column; unreadable rows are skipped (their value is "")."""
    accepted, canonical = _accepted(column, values, readable)
    rest = np.flatnonzero(~accepted & readable)
    verdicts = {i: check_value(column, str(values[i].as_py())) for i in rest.tolist()}
    problems = {i: v for i, v in verdicts.items() if isinstance(v, ValueProblem)}
    replace = ~readable
    replace[rest] = True
    if replace.any():
        words = []
        for i in np.flatnonzero(replace).tolist():
            verdict = verdicts.get(i, "")
            words.append(verdict if isinstance(verdict, str) else "")
        canonical = pc.replace_with_mask(canonical, pa.array(replace),
                                         pa.array(words, type=pa.string()))
    return CheckedColumn(canonical, problems)


def stripped(values: pa.StringArray, readable: Mask) -> pa.StringArray:
    """``value.strip()`` of every readable row ("" for the others)."""
    offsets, data = string_view(values)
    lengths = np.diff(offsets)
    odd = ~readable
    if len(data):
        first = data[np.minimum(offsets[:-1], len(data) - 1)]
        last = data[np.maximum(offsets[1:] - 1, 0)]
        # ASCII whitespace as str.strip() knows it: 9-13, 28-32
        edge = ((first <= 32) & ((first >= 28) | ((first >= 9) & (first <= 13)))) | (
            (last <= 32) & ((last >= 28) | ((last >= 9) & (last <= 13))))
        odd |= (lengths > 0) & edge
        odd |= ~pc.string_is_ascii(values).to_numpy(zero_copy_only=False)
    if not odd.any():
        return values
    rows = np.flatnonzero(odd)
    words = [str(values[i].as_py()).strip() if readable[i] else "" for i in rows.tolist()]
    result: pa.StringArray = pc.replace_with_mask(values, pa.array(odd),
                                                  pa.array(words, type=pa.string()))
    return result
