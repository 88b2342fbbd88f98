"""Flows as an agreement declares them: read, checked, and checked against each other.

What every flow must declare is checked here: its name, its purpose and
parties, its columns, answer, disclosure, comparisons and limits. What a flow
of one kind must declare besides (the dataset a load loads, the column a
lookup matches by, the statuses it answers with) is its kind's own check
(:meth:`exchanged.flows.kind.FlowKind.check`), found in the registry
:data:`exchanged.flows.KINDS`; this module names no kind.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from exchanged.flows import KINDS, FlowKind
from exchanged.flows.model import (
    COLUMN_TYPES,
    IDENTIFIER_TYPES,
    Answer,
    Column,
    ComparisonBound,
    Flow,
    Fuzzy,
    Tokens,
)
from exchanged.policy.model import Confidentiality
from exchanged.policy.schema import Path_, Reader, Source

FLOW_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")
COLUMN_RE = re.compile(r"[a-z_][a-z0-9_]{0,63}")
#: every agency's outbox has these folders for the exchange's own documents
RESERVED_FLOW_NAMES = ("ledger", "notices")
FLOW_KEYS = (
    "kind", "purpose", "clause", "sender", "recipients", "reference", "dataset", "columns",
    "keeps", "answer", "discloses", "compares", "limits", "fuzzy", "max_comparisons_per_nip",
    "tokens",
)
TOKENS_KEYS = ("key_fingerprint", "reference", "clause")
FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")
BOUND_KEYS = ("count", "days", "status", "clause")
#: the longest period a comparison bound may count over (ten years)
MAX_BOUND_DAYS = 3660
FUZZY_KEYS = ("enabled", "min_score", "status", "clause")
STATUS_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
COLUMN_KEYS = ("type", "required", "values", "max_length", "pattern")
ANSWER_KEYS = ("clause", "found", "not_found", "invalid", "differs")
DISCLOSURE_KEYS = ("clause", "fields", "never")
LIMITS_KEYS = ("clause", "max_bytes", "max_rows")


def parse_flow(src: Source, path: Path_, name: str, raw: Any, party_ids: set[str],
               purpose_ids: set[str], confidentiality: Confidentiality) -> Flow:
    """One flow of an agreement, checked as every flow is, then as its kind requires.

    The checks run in the order a reader meets the keys, and the first that
    fails refuses the file; the kind's checks come once the flow is read, its
    fuzzy fallback last (it depends on the kind allowing one).
    """
    _check_name(src, path, name)
    fr = Reader(src, path, raw, FLOW_KEYS)
    kind = _kind(src, path, fr)
    purpose = fr.text("purpose")
    if purpose not in purpose_ids:
        raise src.error(path + ("purpose",),
                        f"{purpose} is not one of the agreement's purposes "
                        f"({', '.join(sorted(purpose_ids))})")
    sender, recipients = _parties(src, path, fr, party_ids, confidentiality)
    cols_r, columns = _columns(src, path, fr)
    answer = _answer(fr)
    discloses, never, disclosure_clause = _disclosure(src, path, fr)
    compares = _compares(src, path, fr, columns)
    keeps = _keeps(src, path, fr, columns)
    limits = fr.optional_sub("limits", LIMITS_KEYS)
    reference = fr.text("reference", required=False) or None
    dataset = fr.text("dataset", required=False) or None
    bound = parse_bound(src, path, fr, kind, answer)
    flow = Flow(
        name=name, kind=kind.name, purpose=purpose, clause=fr.text("clause"), sender=sender,
        recipients=recipients, columns=columns, columns_clause=cols_r.text("clause"),
        answer=answer, discloses=discloses, never_disclose=never,
        disclosure_clause=disclosure_clause, compares=compares, reference=reference,
        dataset=dataset, keeps=keeps,
        max_bytes=limits.integer("max_bytes") if limits else None,
        max_rows=limits.integer("max_rows") if limits else None,
        limits_clause=limits.text("clause", required=False) if limits else "",
        max_comparisons_per_nip=bound, tokens=parse_tokens(src, path, fr, columns),
    )
    problem = next(iter(kind.check(flow)), None)
    if problem is not None:
        raise src.error(path + problem.path, problem.message)
    fuzzy = parse_fuzzy(src, path, fr, kind, columns, answer)
    return flow if fuzzy is None else replace(flow, fuzzy=fuzzy)


def _check_name(src: Source, path: Path_, name: str) -> None:
    if not FLOW_RE.fullmatch(name):
        raise src.error(path, "a flow name must be lower-case letters, digits and dashes")
    if name in RESERVED_FLOW_NAMES:
        raise src.error(path, f"{name} is reserved (every agency has /outbox/{name}/ for the "
                        "exchange's checkpoints and notices)")


def _kind(src: Source, path: Path_, fr: Reader) -> FlowKind:
    kind = KINDS.get(fr.text("kind"))
    if kind is None:
        raise src.error(path + ("kind",), f"must be one of {', '.join(KINDS)}")
    return kind


def _parties(src: Source, path: Path_, fr: Reader, party_ids: set[str],
             confidentiality: Confidentiality) -> tuple[str, tuple[str, ...]]:
    """The flow's sender and the recipients of its answers (by default, the sender)."""
    sender = fr.text("sender")
    if sender not in party_ids:
        raise src.error(path + ("sender",), f"{sender} is not a party to this agreement")
    recipients = fr.texts("recipients") or (sender,)
    for i, party in enumerate(recipients):
        if party not in party_ids:
            raise src.error(path + ("recipients", i), f"{party} is not a party to this agreement")
    if confidentiality.answers_only_to_requester and recipients != (sender,):
        raise src.error(path + ("recipients",),
                        f"an answer may go only to the flow's sender "
                        f"({confidentiality.answers_clause or 'confidentiality'})")
    return sender, recipients


