"""The daemon: start-up order, the front door's wiring, signals.

Start-up: configuration → ledger (refused if its triggers are gone) →
policies (refused if invalid) → keys → pipeline recovery (stray plaintext
wiped, cut-off uploads discarded, unfinished batches queued) → workers →
SFTP listener. SIGTERM and SIGINT stop it cleanly; SIGHUP reloads the
policies (an invalid policy keeps the old one and says why, in the log and
the ledger).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time as clock
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import Any

from exchanged import __version__
from exchanged.admin.agreements import agreement_status, today
from exchanged.admin.reminders import NOTICES_FOLDER
from exchanged.batch.pipeline import Pipeline, PolicyHolder
from exchanged.batch.state import SCHEMA as STATE_SCHEMA
from exchanged.batch.state import upgrade as upgrade_state
from exchanged.crypto.keys import Keyring
from exchanged.daemon.frontdoor import EmbeddedFront, FrontDoor, FrontEnd, OpenSSHFront
from exchanged.daemon.hooks import Hooks
from exchanged.daemon.logs import configure_logging
from exchanged.daemon.metrics import AgreementGauge, serve_metrics
from exchanged.daemon.notify import Notifier
from exchanged.daemon.scheduler import Scheduler
from exchanged.errors import ConfigError, PolicyError
from exchanged.home import Config, Home, Listen, atomic_write, load_config
from exchanged.home.agencies import Agencies
from exchanged.home.lock import take_lock
from exchanged.ledger import Ledger, format_ts, open_ledger, utc_now
from exchanged.ledger.archive import archive_policy_set
from exchanged.ledger.checkpoints import LEDGER_FOLDER
from exchanged.ledger.sessions import SCHEMA as SESSIONS_SCHEMA
from exchanged.policy import PolicySet
from exchanged.policy.loader import load_policy_files, read_policy_files
from exchanged.sftp import SFTPServer, openssh
from exchanged.sftp.limits import Limits
from exchanged.sftp.proxy import ProxySettings

log = logging.getLogger("exchanged")


def sftp_limits(config: Config) -> Limits:
    """The embedded front door's limits, as config.yaml sets them."""
    return Limits(quota_bytes=config.sftp_quota_bytes, quota_files=config.sftp_quota_files,
                  max_connections=config.sftp_max_connections,
                  reserved_connections=config.sftp_reserved_connections,
                  max_unauthenticated_per_address=config.sftp_max_unauthenticated_per_address,
                  max_unauthenticated_per_network=config.sftp_max_unauthenticated_per_network,
                  handshake_seconds=float(config.sftp_handshake_seconds),
                  safelist=config.sftp_safelist, agencies=config.agency_settings)


def _quietly(call: Callable[..., object], **kwargs: Any) -> None:
    """Aggregated failed logins are written when due; a ledger that cannot take them now
    stops intake (the Door saw to it) and does not stop the daemon."""
    try:
        call(**kwargs)
    except Exception as e:
        log.error("failed logins could not be recorded (%s)", type(e).__name__)


