"""The ``report`` commands: the agreement's periodic reports (berita acara, evaluasi)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exchanged.cli.common import Leaf, Parser, home_of
from exchanged.errors import UsageError


def cmd_report(args: argparse.Namespace) -> int:
    from exchanged.reports import generate, parse_formats, write

    formats = parse_formats(args.format)
    if not args.output and (len(formats) > 1 or formats == ("pdf",)):
        raise UsageError("--output is needed for a PDF or for several formats (it names the "
                         "file, or the files' common stem: berita-acara-2026-H1 -> .html, .pdf)")
    result = generate(home_of(args), args.report, agreement_id=args.agreement,
                      period_text=args.period, formats=formats,
                      checkpoint=Path(args.checkpoint) if args.checkpoint else None,
                      new_checkpoint=not args.no_new_checkpoint)
    if args.output:
        for path, fmt in zip(write(result, Path(args.output)), formats):
            print(f"wrote the {args.report} for {args.agreement}, {args.period} to {path} "
                  f"(from ledger entries 1..{result.tree_size}; sha256 {result.sha256(fmt)})")
    else:
        sys.stdout.write(result.outputs[formats[0]].decode("utf-8"))
    return 0


def add_parsers(sub: argparse._SubParsersAction[Parser], leaf: Leaf) -> None:
    """Add the parsers of report berita-acara and report evaluasi."""
    report = sub.add_parser("report", help="the agreement's periodic reports")
    report_sub = report.add_subparsers(dest="report_command", metavar="COMMAND",
                                       parser_class=Parser)
    for name, help_ in (("berita-acara", "the minutes of the data-matching results "
                                         "(Pasal 3 ayat (2) huruf d), for signing"),
                        ("evaluasi", "the monitoring and evaluation report (Pasal 7)")):
        sp = leaf(report_sub, name, cmd_report, help_)
        sp.set_defaults(report=name)
        sp.add_argument("--agreement", required=True, metavar="ID")
        sp.add_argument("--period", required=True, metavar="2026-H1",
                        help="a half-year (2026-H1, 2026-H2), a quarter (2026-Q3) or a year")
        sp.add_argument("--format", default="html", metavar="FORMATS",
                        help="html, md, json or pdf, or several with commas (html,md,json,pdf):"
                        " all from the same checkpoint")
        sp.add_argument("--output", metavar="FILE",
                        help="the file (default: stdout); with several formats, the files' "
                        "common stem, each format's suffix added")
        sp.add_argument("--checkpoint", metavar="FILE",
                        help="compute from this signed checkpoint (to re-check a report)")
        sp.add_argument("--no-new-checkpoint", action="store_true",
                        help="use the latest checkpoint instead of signing a new one")