def _columns(src: Source, path: Path_, fr: Reader) -> tuple[Reader, tuple[Column, ...]]:
    """The ``columns:`` mapping (for its clause, read last) and the columns it lists."""
    cols_r = fr.sub("columns", ("clause", "list"))
    listed = cols_r.mapping("list")
    columns = tuple(_column(src, path + ("columns", "list", str(col_name)), col_name,
                            listed[col_name])
                    for col_name in listed)
    if not any(c.required for c in columns):
        raise src.error(path + ("columns",), "at least one column must be required")
    return cols_r, columns


def _column(src: Source, cpath: Path_, col_name: Any, raw: Any) -> Column:
    if not isinstance(col_name, str) or not COLUMN_RE.fullmatch(col_name):
        raise src.error(cpath, "a column name must be lower-case letters, digits and _")
    cr = Reader(src, cpath, raw or {}, COLUMN_KEYS)
    ctype = cr.text("type", required=False, default="text")
    if ctype not in COLUMN_TYPES:
        raise src.error(cpath + ("type",), f"must be one of {', '.join(COLUMN_TYPES)}")
    values = cr.texts("values")
    if (ctype == "enum") != bool(values):
        raise src.error(cpath, "values are needed for type enum, and only for it")
    pattern = cr.text("pattern", required=False) or None
    if pattern is not None:
        if ctype != "text":
            raise src.error(cpath + ("pattern",), "a pattern is for text columns only")
        try:
            re.compile(pattern)
        except re.error:
            raise src.error(cpath + ("pattern",), "is not a valid regular expression") from None
    return Column(col_name, ctype, cr.boolean("required"), values, cr.integer("max_length"),
                  pattern)


def _answer(fr: Reader) -> Answer:
    ar = fr.optional_sub("answer", ANSWER_KEYS)
    if ar is None:
        return Answer()
    return Answer(ar.text("clause", required=False), ar.text("found", required=False),
                  ar.text("not_found", required=False), ar.text("invalid", required=False),
                  ar.text("differs", required=False))


