"""The reports read as finished documents: no template left unfilled in any format, numbers
written the Indonesian way, counts that add up, a letterhead the administrator can replace."""

from __future__ import annotations

import functools
import html
import re
import subprocess
from collections import Counter
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from exchanged.ledger.treehead import TreeHead
from exchanged.policy.loader import load_policies
from exchanged.reasons import CATALOGUE, LABELS
from exchanged.reports.builders import Context, berita_acara, evaluasi
from exchanged.reports.document import Document
from exchanged.reports.figures import FlowFigures, parse_period
from exchanged.reports.render import FORMATS, render

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{[a-z_]+\}|\{\{|\{%")
HEAD = TreeHead("ledger-id", "uji", "A" * 40, 120, "ab" * 32, "cd" * 32, "2026-07-01T00:00:00Z")


@functools.cache
def documents(open_period: bool = False) -> list[Document]:
    """Both documents, with every reason code refused at least once, in both languages."""
    agreement = load_policies(ROOT / "policies").agreements[0]
    figures = {}
    codes = list(CATALOGUE)
    for i, flow in enumerate(agreement.flows):
        # every code refused under one flow or another: each appears in both documents
        reasons = Counter({code: 1 + j % 3 for j, code in enumerate(codes)
                           if j % len(agreement.flows) == i})
        figures[flow.name] = FlowFigures(
            flow.name, received=60, results=40, rejected=15, pending=5, rows=12_345,
            statuses=Counter({"ASN": 762, "TIDAK_DITEMUKAN": 238}), reasons=reasons,
            several_reasons=2, by_month=Counter({"2026-01": 30, "2026-02": 30}),
            by_week={"2026-W02": Counter(result=20, rejected=10),
                     "2026-W03": Counter(result=20, rejected=5, pending=5)},
            rows_by_week=Counter({"2026-W02": 6000, "2026-W03": 6345}))
    ctx = Context(parse_period("2026-H1", ZoneInfo("Asia/Jakarta")), HEAD,
                  "2026-07-01T00:00:00.000000Z", open_period=open_period)
    return [berita_acara(agreement, figures, ctx),
            evaluasi(agreement, figures, Counter({"login.failed": 3}), ctx, ledger_ok=True,
                     previous="evaluasi periode sebelumnya (2025-H2) belum tercatat")]


def text_of(data: bytes, fmt: str, tmp_path: Path) -> str:
    if fmt == "html":
        return html.unescape(data.decode("utf-8"))
    if fmt != "pdf":
        return data.decode("utf-8")
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                         text=True, check=True)
    return out.stdout


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], bytes]:
    """Both documents in every format, rendered once (a PDF takes seconds)."""
    return {(doc.kind, fmt): render(doc, fmt) for doc in documents() for fmt in FORMATS}


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_template_is_left_unfilled_in_any_format(
        fmt: str, rendered: dict[tuple[str, str], bytes], tmp_path: Path) -> None:
    for doc in documents():
        text = text_of(rendered[(doc.kind, fmt)], fmt, tmp_path)
        assert not PLACEHOLDER.search(text), (doc.kind, fmt, PLACEHOLDER.search(text))
        # every reason code, with its label in both languages (the PDF's layout may wrap)
        flat = " ".join(text.split())
        for code, (english, indonesian) in LABELS.items():
            assert code in flat, (doc.kind, fmt, code)
            if fmt in ("html", "md"):  # a PDF's table cells wrap: their words, not phrases
                assert indonesian in flat and english in flat, (doc.kind, fmt, code)


def test_every_reason_code_has_a_label_in_both_languages() -> None:
    assert set(LABELS) == set(CATALOGUE)
    for english, indonesian in LABELS.values():
        assert english and indonesian and not PLACEHOLDER.search(english + indonesian)


def test_numbers_are_indonesian_and_counts_add_up(
        rendered: dict[tuple[str, str], bytes]) -> None:
    html = rendered[("berita-acara", "html")].decode()
    assert "12.345" in html and "12,345" not in html
    evaluation = rendered[("evaluasi", "md")].decode()
    assert "25,0 %" in evaluation  # 15 of 60 refused
    assert "lebih dari satu alasan" in html
    doc = documents()[0]
    for section in doc.sections:
        for table in section.tables:
            rows = dict((r[0].strip("– "), r[1]) for r in table.rows if len(r) >= 2)
            if "Batch diterima dalam periode" in rows:
                got = [int(rows[k].replace(".", "")) for k in
                       ("dijawab dengan hasil", "ditolak", "belum dijawab")]
                assert sum(got) == int(rows["Batch diterima dalam periode"].replace(".", ""))


def test_an_open_period_is_marked_provisional(rendered: dict[tuple[str, str], bytes]) -> None:
    for doc in documents(open_period=True):
        for fmt in ("html", "md"):
            assert "SEMENTARA" in render(replace(doc, charts=()), fmt).decode()
    assert "SEMENTARA" not in rendered[("berita-acara", "html")].decode()


def small(doc: Document) -> Document:
    """A document of a page, for what needs a PDF of its own."""
    return replace(doc, sections=doc.sections[:1], charts=doc.charts[:1])


def test_the_pdf_has_its_figures_and_the_letterhead_can_be_replaced(tmp_path: Path) -> None:
    doc = documents()[0]
    assert len(doc.charts) == len(doc.figures["flows"]) + 1  # type: ignore[arg-type]
    html = render(doc, "html").decode()
    assert html.count("data:image/svg+xml;base64,") == len(doc.charts)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
        '<circle cx="20" cy="20" r="18" fill="#7a1"/></svg>')
    (templates / "letterhead.html.j2").write_text(
        '<header class="letterhead"><img src="logo.svg" width="40">'
        "<div class=\"party\">KOP SURAT {{ doc.parties | join(' DAN ') }}</div></header>")
    replaced = render(doc, "html", templates).decode()
    assert "KOP SURAT" in replaced
    pdf = render(small(doc), "pdf", templates)
    assert pdf.startswith(b"%PDF")
    assert "KOP SURAT" in text_of(pdf, "pdf", tmp_path)


def test_a_report_template_cannot_reach_outside(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "letterhead.html.j2").write_text(
        "{{ doc.__class__.__init__.__globals__ }}")
    from exchanged.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot be rendered"):
        render(small(documents()[0]), "html", templates)
    # a file outside the templates' folders is never fetched into the PDF
    secret = tmp_path / "secret.txt"
    secret.write_text("RAHASIA")
    (templates / "letterhead.html.j2").write_text(
        f'<header><img src="file://{secret}"><object data="file://{secret}"></object></header>')
    pdf = render(small(documents()[0]), "pdf", templates)
    assert "RAHASIA" not in text_of(pdf, "pdf", tmp_path)
