"""An agency's client commands: submit a batch and fetch outcomes over SFTP."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from exchanged.cli.common import Leaf, Parser
from exchanged.errors import UsageError


def _client(args: argparse.Namespace) -> Any:
    from exchanged.client import Client, default_state, progress_stream

    return Client(args.server, args.agency, Path(args.ssh_key),
                  gnupghome=Path(args.gnupghome) if args.gnupghome else None,
                  state=Path(args.state) if args.state else default_state(),
                  exchange_key=Path(args.exchange_key) if args.exchange_key else None,
                  progress=None if args.quiet else progress_stream())


def cmd_submit(args: argparse.Namespace) -> int:
    from exchanged.client import submit

    if args.tokenize != bool(args.token_key):
        raise UsageError("--tokenize and --token-key FILE go together")
    client = _client(args)
    try:
        done = submit(client, args.flow, Path(args.file), batch_id=args.batch_id,
                      output=Path(args.output) if args.output else None,
                      timeout=args.timeout, wait=not args.no_wait,
                      token_key=Path(args.token_key) if args.token_key else None)
    finally:
        client.close()
    if done.tokenized is not None:
        t = done.tokenized
        print(f"tokenized {t.rows} row(s) with the token key {t.fingerprint}; "
              f"{t.invalid} NIK(s) found invalid here were sent empty and answered here")
    if done.kind == "uploaded":
        print(f"uploaded batch {done.batch_id}; collect its outcome with 'exchanged fetch'")
        return 0
    if done.kind == "rejected":
        print(f"batch {done.batch_id} was REJECTED:")
        for r in done.reasons:
            print(f"  {r.get('code')}: {r.get('message')}")
        return 1
    print(f"batch {done.batch_id} answered; the answer (checked: signed by the exchange) is "
          f"in {done.answer}")
    return 0


def cmd_token_key_new(args: argparse.Namespace) -> int:
    from exchanged.client import new_token_key

    fpr = new_token_key(Path(args.output))
    print(f"new token key in {args.output} (keep it secret; give it to the other agency by "
          "hand, never through the exchange)")
    print(f"fingerprint {fpr}")
    return 0


def cmd_token_key_fingerprint(args: argparse.Namespace) -> int:
    from exchanged.client import read_token_key
    from exchanged.ids.token import fingerprint

    print(fingerprint(read_token_key(Path(args.file))))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from exchanged.client import default_state, fetch, witness

    client = _client(args)
    try:
        got = fetch(client, args.flow, Path(args.output_dir), remove=args.remove)
        for name, local in got:
            print(f"{name} -> {local}")
        if not got:
            print("no outcome waiting")
        if not args.no_witness:
            seen = witness.check(client, Path(args.state) if args.state else default_state(),
                                 witness.warn_on_stderr)
            if seen is not None:
                since = f"extends checkpoint {seen.previous}" if seen.previous else "first seen"
                print(f"ledger checkpoint {seen.size}: signed by the exchange, {since}, "
                      f"{'co-signed by you now' if seen.uploaded else 'co-signed by you'}; "
                      f"co-signed also by: {', '.join(seen.cosigned_by) or 'no other party yet'}")
                if seen.previous is None:
                    print(f"your witness key (confirm it with the exchange's administrator): "
                          f"{seen.vkey}")
    finally:
        client.close()
    return 0


def add_parsers(sub: argparse._SubParsersAction[Parser], leaf: Leaf) -> None:
    """Add the parsers of submit and fetch, with the options of the connection they share."""
    connect = Parser(add_help=False)
    connect.add_argument("--server", required=True, metavar="HOST:PORT")
    connect.add_argument("--agency", required=True, metavar="ID", help="the agency's id (login)")
    connect.add_argument("--ssh-key", required=True, metavar="FILE",
                         help="the agency's SSH private key")
    connect.add_argument("--gnupghome", metavar="DIR",
                         help="the agency's GnuPG home (default $GNUPGHOME or ~/.gnupg)")
    connect.add_argument("--exchange-key", metavar="FILE.asc",
                         help="the exchange's public key: needed the first time, then pinned")
    connect.add_argument("--state", metavar="DIR",
                         help="where pins are kept (default ~/.config/exchanged-client)")
    connect.add_argument("--quiet", action="store_true", help="no progress bar")
    sp = sub.add_parser("submit", parents=[connect],
                        help="an agency's client: sign, encrypt, upload, wait, check, decrypt")
    sp.set_defaults(handler=cmd_submit)
    sp.add_argument("--flow", required=True)
    sp.add_argument("file", metavar="FILE.csv")
    sp.add_argument("--batch-id", metavar="ID", help="default: the file's name and the time")
    sp.add_argument("--output", metavar="FILE.csv", help="where to write the answer")
    sp.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS")
    sp.add_argument("--no-wait", action="store_true", help="upload and return at once")
    sp.add_argument("--tokenize", action="store_true",
                    help="send every NIK as its keyed token (a flow an addendum puts on tokens)")
    sp.add_argument("--token-key", metavar="FILE",
                    help="with --tokenize: the token key shared with the other agency")
    sp = sub.add_parser("fetch", parents=[connect],
                        help="an agency's client: collect, check and decrypt waiting outcomes")
    sp.set_defaults(handler=cmd_fetch)
    sp.add_argument("--flow", help="only this flow (default: all)")
    sp.add_argument("--output-dir", default=".", metavar="DIR")
    sp.add_argument("--remove", action="store_true",
                    help="remove each outcome from the exchange once it is safely written")
    sp.add_argument("--no-witness", action="store_true",
                    help="do not check and co-sign the ledger's newest checkpoint")
    add_client_parsers(sub)


def add_client_parsers(sub: argparse._SubParsersAction[Parser]) -> None:
    """``exchanged client token-key new | fingerprint``: the agencies' shared token key."""
    client = sub.add_parser("client", help="an agency's client: its token key")
    client_sub = client.add_subparsers(dest="client_command", metavar="COMMAND",
                                       parser_class=Parser)
    token_key = client_sub.add_parser("token-key", help="the token key two agencies share")
    key_sub = token_key.add_subparsers(dest="token_key_command", metavar="COMMAND",
                                       parser_class=Parser)
    sp = key_sub.add_parser("new", help="write a new token key and print its fingerprint")
    sp.set_defaults(handler=cmd_token_key_new)
    sp.add_argument("--output", required=True, metavar="FILE", help="a new file (0600)")
    sp = key_sub.add_parser("fingerprint", help="print a token key's fingerprint")
    sp.set_defaults(handler=cmd_token_key_fingerprint)
    sp.add_argument("file", metavar="FILE")