def _disclosure(src: Source, path: Path_, fr: Reader
                ) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """The fields an answer may disclose, those it never may, and the clause."""
    dr = fr.optional_sub("discloses", DISCLOSURE_KEYS)
    if dr is None:
        return (), (), ""
    discloses, never, clause = dr.texts("fields"), dr.texts("never"), dr.text("clause")
    both = sorted(set(discloses) & set(never))
    if both:
        raise src.error(path + ("discloses",),
                        f"{', '.join(both)} is listed both as disclosed and as never disclosed")
    return discloses, never, clause


def _compares(src: Source, path: Path_, fr: Reader, columns: tuple[Column, ...]
              ) -> tuple[str, ...]:
    compares = fr.texts("compares")
    column_names = {c.name for c in columns}
    for i, col in enumerate(compares):
        if col not in column_names:
            raise src.error(path + ("compares", i), f"{col} is not one of the flow's columns")
    return compares


def _keeps(src: Source, path: Path_, fr: Reader, columns: tuple[Column, ...]
           ) -> tuple[str, ...]:
    keeps = fr.texts("keeps")
    for i, col in enumerate(keeps):
        column = next((c for c in columns if c.name == col), None)
        if column is None:
            raise src.error(path + ("keeps", i), f"{col} is not one of the flow's columns")
        if column.type in IDENTIFIER_TYPES:
            raise src.error(path + ("keeps", i),
                            f"{col} is an identifier: identifiers are kept only as keyed hashes")
    return keeps


def parse_fuzzy(src: Source, path: Path_, fr: Reader, kind: FlowKind,
                columns: tuple[Column, ...], answer: Answer) -> Fuzzy | None:
    """A flow's fuzzy fallback: ``{enabled, min_score, status, clause}``, if its kind has one."""
    zr = fr.optional_sub("fuzzy", FUZZY_KEYS)
    if zr is None:
        return None
    here = path + ("fuzzy",)
    if not kind.fuzzy_fallback:
        able = " or ".join(k.name for k in KINDS.values() if k.fuzzy_fallback)
        raise src.error(here, f"only a {able} flow can have a fuzzy fallback")
    if not zr.has("enabled"):
        raise src.error(here, "enabled is missing")
    enabled = zr.boolean("enabled")
    raw = zr.value.get("min_score")
    if raw is None:
        raise src.error(here, "min_score is missing")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw <= 1:
        raise src.error(here + ("min_score",), "must be a number above 0 and at most 1")
    status = zr.text("status")
    if not STATUS_RE.fullmatch(status):
        raise src.error(here + ("status",), "must be upper-case letters, digits and _")
    others = {answer.found, answer.not_found, answer.invalid, answer.differs} - {""}
    if status in others:
        raise src.error(here + ("status",), "must differ from the flow's other statuses")
    clause = zr.text("clause")
    types = {c.name: c.type for c in columns}
    if types.get("nama") != "text" or types.get("tanggal_lahir") != "date":
        raise src.error(here, "a fuzzy fallback needs the flow to list the columns nama "
                        "(text) and tanggal_lahir (date)")
    return Fuzzy(enabled, float(raw), status, clause)


def parse_tokens(src: Source, path: Path_, fr: Reader, columns: tuple[Column, ...]
                 ) -> Tokens | None:
    """``tokens: {key_fingerprint, reference, clause}``: the flow's ``nik`` column carries
    keyed tokens of the agencies' shared key, named by its fingerprint (docs/security.md)."""
    tr = fr.optional_sub("tokens", TOKENS_KEYS)
    if tr is None:
        return None
    here = path + ("tokens",)
    fpr = tr.text("key_fingerprint")
    if not FINGERPRINT_RE.fullmatch(fpr):
        raise src.error(here + ("key_fingerprint",), "must be the token key's fingerprint: 64 "
                        "lower-case hex digits, as 'exchanged client token-key' prints it")
    if not any(c.name == "nik" and c.type == "nik" for c in columns):
        raise src.error(here, "only a flow with a nik column (type nik) can match on tokens")
    return Tokens(fpr, tr.text("reference", required=False) or "the policy", tr.text("clause"))


