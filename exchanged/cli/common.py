"""What every command shares: its parser, its home, the dates and times it is given, CSV out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from exchanged.errors import UsageError
from exchanged.home import Config, Home
from exchanged.ledger import format_ts

if TYPE_CHECKING:
    from exchanged.csvio import CsvWriter

Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one sentence and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


@dataclass(frozen=True)
class Leaf:
    """Adds a command to a group, with the options every command takes (``--home``)."""

    common: argparse.ArgumentParser

    def __call__(self, parent: Any, name: str, handler: Handler, help_: str,
                 extra: Sequence[argparse.ArgumentParser] = ()) -> Parser:
        sp: Parser = parent.add_parser(name, parents=[self.common, *extra], help=help_,
                                       description=help_)
        sp.set_defaults(handler=handler)
        return sp


def home_of(args: argparse.Namespace) -> Home:
    """The exchange home the command was given (``--home``, else its default)."""
    return Home.resolve(args.home)


def parse_day(text: str) -> date:
    """A YYYY-MM-DD value of an option, or a usage error."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a real date written YYYY-MM-DD") from None


def parse_moment(text: str, config: Config, *, end: bool = False) -> str:
    """A --since/--until value as a ledger timestamp (UTC); dates are days in the home's zone."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=config.zone)
            if end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=config.zone)
    except ValueError:
        raise UsageError(
            f"{text!r} is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM[:SS][+HH:MM])"
        ) from None
    return format_ts(moment)


@contextmanager
def csv_out(header: list[str]) -> Iterator[CsvWriter]:
    """CSV on stdout through the exchange's one CSV writer, which neutralises every cell a
    spreadsheet would run as a formula (a batch id may start with "-", a value with "=").
    LF-ended, as these commands have always printed."""
    from exchanged.csvio import CsvWriter  # numpy and Arrow: only for the commands that need them

    sys.stdout.flush()  # the writer writes under sys.stdout's text layer
    writer = CsvWriter(sys.stdout.buffer, header, line_end="\n")
    try:
        yield writer
    finally:
        writer.close()
