"""Loading policy files: YAML in, a checked :class:`PolicySet` out, or an error with file and line.

Files are read with ``yaml.safe_load``; ``yaml.compose`` (on the safe loader)
gives the line numbers for error messages. Every key is known, every type
checked, every party and column reference resolved, every date possible.
The policy set's SHA-256 covers every file's name and bytes, so a decision
can be replayed against the exact policy of its day.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from exchanged.errors import PolicyError
from exchanged.policy.model import (
    COLUMN_TYPES,
    Addendum,
    Agreement,
    Column,
    Contact,
    Flow,
    Party,
    PolicySet,
    Validity,
)

AGREEMENT_FORMAT = "exchanged/agreement-v1"
ADDENDUM_FORMAT = "exchanged/addendum-v1"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
FLOW_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
COLUMN_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
FLOW_KINDS = ("reference-load", "nik-lookup")

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
            out[path + (key,)] = key_node.start_mark.line + 1
            _node_lines(value_node, path + (key,), out)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, path + (i,), out)


TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


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


def read_source(path: Path) -> Source:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PolicyError(f"cannot be read ({e.strerror})", path.name) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("is not UTF-8 text", path.name) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or "malformed YAML"
        raise PolicyError(
            f"is not valid YAML: {problem}", path.name, mark.line + 1 if mark else None
        ) from None
    except ValueError:
        # PyYAML turns YYYY-MM-DD into a date and fails on an impossible one
        raise PolicyError("holds an impossible date (YYYY-MM-DD)", path.name,
                          _bad_date_line(node)) from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _node_lines(node, (), lines)
    return Source(path.name, data, lines, hashlib.sha256(raw).hexdigest())


# -- typed access with errors that point at the line -----------------------------------------


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

    def raw(self, key: str) -> Any:
        return self.value.get(key)

    def sub(self, key: str, known: tuple[str, ...]) -> Reader:
        if key not in self.value:
            raise self.source.error(self.path, f"{key} is missing")
        return Reader(self.source, self.path + (key,), self.value[key], known)

    def text(self, key: str, *, required: bool = True, default: str = "") -> str:
        if key not in self.value or self.value[key] is None:
            if required:
                raise self.source.error(self.path, f"{key} is missing")
            return default
        v = self.value[key]
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise self.source.error(self.path + (key,), "must be text")
        return str(v).strip()

    def integer(self, key: str, *, required: bool = False) -> int | None:
        if key not in self.value:
            if required:
                raise self.source.error(self.path, f"{key} is missing")
            return None
        v = self.value[key]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise self.source.error(self.path + (key,), "must be a positive whole number")
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


# -- agreements ----------------------------------------------------------------------------------

AGREEMENT_KEYS = ("format", "agreement", "parties", "flows")
AGREEMENT_BODY_KEYS = ("id", "title", "numbers", "signed", "validity", "purpose")
PARTY_KEYS = ("role", "name", "address", "signatory", "contact")
FLOW_KEYS = (
    "kind",
    "purpose",
    "clause",
    "sender",
    "answer_to",
    "reference",
    "dataset",
    "columns",
    "discloses",
    "limits",
)
COLUMN_KEYS = ("type", "required", "values", "max_length")


def parse_agreement(src: Source) -> Agreement:
    top = Reader(src, (), src.data, AGREEMENT_KEYS)
    if top.text("format") != AGREEMENT_FORMAT:
        raise src.error(("format",), f"must be {AGREEMENT_FORMAT}")
    body = top.sub("agreement", AGREEMENT_BODY_KEYS)
    agreement_id = body.text("id")
    if not ID_RE.match(agreement_id):
        raise src.error(("agreement", "id"), "must be lower-case letters, digits and dashes")
    expected_name = f"{agreement_id}.yaml"
    if src.name != expected_name:
        raise src.error(("agreement", "id"), f"the file of agreement {agreement_id} must be named {expected_name}")
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
    purpose = body.sub("purpose", ("text", "clause"))

    parties: list[Party] = []
    for party_id, _ in top.mapping("parties").items():
        path: Path_ = ("parties", str(party_id))
        if not isinstance(party_id, str) or not ID_RE.match(party_id):
            raise src.error(path, "a party id must be lower-case letters, digits and dashes")
        pr = Reader(src, path, src.data["parties"][party_id], PARTY_KEYS)
        contact = None
        if pr.has("contact"):
            cr = pr.sub("contact", ("unit", "address", "phone", "email", "clause"))
            contact = Contact(
                cr.text("unit"),
                cr.text("address", required=False),
                cr.text("phone", required=False),
                cr.text("email", required=False),
            )
        signatory_name = signatory_position = ""
        if pr.has("signatory"):
            sr = pr.sub("signatory", ("name", "position"))
            signatory_name = sr.text("name")
            signatory_position = sr.text("position", required=False)
        parties.append(
            Party(
                id=party_id,
                role=pr.text("role"),
                name=pr.text("name"),
                address=pr.text("address", required=False),
                signatory=signatory_name,
                signatory_position=signatory_position,
                contact=contact,
            )
        )
    party_ids = {p.id for p in parties}
    for number_key, _ in numbers:
        if number_key not in party_ids:
            raise src.error(("agreement", "numbers", number_key), "is not one of the parties")

    flows: list[Flow] = []
    for flow_name in top.mapping("flows"):
        flows.append(parse_flow(src, str(flow_name), party_ids))
    datasets = {f.dataset for f in flows if f.dataset}
    for f in flows:
        if f.reference is not None and f.reference not in datasets:
            raise src.error(
                ("flows", f.name, "reference"),
                f"names dataset {f.reference}, which no flow of this agreement loads",
            )
    return Agreement(
        id=agreement_id,
        title=body.text("title"),
        numbers=numbers,
        signed_on=signed_on,
        signed_at=signed.text("place"),
        purpose=purpose.text("text"),
        purpose_clause=purpose.text("clause"),
        validity=validity,
        original_validity=validity,
        parties=tuple(parties),
        flows=tuple(flows),
        file=src.name,
    )


def parse_flow(src: Source, name: str, party_ids: set[str]) -> Flow:
    path: Path_ = ("flows", name)
    if not FLOW_RE.match(name):
        raise src.error(path, "a flow name must be lower-case letters, digits and dashes")
    fr = Reader(src, path, src.data["flows"][name], FLOW_KEYS)
    kind = fr.text("kind")
    if kind not in FLOW_KINDS:
        raise src.error(path + ("kind",), f"must be one of {', '.join(FLOW_KINDS)}")
    sender = fr.text("sender")
    if sender not in party_ids:
        raise src.error(path + ("sender",), f"{sender} is not a party to this agreement")
    answer_to = fr.texts("answer_to") or (sender,)
    for i, party in enumerate(answer_to):
        if party not in party_ids:
            raise src.error(path + ("answer_to", i), f"{party} is not a party to this agreement")
    if answer_to != (sender,):
        # Pasal 9(3): answers go only to the party that asked.
        raise src.error(path + ("answer_to",), "an answer may go only to the flow's sender")
    cols_r = fr.sub("columns", ("clause", "list"))
    columns: list[Column] = []
    for col_name in cols_r.mapping("list"):
        cpath = path + ("columns", "list", str(col_name))
        if not isinstance(col_name, str) or not COLUMN_RE.match(col_name):
            raise src.error(cpath, "a column name must be lower-case letters, digits and _")
        raw = src.data["flows"][name]["columns"]["list"][col_name] or {}
        cr = Reader(src, cpath, raw, COLUMN_KEYS)
        ctype = cr.text("type", required=False, default="text")
        if ctype not in COLUMN_TYPES:
            raise src.error(cpath + ("type",), f"must be one of {', '.join(COLUMN_TYPES)}")
        values = cr.texts("values")
        if (ctype == "enum") != bool(values):
            raise src.error(cpath, "values are needed for type enum, and only for it")
        columns.append(
            Column(col_name, ctype, cr.boolean("required"), values, cr.integer("max_length"))
        )
    if not any(c.required for c in columns):
        raise src.error(path + ("columns",), "at least one column must be required")
    discloses: tuple[str, ...] = ()
    disclosure_clause = ""
    if fr.has("discloses"):
        dr = fr.sub("discloses", ("clause", "fields"))
        discloses = dr.texts("fields")
        disclosure_clause = dr.text("clause")
    limits = fr.sub("limits", ("max_bytes", "max_rows")) if fr.has("limits") else None
    reference = fr.text("reference", required=False) or None
    dataset = fr.text("dataset", required=False) or None
    if kind == "reference-load" and dataset is None:
        raise src.error(path, "a reference-load flow must name the dataset it loads")
    if kind == "nik-lookup" and reference is None:
        raise src.error(path, "a nik-lookup flow must name the reference dataset it matches")
    if kind == "nik-lookup" and "nik" not in {c.name for c in columns if c.required}:
        raise src.error(path + ("columns",), "a nik-lookup flow must require column nik")
    return Flow(
        name=name,
        kind=kind,
        purpose=fr.text("purpose"),
        clause=fr.text("clause"),
        sender=sender,
        answer_to=answer_to,
        columns=tuple(columns),
        columns_clause=cols_r.text("clause"),
        discloses=discloses,
        disclosure_clause=disclosure_clause,
        reference=reference,
        dataset=dataset,
        max_bytes=limits.integer("max_bytes") if limits else None,
        max_rows=limits.integer("max_rows") if limits else None,
    )


# -- addenda -------------------------------------------------------------------------------------

ADDENDUM_KEYS = ("format", "addendum")
ADDENDUM_BODY_KEYS = (
    "agreement",
    "number",
    "reference",
    "recorded",
    "clause",
    "extend_until",
    "terminate_on",
    "example",
)


def parse_addendum(src: Source) -> Addendum:
    top = Reader(src, (), src.data, ADDENDUM_KEYS)
    if top.text("format") != ADDENDUM_FORMAT:
        raise src.error(("format",), f"must be {ADDENDUM_FORMAT}")
    body = top.sub("addendum", ADDENDUM_BODY_KEYS)
    number = body.integer("number", required=True)
    assert number is not None
    extend = body.day("extend_until", required=False)
    terminate = body.day("terminate_on", required=False)
    if (extend is None) == (terminate is None):
        raise src.error(("addendum",), "an addendum must have exactly one of extend_until, terminate_on")
    return Addendum(
        agreement=body.text("agreement"),
        number=number,
        reference=body.text("reference"),
        file=src.name,
        recorded=body.text("recorded"),
        clause=body.text("clause"),
        extend_until=extend,
        terminate_on=terminate,
    )


def apply_addenda(agreement: Agreement, addenda: list[tuple[Source, Addendum]]) -> Agreement:
    validity = agreement.validity
    terminated_on = None
    termination_reference = ""
    termination_clause = ""
    seen: set[int] = set()
    for src, add in sorted(addenda, key=lambda pair: pair[1].number):
        if add.number in seen:
            raise src.error(("addendum", "number"), f"addendum number {add.number} is used twice")
        seen.add(add.number)
        if add.extend_until is not None:
            if add.extend_until <= validity.end:
                raise src.error(
                    ("addendum", "extend_until"),
                    f"does not extend the agreement: it is already valid until {validity.end}",
                )
            validity = Validity(validity.start, add.extend_until, add.clause or validity.clause)
        if add.terminate_on is not None:
            if add.terminate_on < validity.start:
                raise src.error(("addendum", "terminate_on"), "is before the agreement began")
            terminated_on = add.terminate_on
            termination_reference = add.reference
            termination_clause = add.clause
    return Agreement(
        **{
            **agreement.__dict__,
            "validity": validity,
            "addenda": tuple(a for _, a in sorted(addenda, key=lambda p: p[1].number)),
            "terminated_on": terminated_on,
            "termination_reference": termination_reference,
            "termination_clause": termination_clause,
        }
    )


# -- the set -------------------------------------------------------------------------------------


def load_policies(directory: Path) -> PolicySet:
    """Load every ``*.yaml`` file in ``directory`` (not its subfolders)."""
    if not directory.is_dir():
        raise PolicyError(f"the policies folder {directory} is missing")
    files = sorted(p for p in directory.iterdir() if p.suffix == ".yaml" and p.is_file())
    if not files:
        raise PolicyError(f"the policies folder {directory} holds no policy (*.yaml)")
    digest = hashlib.sha256()
    agreements: dict[str, Agreement] = {}
    addenda: dict[str, list[tuple[Source, Addendum]]] = {}
    for path in files:
        src = read_source(path)
        digest.update(f"{src.name}\0{src.sha256}\n".encode())
        if not isinstance(src.data, dict) or "format" not in src.data:
            raise src.error((), f"must be a mapping with format: {AGREEMENT_FORMAT} or {ADDENDUM_FORMAT}")
        fmt = src.data.get("format")
        if fmt == ADDENDUM_FORMAT:
            add = parse_addendum(src)
            addenda.setdefault(add.agreement, []).append((src, add))
        else:
            agreement = parse_agreement(src)
            if agreement.id in agreements:
                raise src.error(("agreement", "id"), f"agreement {agreement.id} is defined twice")
            agreements[agreement.id] = agreement
    for agreement_id, items in addenda.items():
        if agreement_id not in agreements:
            src, _ = items[0]
            raise src.error(("addendum", "agreement"), f"names unknown agreement {agreement_id}")
        agreements[agreement_id] = apply_addenda(agreements[agreement_id], items)
    flow_owner: dict[str, str] = {}
    for a in agreements.values():
        for f in a.flows:
            if f.name in flow_owner:
                raise PolicyError(
                    f"flow {f.name} is defined by both {flow_owner[f.name]} and {a.id}; "
                    "flow names must be unique",
                    a.file,
                )
            flow_owner[f.name] = a.id
    return PolicySet(
        agreements=tuple(agreements[k] for k in sorted(agreements)),
        sha256=digest.hexdigest(),
        files=tuple(p.name for p in files),
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
    extend_until: date | None = None,
    terminate_on: date | None = None,
    clause: str,
) -> str:
    body: dict[str, Any] = {
        "agreement": agreement_id,
        "number": number,
        "reference": reference,
        "recorded": recorded,
        "clause": clause,
    }
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
