"""A report as a plain document: title, facts, sections with tables, figures, signature
blocks. :mod:`exchanged.reports.render` turns it into HTML, Markdown, PDF or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Chart:
    """A drawing of some of the figures, as SVG."""

    title: str
    svg: str


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()


@dataclass(frozen=True)
class Signature:
    role: str
    party: str
    official: str
    detail: str = ""


@dataclass(frozen=True)
class Document:
    kind: str
    title: str
    subtitle: str
    facts: tuple[tuple[str, str], ...]
    sections: tuple[Section, ...]
    signatures: tuple[Signature, ...] = ()
    footer: tuple[str, ...] = ()
    figures: dict[str, object] = field(default_factory=dict)
    #: drawings of the figures (SVG), for HTML and PDF
    charts: tuple[Chart, ...] = ()
    #: set while the period has not ended: the figures are provisional
    provisional: str = ""
    #: the parties' names, for the letterhead
    parties: tuple[str, ...] = ()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    return Table(tuple(headers), tuple(tuple(str(c) for c in row) for row in rows))


def to_json(doc: Document) -> str:
    """The document's text and figures, without its drawings (the figures hold their data)."""
    body = asdict(doc)
    body.pop("charts", None)
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def numeric(cell: str) -> bool:
    """Is a table cell a number (right-aligned): ``1.234``, ``76,2 %``, ``-``?

    >>> numeric("1.234"), numeric("76,2 %"), numeric("ASN")
    (True, True, False)
    """
    bare = cell.replace(".", "").replace(",", "").replace("%", "").strip()
    return bare.isdigit() or cell == "-"
