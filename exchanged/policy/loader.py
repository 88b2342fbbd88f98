"""Loading policy files: YAML in, a checked :class:`PolicySet` out, or an error with file and line.

Files are read with ``yaml.safe_load``; ``yaml.compose`` (on the safe loader)
gives the line numbers for error messages. Before either, the file's events are
checked: YAML anchors and aliases are refused (a recursive alias, or a "billion
laughs" of aliases of aliases, would make loading never end) and so is nesting
deeper than any policy needs (the composer recurses once a level). The format is checked like a
schema: every key known, every type checked, every party, purpose, column and
dataset reference resolved, every date possible and in order. The policy
set's SHA-256 covers every file's name and bytes, so that a decision can be
replayed against the exact policy of its day.

Three kinds of file live in a policies folder:

- ``<agreement>.yaml`` (``format: exchanged/agreement-v1``): an agreement as signed;
- ``<agreement>.addendum-NNN.yaml`` (``format: exchanged/addendum-v1``): a written
  change to it (extend, terminate, suspend flows, amend flows); the agreement's
  own file is never edited;
- ``tests/*.yaml`` (``format: exchanged/policy-tests-v1``): policy test cases
  (see :mod:`exchanged.policy.cases`); not part of the policy set.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from exchanged.errors import PolicyError
from exchanged.flows import KINDS, FlowKind
from exchanged.policy.model import (
    COLUMN_TYPES,
    IDENTIFIER_TYPES,
    Addendum,
    Agreement,
    Answer,
    Column,
    Confidentiality,
    Contact,
    Flow,
    Fuzzy,
    Monitoring,
    Party,
    PolicySet,
    Purpose,
    Retention,
    Validity,
)

AGREEMENT_FORMAT = "exchanged/agreement-v1"
ADDENDUM_FORMAT = "exchanged/addendum-v1"
ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
FLOW_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")
COLUMN_RE = re.compile(r"[a-z_][a-z0-9_]{0,63}")
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
RESERVED_FLOW_NAMES = ("ledger", "notices")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Source:
    """One YAML file: its data, and where each value sits."""

    name: str
    data: Any
    lines: Mapping[Path_, int]
    sha256: str

    def line(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def error(self, path: Path_, message: str) -> PolicyError:
        where = ".".join(str(p) for p in path)
        text = f"{where}: {message}" if where else message
        return PolicyError(text, self.name, self.line(path))


def _node_lines(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            _node_lines(value_node, path + (key,), out)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, path + (i,), out)


def _bad_date_line(node: yaml.Node | None) -> int | None:
    """The line of the first date scalar that is not a real date."""
    if node is None:
        return None
    if isinstance(node, yaml.ScalarNode):
        if node.tag == TIMESTAMP_TAG:
            try:
                yaml.SafeLoader("").construct_yaml_timestamp(node)
            except ValueError:
                return node.start_mark.line + 1
        return None
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            children += [k, v]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    for child in children:
        line = _bad_date_line(child)
        if line is not None:
            return line
    return None


#: deeper than any policy file needs (its deepest values are under ten levels down)
MAX_DEPTH = 64


def _check_events(name: str, text: str) -> None:
    """Refuse what ``safe_load`` would choke on, reading the parser's events only as far
    as the first one (they come one at a time, without recursion): an anchor or an alias,
    or a collection nested more than :data:`MAX_DEPTH` levels deep."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise PolicyError("uses a YAML anchor or alias (&name or *name); policy files "
                              "must write every value out in full", name, line)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise PolicyError(f"is nested more than {MAX_DEPTH} levels deep", name, line)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def parse_source(name: str, raw: bytes) -> Source:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("is not UTF-8 text", name) from None
    node: yaml.Node | None = None
    try:
        _check_events(name, text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except RecursionError:
        # not expected past _check_events; never a traceback for a policy file
        raise PolicyError(f"is nested too deeply to be read (at most {MAX_DEPTH} levels)",
                          name) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or "malformed YAML"
        raise PolicyError(
            f"is not valid YAML: {problem}", name, mark.line + 1 if mark else None
        ) from None
    except ValueError:
        # PyYAML turns YYYY-MM-DD into a date and fails on an impossible one
        raise PolicyError("holds an impossible date (YYYY-MM-DD)", name,
                          _bad_date_line(node)) from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _node_lines(node, (), lines)
    return Source(name, data, lines, hashlib.sha256(raw).hexdigest())


def read_source(path: Path) -> Source:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PolicyError(f"cannot be read ({e.strerror})", path.name) from None
    return parse_source(path.name, raw)


# -- typed access with errors that point at the line -------------------------------------------


class Reader:
    """Reads one mapping of a source, checking keys and types."""

    def __init__(self, source: Source, path: Path_, value: Any, known: tuple[str, ...]) -> None:
        if not isinstance(value, dict):
            raise source.error(path, "must be a mapping")
        self.source = source
        self.path = path
        self.value = value
        for key in value:
            if not isinstance(key, str) or key not in known:
                raise source.error(
                    path + (str(key),), f"unknown key (known here: {', '.join(known)})"
                )

    def has(self, key: str) -> bool:
        return key in self.value

    def sub(self, key: str, known: tuple[str, ...]) -> Reader:
        if key not in self.value:
            raise self.source.error(self.path, f"{key} is missing")
        return Reader(self.source, self.path + (key,), self.value[key], known)

    def optional_sub(self, key: str, known: tuple[str, ...]) -> Reader | None:
        return self.sub(key, known) if key in self.value else None

    def text(self, key: str, *, required: bool = True, default: str = "") -> str:
        if key not in self.value or self.value[key] is None:
            if required:
                raise self.source.error(self.path, f"{key} is missing")
            return default
        v = self.value[key]
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise self.source.error(self.path + (key,), "must be text")
        return str(v).strip()

    def integer(self, key: str, *, required: bool = False, default: int | None = None,
                minimum: int = 1) -> int | None:
        if key not in self.value:
            if required:
                raise self.source.error(self.path, f"{key} is missing")
            return default
        v = self.value[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.source.error(
                self.path + (key,), f"must be a whole number of at least {minimum}"
            )
        return v

    def boolean(self, key: str, default: bool = False) -> bool:
        if key not in self.value:
            return default
        v = self.value[key]
        if not isinstance(v, bool):
            raise self.source.error(self.path + (key,), "must be true or false")
        return v

    def day(self, key: str, *, required: bool = True) -> date | None:
        if key not in self.value:
            if required:
                raise self.source.error(self.path, f"{key} is missing")
            return None
        v = self.value[key]
        if isinstance(v, date):
            return v
        if isinstance(v, str):
            try:
                return date.fromisoformat(v.strip())
            except ValueError:
                pass
        raise self.source.error(self.path + (key,), "must be a real date written YYYY-MM-DD")

    def texts(self, key: str) -> tuple[str, ...]:
        if key not in self.value:
            return ()
        v = self.value[key]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.source.error(self.path + (key,), "must be a list of names")
        return tuple(x.strip() for x in v)

    def mapping(self, key: str) -> dict[str, Any]:
        v = self.value.get(key)
        if not isinstance(v, dict) or not v:
            raise self.source.error(self.path + (key,), "must be a non-empty mapping")
        return v

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(key, required=False, default=default)
        if value not in choices:
            raise self.source.error(self.path + (key,), f"must be one of {', '.join(choices)}")
        return value


# -- agreements ------------------------------------------------------------------------------------

AGREEMENT_KEYS = ("format", "agreement", "parties", "confidentiality", "retention", "monitoring",
                  "flows")
AGREEMENT_BODY_KEYS = ("id", "title", "numbers", "signed", "validity", "changes", "purposes")
PARTY_KEYS = ("role", "name", "address", "signatory", "contact")
FLOW_KEYS = (
    "kind", "purpose", "clause", "sender", "recipients", "reference", "dataset", "columns",
    "keeps", "answer", "discloses", "compares", "limits", "fuzzy",
)
FUZZY_KEYS = ("enabled", "min_score", "status", "clause")
STATUS_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
COLUMN_KEYS = ("type", "required", "values", "max_length", "pattern")
ANSWER_KEYS = ("clause", "found", "not_found", "invalid", "differs")
DISCLOSURE_KEYS = ("clause", "fields", "never")
LIMITS_KEYS = ("clause", "max_bytes", "max_rows")
CONFIDENTIALITY_KEYS = (
    "answers_only_to_requester", "answers_clause", "purpose_limitation", "purpose_clause",
    "survives_end", "survives_clause", "security_clause",
)
RETENTION_KEYS = ("clause", "plaintext", "encrypted_uploads_days", "outcomes_days",
                  "reference_snapshots", "after_end_days")
MONITORING_KEYS = (
    "evaluations_per_year", "evaluations_clause", "minutes_per_year", "minutes_clause",
    "renewal_notice_days", "renewal_clause", "force_majeure_notice_days", "force_majeure_clause",
)


def parse_agreement(src: Source) -> Agreement:
    top = Reader(src, (), src.data, AGREEMENT_KEYS)
    if top.text("format") != AGREEMENT_FORMAT:
        raise src.error(("format",), f"must be {AGREEMENT_FORMAT}")
    body = top.sub("agreement", AGREEMENT_BODY_KEYS)
    agreement_id = body.text("id")
    if not ID_RE.fullmatch(agreement_id):
        raise src.error(("agreement", "id"), "must be lower-case letters, digits and dashes")
    expected_name = f"{agreement_id}.yaml"
    if src.name != expected_name:
        raise src.error(("agreement", "id"),
                        f"the file of agreement {agreement_id} must be named {expected_name}")
    numbers_raw = body.mapping("numbers")
    numbers = tuple((str(k), str(v)) for k, v in numbers_raw.items())
    signed = body.sub("signed", ("date", "place"))
    signed_on = signed.day("date")
    assert signed_on is not None
    validity_r = body.sub("validity", ("from", "until", "clause"))
    start = validity_r.day("from")
    end = validity_r.day("until")
    assert start is not None and end is not None
    if end < start:
        raise src.error(("agreement", "validity", "until"), "is before validity.from")
    if start < signed_on:
        raise src.error(("agreement", "validity", "from"), "is before the agreement was signed")
    validity = Validity(start, end, validity_r.text("clause"))
    changes = body.optional_sub("changes", ("clause",))

    purposes: list[Purpose] = []
    for purpose_id in body.mapping("purposes"):
        path: Path_ = ("agreement", "purposes", str(purpose_id))
        if not isinstance(purpose_id, str) or not ID_RE.fullmatch(purpose_id):
            raise src.error(path, "a purpose id must be lower-case letters, digits and dashes")
        pr = Reader(src, path, src.data["agreement"]["purposes"][purpose_id], ("text", "clause"))
        purposes.append(Purpose(purpose_id, pr.text("text"), pr.text("clause")))

    parties: list[Party] = []
    for party_id in top.mapping("parties"):
        path = ("parties", str(party_id))
        if not isinstance(party_id, str) or not ID_RE.fullmatch(party_id):
            raise src.error(path, "a party id must be lower-case letters, digits and dashes")
        pr = Reader(src, path, src.data["parties"][party_id], PARTY_KEYS)
        contact = None
        cr = pr.optional_sub("contact", ("unit", "address", "phone", "email", "clause"))
        if cr is not None:
            contact = Contact(cr.text("unit"), cr.text("address", required=False),
                              cr.text("phone", required=False), cr.text("email", required=False),
                              cr.text("clause", required=False))
        signatory_name = signatory_position = ""
        sr = pr.optional_sub("signatory", ("name", "position"))
        if sr is not None:
            signatory_name = sr.text("name")
            signatory_position = sr.text("position", required=False)
        parties.append(Party(
            id=party_id, role=pr.text("role"), name=pr.text("name"),
            address=pr.text("address", required=False), signatory=signatory_name,
            signatory_position=signatory_position, contact=contact,
        ))
    party_ids = {p.id for p in parties}
    for number_key, _ in numbers:
        if number_key not in party_ids:
            raise src.error(("agreement", "numbers", number_key), "is not one of the parties")

    confidentiality = Confidentiality()
    cr = top.optional_sub("confidentiality", CONFIDENTIALITY_KEYS)
    if cr is not None:
        confidentiality = Confidentiality(
            answers_only_to_requester=cr.boolean("answers_only_to_requester", True),
            answers_clause=cr.text("answers_clause", required=False),
            purpose_limitation=cr.boolean("purpose_limitation", True),
            purpose_clause=cr.text("purpose_clause", required=False),
            survives_end=cr.boolean("survives_end", True),
            survives_clause=cr.text("survives_clause", required=False),
            security_clause=cr.text("security_clause", required=False),
        )
    retention = parse_retention(top.optional_sub("retention", RETENTION_KEYS))
    monitoring = parse_monitoring(top.optional_sub("monitoring", MONITORING_KEYS))

    purpose_ids = {p.id for p in purposes}
    flows = [parse_flow(src, ("flows", str(name)), str(name), src.data["flows"][name],
                        party_ids, purpose_ids, confidentiality)
             for name in top.mapping("flows")]
    check_flow_references(src, flows)
    return Agreement(
        id=agreement_id, title=body.text("title"), numbers=numbers, signed_on=signed_on,
        signed_at=signed.text("place"), purposes=tuple(purposes), validity=validity,
        original_validity=validity, parties=tuple(parties), flows=tuple(flows), file=src.name,
        confidentiality=confidentiality, retention=retention, monitoring=monitoring,
        changes_clause=changes.text("clause") if changes else "",
        sha256=src.sha256,
    )


def parse_retention(r: Reader | None) -> Retention:
    if r is None:
        return Retention()
    return Retention(
        clause=r.text("clause", required=False),
        plaintext=r.choice("plaintext", ("after-processing",), "after-processing"),
        encrypted_uploads_days=r.integer("encrypted_uploads_days", default=90, minimum=0) or 0,
        outcomes_days=r.integer("outcomes_days", default=30, minimum=0) or 0,
        reference_snapshots=r.choice("reference_snapshots", ("current-only",), "current-only"),
        after_end_days=r.integer("after_end_days", default=30, minimum=0) or 0,
    )


def parse_monitoring(r: Reader | None) -> Monitoring:
    if r is None:
        return Monitoring()
    return Monitoring(
        evaluations_per_year=r.integer("evaluations_per_year", default=2) or 2,
        evaluations_clause=r.text("evaluations_clause", required=False),
        minutes_per_year=r.integer("minutes_per_year", default=2) or 2,
        minutes_clause=r.text("minutes_clause", required=False),
        renewal_notice_days=r.integer("renewal_notice_days", default=30) or 30,
        renewal_clause=r.text("renewal_clause", required=False),
        force_majeure_notice_days=r.integer("force_majeure_notice_days", default=14) or 14,
        force_majeure_clause=r.text("force_majeure_clause", required=False),
    )


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
    flow = Flow(
        name=name, kind=kind.name, purpose=purpose, clause=fr.text("clause"), sender=sender,
        recipients=recipients, columns=columns, columns_clause=cols_r.text("clause"),
        answer=answer, discloses=discloses, never_disclose=never,
        disclosure_clause=disclosure_clause, compares=compares, reference=reference,
        dataset=dataset, keeps=keeps,
        max_bytes=limits.integer("max_bytes") if limits else None,
        max_rows=limits.integer("max_rows") if limits else None,
        limits_clause=limits.text("clause", required=False) if limits else "",
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


# -- addenda ---------------------------------------------------------------------------------------

ADDENDUM_KEYS = ("format", "addendum")
ADDENDUM_BODY_KEYS = (
    "agreement", "number", "reference", "recorded", "clause", "example", "extend_until",
    "terminate_on", "suspend", "amend_flows",
)
AMENDABLE_FLOW_KEYS = ("columns", "answer", "discloses", "compares", "limits", "purpose", "clause",
                       "fuzzy")


@dataclass(frozen=True)
class AddendumSource:
    source: Source
    addendum: Addendum


def parse_addendum(src: Source) -> Addendum:
    top = Reader(src, (), src.data, ADDENDUM_KEYS)
    if top.text("format") != ADDENDUM_FORMAT:
        raise src.error(("format",), f"must be {ADDENDUM_FORMAT}")
    body = top.sub("addendum", ADDENDUM_BODY_KEYS)
    number = body.integer("number", required=True)
    assert number is not None
    extend = body.day("extend_until", required=False)
    terminate = body.day("terminate_on", required=False)
    suspend: list[tuple[str, date, date]] = []
    if body.has("suspend"):
        items = body.value["suspend"]
        if not isinstance(items, list) or not items:
            raise src.error(("addendum", "suspend"), "must be a list of {flow, from, until}")
        for i, item in enumerate(items):
            sr = Reader(src, ("addendum", "suspend", i), item, ("flow", "from", "until"))
            s_from, s_until = sr.day("from"), sr.day("until")
            assert s_from is not None and s_until is not None
            if s_until < s_from:
                raise src.error(("addendum", "suspend", i, "until"), "is before from")
            suspend.append((sr.text("flow"), s_from, s_until))
    amends: tuple[str, ...] = ()
    if body.has("amend_flows"):
        amend = body.mapping("amend_flows")
        for flow_name, changes in amend.items():
            if not isinstance(changes, dict) or not changes:
                raise src.error(("addendum", "amend_flows", str(flow_name)),
                                "must be a mapping of the flow's keys to replace")
            for key in changes:
                if key not in AMENDABLE_FLOW_KEYS:
                    raise src.error(("addendum", "amend_flows", str(flow_name), str(key)),
                                    f"cannot be amended (amendable: {', '.join(AMENDABLE_FLOW_KEYS)})")
        amends = tuple(str(k) for k in amend)
    if extend is None and terminate is None and not suspend and not amends:
        raise src.error(("addendum",), "an addendum must extend, terminate, suspend or amend "
                        "(extend_until, terminate_on, suspend, amend_flows)")
    if extend is not None and terminate is not None:
        raise src.error(("addendum",), "an addendum cannot both extend and terminate")
    return Addendum(
        agreement=body.text("agreement"), number=number, reference=body.text("reference"),
        file=src.name, recorded=body.text("recorded"), clause=body.text("clause"),
        sha256=src.sha256, extend_until=extend, terminate_on=terminate, suspend=tuple(suspend),
        amends=amends, example=body.boolean("example"),
    )


def apply_addenda(agreement: Agreement, agreement_src: Source, items: list[AddendumSource]
                  ) -> Agreement:
    """The agreement as its addenda, in number order, have changed it."""
    validity = agreement.validity
    terminated_on: date | None = None
    termination_reference = termination_clause = ""
    flows = {f.name: f for f in agreement.flows}
    raw_flows = copy.deepcopy(agreement_src.data["flows"])
    seen: set[int] = set()
    ordered = sorted(items, key=lambda a: a.addendum.number)
    for item in ordered:
        src, add = item.source, item.addendum
        if add.number in seen:
            raise src.error(("addendum", "number"), f"addendum number {add.number} is used twice")
        seen.add(add.number)
        if terminated_on is not None:
            raise src.error(("addendum",), "the agreement was already terminated by an earlier addendum")
        if add.extend_until is not None:
            if add.extend_until <= validity.end:
                raise src.error(("addendum", "extend_until"),
                                f"does not extend the agreement: it is already valid until "
                                f"{validity.end} (to end it earlier, terminate it)")
            validity = Validity(validity.start, add.extend_until, add.clause or validity.clause)
        if add.terminate_on is not None:
            if add.terminate_on < validity.start:
                raise src.error(("addendum", "terminate_on"), "is before the agreement began")
            if add.terminate_on > validity.end:
                raise src.error(("addendum", "terminate_on"),
                                f"is after the agreement ends anyway ({validity.end})")
            terminated_on = add.terminate_on
            termination_reference = add.reference
            termination_clause = add.clause
        for i, (flow_name, s_from, s_until) in enumerate(add.suspend):
            if flow_name not in flows:
                raise src.error(("addendum", "suspend", i, "flow"), f"{flow_name} is not a flow of "
                                f"agreement {agreement.id}")
            for other_from, other_until, other_ref, _ in flows[flow_name].suspensions:
                if s_from <= other_until and other_from <= s_until:
                    raise src.error(("addendum", "suspend", i),
                                    f"overlaps the suspension of {flow_name} by {other_ref}")
            flows[flow_name] = replace(
                flows[flow_name],
                suspensions=flows[flow_name].suspensions + ((s_from, s_until, add.reference,
                                                              add.clause),),
            )
        if add.amends:
            purpose_ids = {p.id for p in agreement.purposes}
            party_ids = {p.id for p in agreement.parties}
            for flow_name, changes in src.data["addendum"]["amend_flows"].items():
                path: Path_ = ("addendum", "amend_flows", str(flow_name))
                if flow_name not in raw_flows:
                    raise src.error(path, f"{flow_name} is not a flow of agreement {agreement.id}")
                raw_flows[flow_name].update(copy.deepcopy(changes))
                try:
                    amended = parse_flow(agreement_src, ("flows", flow_name), flow_name,
                                         raw_flows[flow_name], party_ids, purpose_ids,
                                         agreement.confidentiality)
                except PolicyError as e:
                    raise src.error(path, f"the amended flow is invalid: {e.bare_message}") from None
                flows[flow_name] = replace(amended, suspensions=flows[flow_name].suspensions)
            try:
                check_flow_references(agreement_src, list(flows.values()))
            except PolicyError as e:
                raise src.error(("addendum", "amend_flows"), e.bare_message) from None
    return replace(
        agreement,
        validity=validity,
        flows=tuple(flows[f.name] for f in agreement.flows),
        addenda=tuple(a.addendum for a in ordered),
        terminated_on=terminated_on,
        termination_reference=termination_reference,
        termination_clause=termination_clause,
    )


# -- the set -----------------------------------------------------------------------------------------


def read_policy_files(directory: Path) -> dict[str, bytes]:
    """The bytes of every ``*.yaml`` file in ``directory`` (not its subfolders)."""
    if not directory.is_dir():
        raise PolicyError(f"the policies folder {directory} is missing")
    files = sorted(p for p in directory.iterdir() if p.suffix == ".yaml" and p.is_file())
    contents: dict[str, bytes] = {}
    for path in files:
        try:
            contents[path.name] = path.read_bytes()
        except OSError as e:
            raise PolicyError(f"cannot be read ({e.strerror})", path.name) from None
    if not contents:
        raise PolicyError(f"the policies folder {directory} holds no policy (*.yaml)")
    return contents


def load_policies(directory: Path) -> PolicySet:
    """Load every ``*.yaml`` file in ``directory`` (not its subfolders)."""
    return load_policy_files(read_policy_files(directory))


def policy_set_sha256(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{hashlib.sha256(files[name]).hexdigest()}\n".encode())
    return digest.hexdigest()


def load_policy_files(files: Mapping[str, bytes],
                      extra_addenda: Mapping[str, list[AddendumSource]] | None = None) -> PolicySet:
    """Load a policy set from file names and their bytes (a folder, or an archived set)."""
    agreements: dict[str, tuple[Agreement, Source]] = {}
    addenda: dict[str, list[AddendumSource]] = {}
    for name in sorted(files):
        src = parse_source(name, files[name])
        if not isinstance(src.data, dict) or "format" not in src.data:
            raise src.error((), f"must be a mapping with format: {AGREEMENT_FORMAT} or "
                            f"{ADDENDUM_FORMAT}")
        if src.data.get("format") == ADDENDUM_FORMAT:
            add = parse_addendum(src)
            addenda.setdefault(add.agreement, []).append(AddendumSource(src, add))
        else:
            agreement = parse_agreement(src)
            if agreement.id in agreements:
                raise src.error(("agreement", "id"), f"agreement {agreement.id} is defined twice")
            agreements[agreement.id] = (agreement, src)
    for agreement_id, items in (extra_addenda or {}).items():
        addenda.setdefault(agreement_id, []).extend(items)
    result: dict[str, Agreement] = {}
    for agreement_id, (agreement, src) in agreements.items():
        result[agreement_id] = apply_addenda(agreement, src, addenda.pop(agreement_id, []))
    for agreement_id, items in addenda.items():
        raise items[0].source.error(("addendum", "agreement"),
                                    f"names unknown agreement {agreement_id}")
    flow_owner: dict[str, str] = {}
    dataset_owner: dict[str, str] = {}
    for a in result.values():
        for f in a.flows:
            if f.name in flow_owner:
                raise PolicyError(f"flow {f.name} is defined by both {flow_owner[f.name]} and "
                                  f"{a.id}; flow names must be unique", a.file)
            flow_owner[f.name] = a.id
            if f.dataset:
                if f.dataset in dataset_owner:
                    raise PolicyError(f"dataset {f.dataset} is loaded under both "
                                      f"{dataset_owner[f.dataset]} and {a.id}", a.file)
                dataset_owner[f.dataset] = a.id
    return PolicySet(
        agreements=tuple(result[k] for k in sorted(result)),
        sha256=policy_set_sha256(files),
        files=tuple(sorted(files)),
    )


def next_addendum_number(policy: PolicySet, agreement_id: str) -> int:
    agreement = policy.agreement(agreement_id)
    if agreement is None:
        raise PolicyError(f"there is no agreement {agreement_id}")
    return max((a.number for a in agreement.addenda), default=0) + 1


def addendum_text(
    agreement_id: str,
    number: int,
    reference: str,
    recorded: str,
    *,
    clause: str,
    extend_until: date | None = None,
    terminate_on: date | None = None,
    example: bool = False,
) -> str:
    body: dict[str, Any] = {
        "agreement": agreement_id,
        "number": number,
        "reference": reference,
        "recorded": recorded,
        "clause": clause,
    }
    if example:
        body["example"] = True
    if extend_until is not None:
        body["extend_until"] = extend_until.isoformat()
    if terminate_on is not None:
        body["terminate_on"] = terminate_on.isoformat()
    header = (
        f"# Addendum {number} to agreement {agreement_id}, recorded by 'exchanged policy'.\n"
        "# The agreement's own file is never edited; this file changes it.\n"
    )
    return header + yaml.safe_dump({"format": ADDENDUM_FORMAT, "addendum": body},
                                   sort_keys=False, allow_unicode=True)