def parse_bound(src: Source, path: Path_, fr: Reader, kind: FlowKind, answer: Answer
                ) -> ComparisonBound | None:
    """``max_comparisons_per_nip: {count, days, status, clause}``, if its kind has one
    (whether the kind requires it is the kind's own check)."""
    br = fr.optional_sub("max_comparisons_per_nip", BOUND_KEYS)
    if br is None:
        return None
    here = path + ("max_comparisons_per_nip",)
    if not kind.bounds_comparisons:
        able = " or ".join(k.name for k in KINDS.values() if k.bounds_comparisons)
        raise src.error(here, f"only a {able} flow compares, and can bound its comparisons")
    count = br.integer("count", required=True)
    days = br.integer("days", required=True)
    assert count is not None and days is not None
    if days > MAX_BOUND_DAYS:
        raise src.error(here + ("days",), f"must be at most {MAX_BOUND_DAYS}")
    status = br.text("status")
    if not STATUS_RE.fullmatch(status):
        raise src.error(here + ("status",), "must be upper-case letters, digits and _")
    if status in {answer.found, answer.not_found, answer.invalid, answer.differs}:
        raise src.error(here + ("status",), "must differ from the flow's other statuses")
    return ComparisonBound(count, days, status, br.text("clause"))


def check_flow_references(src: Source, flows: list[Flow]) -> None:
    """A flow that matches must name a dataset another flow loads, and disclose only its columns."""
    loaders = {f.dataset: f for f in flows if f.dataset}
    if len(loaders) != len([f for f in flows if f.dataset]):
        raise src.error(("flows",), "two flows load the same dataset")
    for f in flows:
        if f.reference is None:
            continue
        loader = loaders.get(f.reference)
        if loader is None:
            raise src.error(("flows", f.name, "reference"),
                            f"names dataset {f.reference}, which no flow of this agreement loads")
        _check_same_tokens(src, f, loader)
        for i, field_name in enumerate(f.discloses):
            if field_name not in loader.keeps:
                raise src.error(("flows", f.name, "discloses", "fields", i),
                                f"{field_name} is not kept by dataset {f.reference} "
                                f"(it keeps: {', '.join(loader.keeps) or 'nothing'})")
        for i, field_name in enumerate(f.compares):
            if field_name not in loader.keeps:
                raise src.error(("flows", f.name, "compares", i),
                                f"{field_name} is not kept by dataset {f.reference}")
        if f.fuzzy is not None:
            types = {c.name: c.type for c in loader.columns}
            if types.get("nama") != "text" or types.get("tanggal_lahir") != "date":
                raise src.error(("flows", f.name, "fuzzy"),
                                f"dataset {f.reference} has no nama (text) and tanggal_lahir "
                                "(date) to match names against")


def _check_same_tokens(src: Source, flow: Flow, loader: Flow) -> None:
    """A flow that matches by NIK must see the NIKs as its dataset's loader does: both plain,
    or both tokens of the same key (an addendum changes both at once)."""
    if not any(c.name == "nik" and c.type == "nik" for c in flow.columns):
        return  # it matches by something else (a NIP)
    mine = flow.tokens.key_fingerprint if flow.tokens else None
    theirs = loader.tokens.key_fingerprint if loader.tokens else None
    if mine != theirs:
        def said(fpr: str | None) -> str:
            return "NIKs" if fpr is None else f"tokens of key {fpr}"

        raise src.error(("flows", flow.name, "tokens"),
                        f"flow {flow.name} matches {said(mine)}, but flow {loader.name} loads "
                        f"dataset {flow.reference} as {said(theirs)}: both must match the same "
                        "way (amend both in one addendum)")
