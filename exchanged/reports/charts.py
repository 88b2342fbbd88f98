"""The reports' figures, drawn with matplotlib as SVG: batches and rows per week by outcome,
one figure a flow, and refusals by reason; Indonesian numbers on the axes.

Drawn with matplotlib's object interface (no pyplot: it keeps state between calls), on the
Agg-free SVG backend, with the glyphs as paths so the PDF needs no font of the figure.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping

from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from exchanged.reasons import label
from exchanged.reports.document import Chart
from exchanged.reports.figures import FlowFigures
from exchanged.reports.numbers import angka

#: outcome -> (label in the legend, colour)
OUTCOMES = (("result", "dijawab dengan hasil", "#2f6f4f"),
            ("rejected", "ditolak", "#b5452d"),
            ("pending", "belum dijawab", "#b8a44a"))


def _svg(fig: Figure) -> str:
    FigureCanvasSVG(fig)
    out = io.StringIO()
    # no date in the file: the same ledger draws the same figure
    fig.savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = out.getvalue()
    return text[text.index("<svg"):]


def _whole_numbers(ax: object) -> None:
    axis = ax.yaxis  # type: ignore[attr-defined]
    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(lambda v, _: angka(int(v))))


def flow_chart(f: FlowFigures) -> Chart | None:
    """Batches per week by outcome, and rows per week, for one flow; None if it had none."""
    weeks = sorted(f.by_week)
    if not weeks:
        return None
    fig = Figure(figsize=(7.0, 2.8), layout="constrained")
    batches, rows = fig.subplots(1, 2)
    x = list(range(len(weeks)))
    bottom = [0] * len(weeks)
    for key, name, colour in OUTCOMES:
        heights = [f.by_week[w].get(key, 0) for w in weeks]
        batches.bar(x, heights, bottom=bottom, color=colour, label=name)
        bottom = [b + h for b, h in zip(bottom, heights)]
    batches.set_title("Batch per minggu", fontsize=9)
    rows.bar(x, [f.rows_by_week.get(w, 0) for w in weeks], color="#3d5a80")
    rows.set_title("Baris diproses per minggu", fontsize=9)
    for ax in (batches, rows):
        ax.set_xticks(x, [w[5:] for w in weeks], rotation=90, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        _whole_numbers(ax)
    fig.legend(*batches.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7,
               frameon=False, bbox_to_anchor=(0.5, -0.08))
    return Chart(f"Alur {f.flow}", _svg(fig))


def reasons_chart(reasons: Mapping[str, int]) -> Chart | None:
    """Refused batches by reason, most first; None if nothing was refused."""
    if not reasons:
        return None
    ranked = Counter(reasons).most_common(12)[::-1]
    fig = Figure(figsize=(7.0, 0.4 + 0.32 * len(ranked)))
    ax = fig.subplots()
    ax.barh([f"{code} ({label(code)})" for code, _ in ranked], [n for _, n in ranked],
            color="#b5452d")
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: angka(int(v))))
    ax.set_title("Batch ditolak menurut alasan", fontsize=9)
    return Chart("Penolakan menurut alasan", _svg(fig))
