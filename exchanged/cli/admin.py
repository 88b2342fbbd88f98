"""The operator's commands on the exchange itself: init, agency, keys, run, status."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from exchanged import __version__
from exchanged.cli.common import Leaf, Parser, home_of
from exchanged.errors import UsageError


def cmd_init(args: argparse.Namespace) -> int:
    from exchanged.admin.init import init_home

    report = init_home(home_of(args), name=args.name, listen=args.listen)
    print(f"created the exchange home {report.home}")
    print(f"exchange OpenPGP key: {report.fingerprint}")
    print(f"  public key for agencies: {report.home / 'exchange-public.asc'}")
    print(f"SSH host key: {report.host_key_fingerprint}")
    print(f"  known_hosts line for agencies: {report.known_hosts_line}")
    print(f"ledger: {report.ledger_id}")
    return 0


def cmd_agency_add(args: argparse.Namespace) -> int:
    from exchanged.admin.agencies import add_agency
    from exchanged.sftp.openssh import SYSTEMD_DROPIN

    report = add_agency(
        home_of(args), args.id, name=args.name, ssh_key=Path(args.ssh_key),
        gpg_key=Path(args.gpg_key),
    )
    print(f"registered agency {report.agency.id} ({report.agency.name})")
    print(f"pinned OpenPGP key: {report.agency.gpg_fingerprint}")
    print(f"SSH login key: {report.ssh_fingerprint}")
    if report.inbox or report.outbox:
        print(f"inbox flows: {', '.join(report.inbox) or 'none'}; "
              f"outbox flows: {', '.join(report.outbox) or 'none'}")
    else:
        print(f"note: no agreement names party {report.agency.id}, so it has no flows yet")
    if report.sshd_config:
        print("OpenSSH mode: add to /etc/ssh/sshd_config, then reload sshd:")
        print(report.sshd_config.rstrip())
    if report.systemd_dropin:
        print(f"under systemd: the daemon needs {SYSTEMD_DROPIN} (shipped in systemd/), then "
              "'systemctl daemon-reload' and 'systemctl restart exchanged' (it joins the "
              "agency's group only when it starts):")
        print(report.systemd_dropin.rstrip())
    return 0


def cmd_agency_update(args: argparse.Namespace) -> int:
    from exchanged.admin.agencies import update_agency

    report = update_agency(home_of(args), args.id,
                           ssh_key=Path(args.ssh_key) if args.ssh_key else None,
                           add_ssh_key=args.add,
                           gpg_key=Path(args.gpg_key) if args.gpg_key else None,
                           witness_key=args.witness_key)
    for change in report.changes:
        print(f"{args.id}: {change}")
    return 0


def cmd_agency_list(args: argparse.Namespace) -> int:
    from exchanged.home.agencies import Agencies

    home = home_of(args)
    home.require()
    for agency in Agencies(home).all().values():
        print(f"{agency.id}\t{agency.gpg_fingerprint}\t{agency.name}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from exchanged.admin.keys import rotate_openpgp, rotate_ssh_host
    from exchanged.ledger import open_ledger

    if args.register and not (args.openpgp or args.ssh_host):
        return _rotate_register(args)
    if bool(args.openpgp) == bool(args.ssh_host) or args.register:
        raise UsageError("give one of --openpgp (with --retire-to FILE), --ssh-host, --register")
    if args.openpgp and not args.retire_to:
        raise UsageError("--openpgp needs --retire-to FILE: where the old secret key goes")
    home = home_of(args)
    home.require()
    ledger = open_ledger(home)
    try:
        if args.openpgp:
            done = rotate_openpgp(home, ledger, Path(args.retire_to))
            print(f"exchange OpenPGP key: {done.old_fingerprint} -> {done.new_fingerprint}")
            print(f"the old secret key is in {done.retired_to}: move it offline")
            print(f"new public key: {home.exchange_public} (certified by the old key); "
                  f"notice delivered to: {', '.join(done.notified) or 'no agency'}")
        else:
            done = rotate_ssh_host(home, ledger)
            print(f"SSH host key: {done.old_fingerprint} -> {done.new_fingerprint}")
            print(f"known_hosts line for the agencies: {done.known_hosts_line}")
    finally:
        ledger.close()
    return 0


def _rotate_register(args: argparse.Namespace) -> int:
    from exchanged.admin.keys import rotate_register
    from exchanged.ledger import open_ledger

    home = home_of(args)
    home.require()
    ledger = open_ledger(home)
    try:
        done = rotate_register(home, ledger)
    finally:
        ledger.close()
    print(f"register key: {done.old_fingerprint} -> {done.new_fingerprint}")
    print(f"reference snapshots removed ({done.files_removed} files); to be loaded again: "
          f"{', '.join(done.datasets) or 'none was loaded'}: ask the agencies that send "
          "them to send them again (until then their flows answer NO_REFERENCE_DATA)")
    return 0


def cmd_batch_requeue(args: argparse.Namespace) -> int:
    from exchanged.admin.batches import requeue

    done = requeue(home_of(args), args.uid, every=args.all)
    for uid in done:
        print(f"requeued {uid}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from exchanged.daemon.service import Service

    return Service(home_of(args)).run()


def cmd_status(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from exchanged.admin.status import status

    st = status(home_of(args))
    if args.format == "json":
        print(json.dumps(asdict(st), ensure_ascii=False, indent=2))
        return 0
    if st.running:
        d = st.daemon
        stopped = d.get("intake_stopped") or {}
        why = stopped.get("why", "the exchange cannot write")
        intake = ("open" if d.get("intake_open", True) else
                  f"STOPPED since {stopped.get('since', '?')}: {why}; it resumes by itself "
                  "once the exchange can write")
        print(f"daemon: running (exchanged {d.get('version', '?')}, pid {d.get('pid', '?')}, "
              f"since {d.get('started', '?')}, SFTP on {d.get('sftp', '?')}, intake {intake})")
        metrics = d.get("metrics") or {}
        if metrics.get("error"):
            print(f"metrics: NOT served: {metrics['error']}; the exchange runs on without them "
                  "(free the port or change metrics_listen, then restart)")
        elif metrics.get("serving"):
            print(f"metrics: http://{metrics.get('listen')}/metrics")
    else:
        print(f"daemon: not running (exchanged {__version__} installed)")
    if st.policy_error:
        running = (f"the daemon runs on the previous policy {st.policy_sha256[:12]}"
                   if st.running and st.policy_sha256 else
                   "the daemon runs on the previous policy" if st.running else
                   "the daemon will not start with them")
        print(f"policies: INVALID: {st.policy_error}; {running} (see 'exchanged policy check')")
    waiting = sum(st.queue.values())
    stages = ", ".join(f"{stage} {n}" for stage, n in sorted(st.queue.items()))
    print(f"queue: {waiting} batch(es) not yet answered" + (f" ({stages})" if stages else ""))
    if st.shunted:
        print(f"shunted: {len(st.shunted)} batch(es) after their last try, waiting for "
              "'exchanged batch requeue UID' once the cause is mended:")
        for b in st.shunted:
            print(f"  {b['uid']}  {b['agency']:<10} {b['flow']:<20} {b['batch']:<24} "
                  f"{b['stage']}")
    print("last batches:" + ("" if st.recent else " none"))
    for b in st.recent:
        outcome = f" {b['outcome']}" if b["outcome"] and b["stage"] == "answered" else ""
        print(f"  {b['received'][:19]}  {b['agency']:<10} {b['flow']:<20} {b['batch']:<24} "
              f"{b['stage']}{outcome}")
    print("agreements:")
    for a in st.agreements:
        print(f"  {a['summary']}")
        if a["in_force"]:
            print(f"    notice to extend or end due by {a['notice_due']}")
    print("next scheduled jobs:" + ("" if st.next_jobs else " (shown while the daemon runs)"))
    for job, when in sorted(st.next_jobs.items()):
        print(f"  {job:<20} {when or '-'}")
    print(f"ledger: {st.ledger_entries} entries; last checkpoint "
          f"{st.last_checkpoint or 'none yet'}")
    return 0


def add_parsers(sub: argparse._SubParsersAction[Parser], leaf: Leaf) -> None:
    """Add the parsers of init, agency add/update/list, keys rotate, run, status."""
    sp = leaf(sub, "init", cmd_init, "create a new exchange home: keys, config, ledger")
    sp.add_argument("--name", default="exchanged", help="the exchange's name (in its key)")
    sp.add_argument("--listen", default="127.0.0.1:2222", metavar="HOST:PORT",
                    help="where the SFTP server listens (default 127.0.0.1:2222)")

    agency = sub.add_parser("agency", help="register and list agencies")
    agency_sub = agency.add_subparsers(dest="agency_command", metavar="COMMAND",
                                       parser_class=Parser)
    sp = leaf(agency_sub, "add", cmd_agency_add,
              "register an agency: SFTP login key, pinned OpenPGP key, drop folders")
    sp.add_argument("id",
                    help="the agency id: its SFTP user name and its party id in the agreements")
    sp.add_argument("--name", required=True, help="the agency's full name")
    sp.add_argument("--ssh-key", required=True, metavar="FILE.pub", help="its SSH public key")
    sp.add_argument("--gpg-key", required=True, metavar="FILE.asc", help="its OpenPGP public key")
    sp = leaf(agency_sub, "update", cmd_agency_update,
              "change an agency's keys: rotate its SSH or OpenPGP key, or refresh the pinned one")
    sp.add_argument("id")
    sp.add_argument("--ssh-key", metavar="FILE.pub", help="its new SSH public key")
    sp.add_argument("--add", action="store_true",
                    help="add the SSH key beside the current ones (for a changeover)")
    sp.add_argument("--gpg-key", metavar="FILE.asc",
                    help="its new OpenPGP public key, or a new copy of the pinned one "
                    "(with a revocation or a new expiry date)")
    sp.add_argument("--witness-key", metavar="VKEY",
                    help="its witness key for cosigning checkpoints (a vkey, as its "
                    "'exchanged fetch' prints it), replacing the one registered")
    leaf(agency_sub, "list", cmd_agency_list, "list registered agencies and their pinned keys")

    keys = sub.add_parser("keys", help="rotate the exchange's own keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND", parser_class=Parser)
    sp = leaf(keys_sub, "rotate", cmd_keys_rotate,
              "replace the exchange's OpenPGP key, SSH host key or register key "
              "(daemon stopped)")
    sp.add_argument("--openpgp", action="store_true",
                    help="a new OpenPGP key, certified by the old one, announced to every agency")
    sp.add_argument("--retire-to", metavar="FILE",
                    help="with --openpgp: where the old secret key is written (move it offline)")
    sp.add_argument("--ssh-host", action="store_true", help="a new SSH host key")
    sp.add_argument("--register", action="store_true",
                    help="a new register key (keys/register.key, if it may have leaked); every "
                    "reference snapshot is removed and must be loaded again")

    batch = sub.add_parser("batch", help="put shunted batches back")
    batch_sub = batch.add_subparsers(dest="batch_command", metavar="COMMAND",
                                     parser_class=Parser)
    sp = leaf(batch_sub, "requeue", cmd_batch_requeue,
              "put batches shunted after their last try back into the pipeline")
    sp.add_argument("uid", nargs="*",
                    help="the exchange's uid of each batch ('exchanged status' lists them)")
    sp.add_argument("--all", action="store_true", help="every shunted batch")

    leaf(sub, "run", cmd_run, "run the daemon in the foreground (SFTP, processing)")
    sp = leaf(sub, "status", cmd_status,
              "the daemon, the queue, the last batches, the agreements' dates, the next jobs")
    sp.add_argument("--format", choices=("text", "json"), default="text")
