"""A report as a plain document (title, facts, sections with tables, signature blocks),
rendered to Markdown, printable HTML or JSON."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field


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


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    return Table(tuple(headers), tuple(tuple(str(c) for c in row) for row in rows))


def to_json(doc: Document) -> str:
    return json.dumps(asdict(doc), ensure_ascii=False, indent=2) + "\n"


def to_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", "", f"**{doc.subtitle}**", ""]
    for label, value in doc.facts:
        out.append(f"- **{label}:** {value}")
    for section in doc.sections:
        out += ["", f"## {section.title}", ""]
        for p in section.paragraphs:
            out += [p, ""]
        for t in section.tables:
            out.append("| " + " | ".join(t.headers) + " |")
            out.append("|" + "---|" * len(t.headers))
            for row in t.rows:
                out.append("| " + " | ".join(c.replace("|", "/") for c in row) + " |")
            out.append("")
    if doc.signatures:
        out += ["", "## Tanda tangan / Signatures", ""]
        for s in doc.signatures:
            out += [f"**{s.role}** — {s.party}", "", "", "_______________________________",
                    f"{s.official}", f"{s.detail}", ""]
    for line in doc.footer:
        out += ["", f"_{line}_"]
    return "\n".join(out).rstrip() + "\n"


CSS = """
@page { size: A4; margin: 18mm 16mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10.5pt; color: #111; }
h1 { font-size: 15pt; text-align: center; margin: 0 0 4pt; text-transform: uppercase; }
.subtitle { text-align: center; margin: 0 0 14pt; }
h2 { font-size: 11.5pt; margin: 16pt 0 6pt; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; margin: 6pt 0; page-break-inside: avoid; }
th, td { border: 1px solid #888; padding: 3pt 5pt; text-align: left; vertical-align: top; }
th { background: #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: 14em auto; gap: 2pt 8pt; }
dl.facts dt { font-weight: bold; }
.signatures { display: flex; justify-content: space-between; margin-top: 28pt;
              page-break-inside: avoid; }
.signature { width: 45%; text-align: center; }
.signature .line { margin-top: 60pt; border-top: 1px solid #000; padding-top: 3pt; }
.footer { margin-top: 20pt; font-size: 8.5pt; color: #444; }
"""


def _cell(c: str) -> str:
    numeric = c.replace(",", "").replace(".", "").replace("%", "").isdigit()
    return f'<td class="n">{html.escape(c)}</td>' if numeric else f"<td>{html.escape(c)}</td>"


def to_html(doc: Document) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="id"><head><meta charset="utf-8">',
           f"<title>{e(doc.title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{e(doc.title)}</h1>", f'<p class="subtitle">{e(doc.subtitle)}</p>',
           '<dl class="facts">']
    for label, value in doc.facts:
        out.append(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>")
    out.append("</dl>")
    for section in doc.sections:
        out.append(f"<h2>{e(section.title)}</h2>")
        for p in section.paragraphs:
            out.append(f"<p>{e(p)}</p>")
        for t in section.tables:
            out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.headers)
                       + "</tr></thead><tbody>")
            for row in t.rows:
                out.append("<tr>" + "".join(_cell(c) for c in row) + "</tr>")
            out.append("</tbody></table>")
    if doc.signatures:
        out.append('<div class="signatures">')
        for s in doc.signatures:
            out.append(f'<div class="signature"><div><strong>{e(s.role)}</strong><br>'
                       f'{e(s.party)}</div><div class="line">{e(s.official)}<br>'
                       f"<small>{e(s.detail)}</small></div></div>")
        out.append("</div>")
    if doc.footer:
        out.append('<div class="footer">' + "<br>".join(e(line) for line in doc.footer)
                   + "</div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


RENDERERS = {"json": to_json, "md": to_markdown, "html": to_html}
