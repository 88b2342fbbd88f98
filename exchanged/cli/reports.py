"""The ``report`` commands: the agreement's periodic reports (berita acara, evaluasi)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exchanged.cli.common import Leaf, Parser, home_of


def cmd_report(args: argparse.Namespace) -> int:
    from exchanged.reports import generate, write

    result = generate(home_of(args), args.report, agreement_id=args.agreement,
                      period_text=args.period, fmt=args.format,
                      checkpoint=Path(args.checkpoint) if args.checkpoint else None,
                      new_checkpoint=not args.no_new_checkpoint)
    if args.output:
        write(result, Path(args.output))
        print(f"wrote the {args.report} for {args.agreement}, {args.period} to {args.output} "
              f"(from ledger entries 1..{result.tree_size}; sha256 {result.sha256})")
    else:
        sys.stdout.write(result.text)
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
        sp.add_argument("--format", choices=("html", "md", "json"), default="html")
        sp.add_argument("--output", metavar="FILE", help="default: stdout")
        sp.add_argument("--checkpoint", metavar="FILE",
                        help="compute from this signed checkpoint (to re-check a report)")
        sp.add_argument("--no-new-checkpoint", action="store_true",
                        help="use the latest checkpoint instead of signing a new one")
