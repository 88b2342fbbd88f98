"""``nik-lookup`` flows (kpm-verification, kpm-status): is each NIK in the reference data?

One answer row per input row, in the same order: the input's ``ref`` (if the
batch has that column), the ``nik``, a ``status`` and only the reference fields
the policy discloses. The statuses are the policy's (``ASN`` /
``TIDAK_DITEMUKAN`` / ``TIDAK_VALID`` for kpm-verification). A row whose NIK
is not structurally valid, whose other columns break their types (a ``ref``
over its length, a ``tanggal_lahir`` that is no date), or that cannot be read
at all, is answered with the ``invalid`` status and the batch goes on.

The rows are handled a block at a time (some hundred thousand), as columns:
numpy checks the NIKs and matches their keyed values against the snapshot's
sorted index, Arrow assembles the answer's lines. Memory is one block's,
whatever the batch size (docs/performance.md).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from exchanged.csvio import (
    Block,
    BlocksBehind,
    CsvReader,
    CsvWriter,
    csv_cells,
    neutralise,
    sparse_cells,
    string_view,
    write_columns,
)
from exchanged.errors import Refused
from exchanged.flows.base import (
    FlowContext,
    FlowResult,
    check_column,
    fixed_width,
    nik_ok,
    stripped,
    too_many_rows,
)
from exchanged.flows.kind import FlowKind, FlowProblem, matching_problems
from exchanged.flows.model import Flow
from exchanged.flows.tokens import refuse_tokens, token_column
from exchanged.ids import nik as nik_id
from exchanged.matching.fuzzy import FuzzyFallback, FuzzyIndexMissing, shown_score
from exchanged.matching.register import LegacySnapshot, Snapshot, token_key
from exchanged.reasons import reason

#: blocks parsed ahead of the one being checked (each some megabytes)
BLOCKS_AHEAD = 2
#: blocks between two hand-backs of freed memory (see CsvReader.blocks)
TRIM_EVERY = 8

FOUND, NOT_FOUND, INVALID, POSSIBLE = 0, 1, 2, 3


@dataclass(frozen=True)
class Matched:
    """A block's NIKs matched: their answer cells, each row's status, the disclosed fields'
    cells, and, by row, what is wrong with each NIK that is not valid (its ``alasan``)."""

    cells: pa.StringArray
    status: npt.NDArray[np.int64]
    disclosed: list[pa.Array]
    problems: Mapping[int, str]


class NikLookup(FlowKind):
    """Is each NIK in the reference dataset? The only kind with a fuzzy fallback."""

    name = "nik-lookup"
    fuzzy_fallback = True

    def check(self, flow: Flow) -> Iterator[FlowProblem]:
        return matching_problems(self, flow, "nik", ("found", "not_found", "invalid"))

    def run(self, reader: CsvReader, out: IO[bytes], ctx: FlowContext) -> FlowResult:
        return nik_lookup(reader, out, ctx)


NIK_LOOKUP: Final = NikLookup()


def nik_lookup(reader: CsvReader, out: IO[bytes], ctx: FlowContext) -> FlowResult:
    flow = ctx.flow
    assert flow.reference is not None
    snapshot = ctx.references.current(flow.reference)
    if snapshot is None:
        raise Refused(reason("NO_REFERENCE_DATA", dataset=flow.reference))
    key = _index_to_search(flow, snapshot)
    disclosed = tuple(f for f in flow.discloses if f in snapshot.columns)
    fuzzy = flow.fuzzy if flow.fuzzy is not None and flow.fuzzy.enabled else None
    fallback: FuzzyFallback | None = None
    if fuzzy is not None:
        store = ctx.references.store(flow.reference)
        try:
            fallback = FuzzyFallback.open(store.directory, store.secret, snapshot.snapshot_id,
                                          fuzzy.min_score)
        except FuzzyIndexMissing:
            # loaded before the fallback was switched on: BKN's next upload builds it
            snapshot.close()
            raise Refused(reason("NO_REFERENCE_DATA", dataset=flow.reference)) from None
    names_at = (reader.header.index("nama") if "nama" in reader.header else -1,
                reader.header.index("tanggal_lahir") if "tanggal_lahir" in reader.header else -1)
    has_ref = "ref" in reader.header
    ref_at = reader.header.index("ref") if has_ref else -1
    nik_at = reader.header.index("nik")
    # the other columns are checked against their types too: a row that breaks one is
    # answered as invalid, like a row with an invalid NIK
    others = [(column, i) for i, name in enumerate(reader.header)
              if name != "nik" and (column := flow.column(name)) is not None]
    header = (["ref"] if has_ref else []) + ["nik", "status", *disclosed]
    if fuzzy is not None:
        header.append("skor")
    # an addition to the contract (v1): the last column, so that scripts reading the columns
    # before it, by name or by position, read them as before
    header.append("alasan")
    head = CsvWriter(out, header)
    head.close()
    statuses = csv_cells(pa.array([flow.answer.found, flow.answer.not_found,
                                   flow.answer.invalid, fuzzy.status if fuzzy else ""],
                                  type=pa.string()))
    # each disclosed field's distinct values as CSV cells, made once for the whole batch
    dictionary_cells: dict[str, pa.StringArray] = {}
    tallies = np.zeros(4, dtype=np.int64)
    why_invalid: Counter[str] = Counter()
    rows = 0
    # each block's answer rows are made and written on a thread of their own
    behind = BlocksBehind()
    try:
        for block in reader.blocks(ahead=BLOCKS_AHEAD, trim_every=TRIM_EVERY):
            rows += block.rows
            if flow.max_rows is not None and rows > flow.max_rows:
                raise too_many_rows(flow)
            readable = block.readable()
            ok = readable.copy()
            broken: dict[int, str] = {}
            for column, i in others:
                problems = check_column(column, block.columns[i], readable).problems
                if problems:
                    ok[list(problems)] = False
                    for row, problem in problems.items():
                        broken.setdefault(row, f"{column.name}:{problem.code}")
            if flow.tokens is not None:
                matched = _match_tokens(flow, block.columns[nik_at], block.lines, readable,
                                        ok, snapshot, disclosed, key)
            else:
                _refuse_tokens(flow, block.columns[nik_at], readable, block.lines)
                matched = _match(block.columns[nik_at], readable, ok, snapshot, disclosed,
                                 dictionary_cells)
            status = matched.status
            scores: list[str] | None = None
            if fallback is not None:
                scores = _fallback(fallback, block.columns, names_at, status)
            tallies += np.bincount(status, minlength=4)
            alasan = _reasons(block, status, matched.problems, broken)
            why_invalid.update(code for code in alasan.values() if code)
            behind.submit(functools.partial(
                _answer_rows, out, block.columns[ref_at] if has_ref else None, readable,
                matched, statuses.take(pa.array(status)), scores, alasan))
        behind.close()
    except BaseException:
        behind.abort()
        raise
    finally:
        snapshot.close()
        if fallback is not None:
            fallback.close()
    counts = {flow.answer.found: int(tallies[FOUND]),
              flow.answer.not_found: int(tallies[NOT_FOUND]),
              flow.answer.invalid: int(tallies[INVALID])}
    if fuzzy is not None:
        counts[fuzzy.status] = int(tallies[POSSIBLE])
    return FlowResult(rows=rows, counts=counts, reference_snapshot=snapshot.snapshot_id,
                      token_key=flow.tokens.key_fingerprint if flow.tokens else None,
                      invalid_reasons=dict(sorted(why_invalid.items())))


def _answer_rows(out: IO[bytes], ref: pa.StringArray | None, readable: npt.NDArray[np.bool_],
                 matched: Matched, status_cells: pa.Array, scores: list[str] | None,
                 alasan: dict[int, str]) -> None:
    """A block's answer rows, written to ``out`` (on the flow's writing thread)."""
    cells = [csv_cells(stripped(ref, readable))] if ref is not None else []
    cells += [matched.cells, status_cells, *matched.disclosed]
    if scores is not None:
        cells.append(csv_cells(pa.array(scores, type=pa.string())))
    cells.append(sparse_cells(len(readable), alasan))
    write_columns(out, cells)


def _index_to_search(flow: Flow, snapshot: Snapshot) -> str:
    """The snapshot's index of NIKs (or of tokens of the addendum's key) the flow searches;
    refuses the batch if the dataset was loaded the other way (or with another key)."""
    want = token_key("nik", flow.tokens.key_fingerprint) if flow.tokens else "nik"
    if want in snapshot.keys and not (flow.tokens and isinstance(snapshot, LegacySnapshot)):
        return want
    snapshot.close()
    loaded = next((k for k in snapshot.keys if k.startswith("nik~token~")), "nik")

    def shown(key: str) -> str:
        return "NIK" if key == "nik" else f"token {key.rsplit('~', 1)[1][:8]}"

    assert flow.reference is not None
    raise Refused(reason("REFERENCE_NOT_TOKENIZED", dataset=flow.reference,
                         loaded=shown(loaded), wanted=shown(want)))


def _refuse_tokens(flow: Flow, values: pa.StringArray, readable: npt.NDArray[np.bool_],
                   lines: npt.NDArray[np.int64]) -> None:
    """A token on a flow of NIKs refuses the batch; only cells that are not 16 bytes long
    (no valid NIK's length, nearly none of a real batch) are looked at."""
    offsets, _ = string_view(values)
    odd = np.flatnonzero(np.diff(offsets) != 16)
    if len(odd):
        take = pa.array(odd)
        refuse_tokens(flow, "nik", values.take(take), readable[odd], lines[odd])


def _match_tokens(flow: Flow, values: pa.StringArray, lines: npt.NDArray[np.int64],
                  readable: npt.NDArray[np.bool_], ok: npt.NDArray[np.bool_], snapshot: Snapshot,
                  disclosed: tuple[str, ...], key: str) -> Matched:
    """:func:`_match` on a flow of tokens: the answer carries each row's token back, and an
    empty cell (a NIK its sender found invalid) or a row failing another column is invalid."""
    n = len(values)
    tokens = token_column(flow, "nik", values, readable, lines)
    at = np.full(n, -1, dtype=np.int64)
    at[tokens.rows] = np.arange(len(tokens.rows))
    valid = ok & (at >= 0)
    status = np.where(valid, NOT_FOUND, INVALID).astype(np.int64)
    rows = np.full(n, -1, dtype=np.int64)
    where = np.flatnonzero(valid)
    if len(where):
        rows[where] = snapshot.find(key, snapshot.cipher.tokens(key, tokens.digests[at[where]]))
    status[rows >= 0] = FOUND
    # the disclosed fields as CSV cells (see _match)
    invalid = np.flatnonzero(status == INVALID)
    raws = values.take(pa.array(invalid)).to_pylist() if len(invalid) else []
    problems = {i: code for i, raw in zip(invalid.tolist(), raws, strict=True)
                if readable[i] and (code := nik_id.problem(str(raw))) is not None}
    return Matched(csv_cells(values), status, [csv_cells(snapshot.dictionary(f)).take(
        pa.array(snapshot.codes(f, rows))) for f in disclosed], problems)


def _reasons(block: Block, status: npt.NDArray[np.int64], nik_problems: Mapping[int, str],
             broken: Mapping[int, str]) -> dict[int, str]:
    """The ``alasan`` of every invalid row, by its index in the block: a short code of why
    (a CSV problem of the line, what is wrong with its NIK, or ``column:CODE`` of another
    column), never a value; the other rows' cells are empty."""
    out: dict[int, str] = {}
    for i in np.flatnonzero(status == INVALID).tolist():
        read = block.problems.get(i)
        out[i] = read.code if read is not None else (nik_problems.get(i) or broken.get(i, ""))
    return out


def _fallback(fallback: FuzzyFallback, columns: Sequence[pa.StringArray],
              names_at: tuple[int, int], status: npt.NDArray[np.int64]) -> list[str]:
    """Not-found rows whose name and birth date closely match a register person become
    possible matches (Pasal 3 ayat (1) huruf b); returns the skor cell of every row."""
    scores = [""] * len(status)
    nama_at, dob_at = names_at
    if nama_at < 0 or dob_at < 0:
        return scores
    rows = np.flatnonzero(status == NOT_FOUND)
    if len(rows) == 0:
        return scores
    take = pa.array(rows)
    pairs = zip(columns[nama_at].take(take).to_pylist(), columns[dob_at].take(take).to_pylist(),
                strict=True)
    for row, score in zip(rows.tolist(), fallback.scores(pairs), strict=True):
        if score is not None:
            status[row] = POSSIBLE
            scores[row] = shown_score(score)
    return scores


def _match(values: pa.StringArray, readable: npt.NDArray[np.bool_], ok: npt.NDArray[np.bool_],
           snapshot: Snapshot, disclosed: tuple[str, ...],
           dictionary_cells: dict[str, pa.StringArray]) -> Matched:
    """The NIK cells of the answer, each row's status, and the disclosed fields as CSV
    cells (:func:`csv_cells`; ``dictionary_cells`` keeps each field's distinct values made
    into cells once, so a block's cells are taken from them instead of made again). A
    valid NIK is its 16 digits, a cell as it is: only the others are neutralised."""
    n = len(values)
    offsets, _ = string_view(values)
    lengths = np.diff(offsets)
    # 16 bytes: numpy decides (nik.validate would too: no whitespace to trim can leave 16)
    plain = np.flatnonzero(ok & (lengths == 16))
    digits = fixed_width(values, plain, 16)
    good = nik_ok(digits)
    valid = np.zeros(n, dtype=np.bool_)
    valid[plain[good]] = True
    # a NIK between spaces, tabs or line ends (nik.validate trims those): Arrow trims them
    # and numpy checks the cells that are then 16 bytes long
    trimmed = _trimmed(values, np.flatnonzero(ok & (lengths > 16)))
    valid[trimmed.rows] = True
    # everything else readable (about one row in a hundred): the NIK module itself
    odd = _odd_niks(values, np.flatnonzero(~valid), readable, ok & (lengths != 16))
    valid[odd.rows] = True
    # the cells that are not the cell as sent, put in place by one pass over the column
    replaced = np.concatenate((trimmed.rows, odd.replaced))
    if len(replaced):
        order = np.argsort(replaced, kind="stable")
        words = pa.concat_arrays([trimmed.values, odd.words]).take(pa.array(order))
        replace = np.zeros(n, dtype=np.bool_)
        replace[replaced] = True
        values = pc.replace_with_mask(values, pa.array(replace), words)
    status = np.where(valid, NOT_FOUND, INVALID).astype(np.int64)
    rows = np.full(n, -1, dtype=np.int64)
    if not isinstance(snapshot, LegacySnapshot):
        # every 16-byte row is keyed (a few are not digits: what they give is dropped), so
        # that the rows' keys need no copy of the valid ones
        found = snapshot.find("nik", snapshot.cipher.digits("nik", digits))
        found[~good] = -1
        rows[plain] = found
        if len(trimmed.rows):
            rows[trimmed.rows] = snapshot.find("nik", snapshot.cipher.digits("nik",
                                                                               trimmed.digits))
        if odd.canonical:
            rows[odd.rows] = snapshot.find("nik", snapshot.cipher.values("nik", odd.canonical))
        status[rows >= 0] = FOUND
        disclosed_cells: list[pa.Array] = []
        for f in disclosed:
            if f not in dictionary_cells:
                dictionary_cells[f] = csv_cells(snapshot.dictionary(f))
            disclosed_cells.append(dictionary_cells[f].take(pa.array(snapshot.codes(f, rows))))
        return Matched(values, status, disclosed_cells, odd.problems)
    # a snapshot of the first format: one query per block
    canonical = values.to_pylist()
    wanted = {str(canonical[i]) for i in np.flatnonzero(valid).tolist()}
    answers = snapshot.lookup("nik", wanted, disclosed)
    columns: list[list[str]] = [[] for _ in disclosed]
    for i, value in enumerate(canonical):
        hit = answers.get(str(value)) if valid[i] else None
        if hit is not None:
            status[i] = FOUND
        for c, column in enumerate(columns):
            column.append(hit[c] if hit is not None else "")
    return Matched(values, status, [csv_cells(pa.array(c, type=pa.string())) for c in columns],
                   odd.problems)


@dataclass(frozen=True)
class Trimmed:
    """Rows whose cell is a valid NIK once trimmed: their rows, NIKs and digit matrix."""

    rows: npt.NDArray[np.int64]
    values: pa.StringArray
    digits: npt.NDArray[np.uint8]


def _trimmed(values: pa.StringArray, rows: npt.NDArray[np.int64]) -> Trimmed:
    """Of ``rows``, those whose cell trimmed as :func:`exchanged.ids.nik.compact` trims it
    is a valid NIK."""
    cut = pc.utf8_trim(values.take(pa.array(rows)), characters=nik_id.OUTER_WHITESPACE)
    offsets, _ = string_view(cut)
    wide = np.flatnonzero(np.diff(offsets) == 16)
    digits = fixed_width(cut, wide, 16)
    good = nik_ok(digits)
    return Trimmed(rows[wide[good]], cut.take(pa.array(wide[good])), digits[good])


@dataclass(frozen=True)
class OddNiks:
    """What the NIK module said of the cells numpy could not vouch for."""

    #: rows valid after all, and their canonical NIKs
    rows: list[int]
    canonical: list[str]
    #: the rows whose answer cell is not the cell as sent, and their cells
    replaced: npt.NDArray[np.int64]
    words: pa.StringArray
    #: by row, what is wrong with each NIK that is not valid
    problems: dict[int, str]


def _odd_niks(values: pa.StringArray, rest: npt.NDArray[np.int64],
              readable: npt.NDArray[np.bool_], tried: npt.NDArray[np.bool_]) -> OddNiks:
    """The cells of ``rest`` (rows numpy did not find valid) through the NIK module, one call
    each: a cell ``tried`` may still be valid; an invalid one is answered trimmed and
    neutralised (an unreadable row with an empty cell), with its problem's code."""
    valid_rows: list[int] = []
    canonical: list[str] = []
    words: list[str] = []
    problems: dict[int, str] = {}
    raws = values.take(pa.array(rest)).to_pylist() if len(rest) else []
    for i, raw, read, attempt in zip(rest.tolist(), raws, readable[rest].tolist(),
                                     tried[rest].tolist(), strict=True):
        if not read:
            words.append("")
            continue
        problem = nik_id.problem(raw)
        if problem is None and attempt:
            valid_rows.append(i)
            canonical.append(nik_id.compact(raw))
            words.append(canonical[-1])
            continue
        if problem is not None:
            problems[i] = problem
        words.append(neutralise(raw.strip()))
    return OddNiks(valid_rows, canonical, rest, pa.array(words, type=pa.string()), problems)

