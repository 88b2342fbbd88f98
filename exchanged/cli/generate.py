"""The ``generate`` command: synthetic test data (never real people) from a source checkout."""

from __future__ import annotations

import argparse

from exchanged.cli.common import Leaf, Parser
from exchanged.errors import ConfigError, UsageError


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        from exchanged.testing import synth
    except ImportError:
        # the synthetic data generator is test support, kept out of the built package
        raise ConfigError("exchanged generate needs a source checkout of exchanged (the "
                          "synthetic data generator is not part of an installed package)"
                          ) from None

    try:
        if args.what == "register":
            # --rows is the register's size here; a KPM batch names its register instead
            register = synth.SyntheticRegister(args.rows, args.seed)
            n = synth.write_register_csv(args.output, register)
        else:
            register = synth.SyntheticRegister(args.register_rows, args.seed)
            rows = synth.kpm_batch(register, args.rows, args.seed + 1)
            n = synth.write_kpm_csv(args.output, rows, columns=tuple(args.columns.split(",")),
                                    truth_path=args.truth)
    except OSError as e:
        raise UsageError(f"cannot write {e.filename or args.output}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(str(e).rstrip(".")) from None
    print(f"wrote {n} rows to {args.output}")
    return 0


def add_parsers(sub: argparse._SubParsersAction[Parser], leaf: Leaf) -> None:
    """Add the parsers of generate register and generate kpm."""
    sp = leaf(sub, "generate", cmd_generate,
              "write synthetic test data (never real people): a register or a KPM batch")
    sp.add_argument("what", choices=("register", "kpm"))
    sp.add_argument("--output", required=True, metavar="FILE.csv")
    sp.add_argument("--rows", type=int, default=1000,
                    help="rows to write (the register's size, or the batch's)")
    sp.add_argument("--seed", type=int, default=1,
                    help="the register's seed; a KPM batch is drawn from the register of the "
                    "same --seed and --register-rows")
    sp.add_argument("--register-rows", type=int, default=1000,
                    help="kpm: the size of the register the batch is drawn from")
    sp.add_argument("--columns", default="ref,nik",
                    help="kpm: the batch's columns, from ref,nik,nama,tanggal_lahir")
    sp.add_argument("--truth", metavar="FILE.csv", help="kpm: also write the expected answers")