class Service:
    """The running exchange."""

    def __init__(self, home: Home) -> None:
        home.require()
        self.config = load_config(home)
        # in OpenSSH mode the agencies' folders are sshd chroots outside the home
        self.home = home.configured(self.config)
        self._stop = threading.Event()
        self._reload = threading.Event()
        #: the metrics endpoint as 'exchanged status' shows it (off, serving, or why not)
        self._metrics: dict[str, object] = {"listen": self.config.metrics_listen or None,
                                            "serving": False, "error": None}

    def run(self) -> int:
        os.umask(0o077)
        configure_logging(self.config)
        lock = take_lock(self.home)
        try:
            return self._run()
        finally:
            lock.close()

    def _run(self) -> int:
        # the batches' working state lives beside the ledger (created if this home predates it)
        ledger = open_ledger(self.home, extra_schema=STATE_SCHEMA + SESSIONS_SCHEMA)
        upgrade_state(ledger)
        try:
            files = read_policy_files(self.home.policies)
            policy = load_policy_files(files)
        except PolicyError as e:
            raise ConfigError(
                f"the policies are invalid, not starting: {e.diagnostics()}") from None
        holder = PolicyHolder(policy)
        openpgp = Keyring(self.home.gnupg)
        try:
            pipeline = Pipeline(self.home, self.config, ledger, openpgp, holder)
            door = FrontDoor(self.home, self.config, ledger, pipeline, holder)
            front: FrontEnd
            if self.config.front_door == "openssh":
                front = OpenSSHFront(self.home, pipeline, holder)
            else:
                limits = sftp_limits(self.config)
                proxy = ProxySettings(self.config.proxy_protocol, self.config.proxy_trusted)
                front = EmbeddedFront(SFTPServer(door, self.home.ssh_host_key,
                                                 self.config.listen, limits, proxy=proxy))
            try:
                where = front.bind()
            except OSError as e:
                raise ConfigError(f"cannot listen on {self.config.listen}: {e.strerror}") from None
            # the port is ours: only now is anything recorded or recovered
            with ledger.transaction() as txn:
                archive_policy_set(txn, files, format_ts(utc_now()))
                txn.append("exchange.started", actor="admin", version=__version__,
                           policy_sha256=policy.sha256, pid=os.getpid())
            # sessions a daemon killed mid-session left open: on record now (cut_off)
            door.sessions.recover(utc_now())
            # the hooks resume where they stopped; a new one starts with this run's events
            hooks = Hooks(self.config.hooks, ledger, self.config.hook_retry_delays,
                          self.config.name)
            hooks.prepare()
            pipeline.recover()
            pipeline.start()
            hooks.start()
            scheduler = Scheduler(self.home, self.config, ledger, holder.get)
            scheduler.start()
            front.serve()
            self._install_signals()
            log.info("exchanged %s ready: %s, policy %s", __version__, where, policy.sha256[:12])
            self._warn_agreements(policy)
            metrics = None
            if self.config.metrics_listen:
                metrics, why = serve_metrics(
                    Listen.parse(self.config.metrics_listen), ledger,
                    lambda: {"intake_open": 0.0 if pipeline.unavailable.is_set() else 1.0,
                             "connections": float(front.connections())},
                    lambda: self._agreement_gauges(holder.get()))
                self._metrics = {"listen": self.config.metrics_listen,
                                 "serving": metrics is not None, "error": why}
            # READY=1 only now: the port listens, the ledger is open, recovery is done
            notifier = Notifier()
            notifier.ready(where)
            unavailable = False
            started = format_ts(utc_now())
            last_status = 0.0
            try:
                while not self._stop.is_set():
                    self._stop.wait(0.5)
                    if (clock.monotonic() - last_status > 15
                            or pipeline.unavailable.is_set() != unavailable):
                        last_status = clock.monotonic()
                        pipeline.take_requeued()
                        self._write_status(started, where, pipeline, scheduler, holder)
                    if self._reload.is_set():
                        self._reload.clear()
                        notifier.reloading()
                        self._reload_policies(ledger, holder)
                        notifier.ready(f"{where}; policies reloaded")
                        last_status = 0.0  # status shows the policy now in force at once
                    if pipeline.unavailable.is_set() != unavailable:
                        unavailable = pipeline.unavailable.is_set()
                        notifier.status("intake stopped: the exchange cannot write"
                                        if unavailable else where)
                    notifier.watchdog(front.alive() and pipeline.workers_alive())
                    _quietly(door.tick)
            finally:
                notifier.stopping()
                log.info("exchanged stopping")
                front.stop()
                _quietly(door.tick, everything=True)
                if metrics is not None:
                    metrics.shutdown()
                scheduler.stop()
                pipeline.stop()
                hooks.stop()
                try:
                    self.home.daemon_file.unlink()
                except FileNotFoundError:
                    pass
                ledger.append("exchange.stopped", actor="admin")
        finally:
            ledger.close()
            openpgp.stop_agent()
        return 0

    def _warn_agreements(self, policy: PolicySet) -> None:
        """Every agreement not in force today, said at start and at each reload: its flows
        are refused, which an administrator should learn before an agency calls."""
        for s in agreement_status(policy, today(self.config)):
            if not s.in_force:
                log.warning("agreement not in force, its batches are refused: %s", s.sentence,
                            extra={"agreement": s.id})

    def _agreement_gauges(self, policy: PolicySet) -> list[AgreementGauge]:
        day = today(self.config)
        # its last day: the validity's end, or the day before a termination takes effect
        end = {a.id: min(a.validity.end, a.terminated_on - timedelta(days=1))
               if a.terminated_on else a.validity.end for a in policy.agreements}
        return [AgreementGauge(s.id, s.in_force, (end[s.id] - day).days)
                for s in agreement_status(policy, day)]

    def _write_status(self, started: str, sftp: str, pipeline: Pipeline,
                      scheduler: Scheduler, holder: PolicyHolder) -> None:
        """What 'exchanged status' shows of the running daemon."""
        status = {
            "pid": os.getpid(), "version": __version__, "started": started, "sftp": sftp,
            "policy_sha256": holder.get().sha256, "metrics": self._metrics,
            "intake_open": not pipeline.unavailable.is_set(),
            "intake_stopped": pipeline.intake_stopped(),
            "queued": pipeline.queue_depth(), "workers_alive": pipeline.workers_alive(),
            "next_jobs": {job: when.isoformat() if when else None
                          for job, when in scheduler.next_runs()},
            "updated": format_ts(utc_now()),
        }
        try:
            atomic_write(self.home.daemon_file, json.dumps(status, indent=2).encode())
        except OSError:
            pass

    def _install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self._stop.set()

        def reload(signum: int, frame: FrameType | None) -> None:
            self._reload.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def _reload_policies(self, ledger: Ledger, holder: PolicyHolder) -> None:
        try:
            files = read_policy_files(self.home.policies)
            policy = load_policy_files(files)
        except Exception as e:  # whatever breaks a reload, the running policy stays
            if not isinstance(e, PolicyError):
                e = PolicyError(f"the policies could not be loaded ({type(e).__name__})")
            log.error("policy reload refused, the previous policy stays: %s", e.diagnostics())
            ledger.append("policy.reload_failed", actor="admin", error=e.diagnostics()[:500],
                          policy_sha256=holder.get().sha256)
            return
        holder.set(policy)
        agencies = Agencies(self.home)
        for agency_id, agency in agencies.all().items():
            outbox = (*policy.outbox_flows(agency_id), LEDGER_FOLDER, NOTICES_FOLDER)
            if self.home.shared_drop:
                openssh.prepare_tree(self.config, agency_id, [k.line for k in agency.ssh_keys],
                                     policy.inbox_flows(agency_id), outbox)
            else:
                agencies.prepare_tree(agency_id, policy.inbox_flows(agency_id), outbox)
        with ledger.transaction() as txn:
            archive_policy_set(txn, files, format_ts(utc_now()))
            txn.append("policy.reloaded", actor="admin", policy_sha256=policy.sha256,
                       files=len(policy.files))
        log.info("policies reloaded: %s", policy.sha256[:12])
        self._warn_agreements(policy)
