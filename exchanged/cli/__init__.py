"""The ``exchanged`` command: thin wrappers over library calls, same option names."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from exchanged import __version__
from exchanged.cli import admin, agency, generate, ledger, policy, reports
from exchanged.cli.common import Handler, Leaf, Parser
from exchanged.errors import Error, Problem, UsageError

__all__ = ["build_parser", "main"]

#: what only 'exchanged[server]' installs (pyproject.toml): the daemon, matching, reports
SERVER_PACKAGES = frozenset({"numpy", "pyarrow", "apscheduler", "watchdog", "prometheus_client",
                             "jinja2", "weasyprint", "matplotlib"})


def build_parser() -> Parser:
    """Every command, in the order ``exchanged --help`` lists them."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home", metavar="DIR",
        help="the exchange's home (default: $EXCHANGED_HOME, else /var/lib/exchanged)",
    )
    p = Parser(prog="exchanged", description="A secure file-drop exchange for data-sharing "
               "agreements between agencies.")
    p.add_argument("--version", action="version", version=f"exchanged {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    leaf = Leaf(common)
    for group in (admin, policy, ledger, agency, reports, generate):
        group.add_parsers(sub, leaf)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code.

    Exit codes: 0 success, 1 a check failed (a broken chain, an invalid policy),
    2 a usage or configuration error. Errors are one sentence on stderr; the
    traceback only with ``-v``.
    """
    # every file exchanged (or gpg, on its behalf) creates is private: 0600, folders 0700
    os.umask(0o077)
    parser = build_parser()
    verbose = "-v" in (argv if argv is not None else sys.argv[1:]) or "--verbose" in (
        argv if argv is not None else sys.argv[1:]
    )
    try:
        args = parser.parse_args(argv)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            raise UsageError("a command is needed (see 'exchanged --help')")
        return handler(args)
    except Error as e:
        if verbose:
            raise
        print(f"exchanged: {e.diagnostics()}", file=sys.stderr)
        return e.exit_code
    except Problem as e:  # the exchange's own files failing it (a full disk, a locked ledger)
        if verbose:
            raise
        print(f"exchanged: cannot go on now: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if verbose:
            raise
        missing = (e.name or "").split(".")[0]
        if missing not in SERVER_PACKAGES:
            print(f"exchanged: unexpected error (ModuleNotFoundError: {missing}); run with -v "
                  "for details", file=sys.stderr)
            return 2
        # the slim install (an agency's client) lacks what the daemon and the reports need
        print(f"exchanged: this command needs the server's packages ({missing} is not "
              "installed): install 'exchanged[server]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: one sentence, the traceback only with -v
        if verbose:
            raise
        print(f"exchanged: unexpected error ({type(e).__name__}); run with -v for details",
              file=sys.stderr)
        return 2

