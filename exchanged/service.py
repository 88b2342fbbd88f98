"""The daemon: start-up order, the front door's wiring, signals.

Start-up: configuration → ledger (refused if its triggers are gone) →
policies (refused if invalid) → keys → pipeline recovery (stray plaintext
wiped, cut-off uploads discarded, unfinished batches queued) → workers →
SFTP listener. SIGTERM and SIGINT stop it cleanly; SIGHUP reloads the
policies (an invalid policy keeps the old one and says why, in the log and
the ledger).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time as clock
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol

import paramiko

from exchanged import __version__, openssh
from exchanged.admin import open_ledger
from exchanged.agencies import Agencies
from exchanged.checkpoints import LEDGER_FOLDER
from exchanged.errors import ConfigError, PolicyError
from exchanged.home import Config, Home, Listen, atomic_write, load_config
from exchanged.ledger import Ledger, format_ts, utc_now
from exchanged.metrics import serve_metrics
from exchanged.notify import Notifier
from exchanged.openpgp import OpenPGP
from exchanged.pipeline import Pipeline, PolicyHolder, resource_error
from exchanged.policy.loader import load_policy_files, read_policy_files
from exchanged.reminders import NOTICES_FOLDER
from exchanged.scheduler import Scheduler
from exchanged.sftp import SFTPServer
from exchanged.sftp.limits import Limits
from exchanged.spool import Upload
from exchanged.state import archive_policy_set

log = logging.getLogger("exchanged")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created).astimezone().isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            # the type only: a traceback's frames could quote values
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        # a traceback's locals never reach the log; its frames only with debug logging
        if logging.getLogger("exchanged").isEnabledFor(logging.DEBUG):
            return super().formatException(ei)
        return f"  ({ei[0].__name__})"


def configure_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    # paramiko logs tracebacks of client misbehaviour at DEBUG/ERROR; keep it quiet
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)


class FrontDoor:
    """What the SFTP server may ask of the exchange (implements
    :class:`exchanged.sftp.door.GuardedDoor`: a Door that also counts an agency's queue
    for its quota and records bans)."""

    def __init__(self, home: Home, config: Config, ledger: Ledger, pipeline: Pipeline,
                 policy: PolicyHolder) -> None:
        self.home = home
        self.config = config
        self.ledger = ledger
        self.pipeline = pipeline
        self.policy = policy
        self.agencies = Agencies(home)

    def _append(self, kind: str, **fields: Any) -> None:
        """Write a ledger entry for the front door. If the exchange cannot write, intake
        stops in the pipeline exactly as when a batch finds it out (and exchange.available
        is recorded once it can write again), then the error goes on to the caller, which
        refuses what it could not record."""
        try:
            self.ledger.append(kind, **fields)
        except Exception as e:
            # this thread's connection may have been left unable to write: a new one next time
            self.ledger.close()
            problem = resource_error(e)
            if problem is not None:
                self.pipeline.cannot_write(problem)
            raise

    def authenticate(self, username: str, key: paramiko.PKey) -> bool:
        agency = self.agencies.get(username)
        return agency is not None and agency.accepts(key)

    def login_failed(self, username: str, remote: str, attempts: int) -> None:
        known = self.agencies.get(username) is not None
        fields: dict[str, object] = {"remote": remote, "attempts": attempts, "known_user": known}
        if known:
            fields["agency"] = username
        else:
            # an unknown user name is not written as such: it could be anything
            fields["user_sha256"] = _sha256(username)
        self._append("login.failed", actor="unknown", **fields)
        log.warning("login failed from %s (%s user, %d attempts)", remote,
                    "known" if known else "unknown", attempts)

    def login_succeeded(self, agency: str, remote: str) -> None:
        self._append("login.succeeded", agency=agency, actor=agency, remote=remote)

    def address_banned(self, address: str, score: int, seconds: int, count: int) -> None:
        # an address (or an IPv6 /64) is the network's, not a citizen's: it may be recorded
        self._append("login.banned", actor="exchange", address=address, score=score,
                     seconds=seconds, count=count)

    def unanswered(self, agency: str) -> tuple[int, int]:
        return self.pipeline.state.unanswered(agency)

    def inbox_flows(self, agency: str) -> tuple[str, ...]:
        return self.policy.get().inbox_flows(agency)

    def outbox_flows(self, agency: str) -> tuple[str, ...]:
        # every agency also collects the ledger's signed checkpoints, and notices
        return (*self.policy.get().outbox_flows(agency), LEDGER_FOLDER, NOTICES_FOLDER)

    def inbox_dir(self, agency: str, flow: str) -> Path:
        return self.home.inbox(agency, flow)

    def outbox_dir(self, agency: str, flow: str) -> Path:
        return self.home.outbox(agency, flow)

    def max_upload_bytes(self, agency: str, flow: str) -> int:
        found = self.policy.get().find_flow(flow)
        limit = found[1].max_bytes if found and found[1].max_bytes else self.config.max_upload_bytes
        return min(limit, self.config.max_upload_bytes)

    def new_upload(self, agency: str, flow: str, name: str) -> Upload:
        return self.pipeline.new_upload(agency, flow, name)

    def adopt(self, agency: str, flow: str, path: Path, name: str) -> Upload:
        return self.pipeline.adopt(agency, flow, path, name)

    def receive(self, upload: Upload) -> str:
        return self.pipeline.receive(upload)

    def discard(self, upload: Upload, why: str) -> None:
        self.pipeline.discard(upload, why)

    def outcome_event(self, agency: str, flow: str, name: str, event: str, size: int) -> None:
        batch = self.pipeline.state.outcome_owner(agency, flow, name)
        self._append(f"outcome.{event}", agency=agency, flow=flow, batch=batch,
                     actor=agency, bytes=size, name_sha256=_sha256(name))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


class FrontEnd(Protocol):
    """How agencies reach the exchange: the embedded SFTP server, or sshd's chroots."""

    def bind(self) -> str: ...

    def serve(self) -> None: ...

    def alive(self) -> bool: ...

    def connections(self) -> int: ...

    def stop(self) -> None: ...


class EmbeddedFront:
    def __init__(self, server: SFTPServer) -> None:
        self.server = server

    def bind(self) -> str:
        host, port = self.server.bind()
        return f"SFTP on {host}:{port}"

    def serve(self) -> None:
        self.server.serve()

    def alive(self) -> bool:
        return self.server.alive()

    def connections(self) -> int:
        return self.server.connections()

    def stop(self) -> None:
        self.server.stop()


class OpenSSHFront:
    """OpenSSH mode: take complete uploads from the agencies' chroot inboxes."""

    def __init__(self, home: Home, pipeline: Pipeline, policy: PolicyHolder) -> None:
        self.home = home
        self.pipeline = pipeline
        self.policy = policy
        self.agencies = Agencies(home)
        self.watcher = openssh.Watcher(home.drop, self.take)

    def take(self, agency: str, flow: str, path: Path, name: str) -> None:
        if self.agencies.get(agency) is None or flow not in self.policy.get().inbox_flows(agency):
            log.warning("a file in a folder that is no agency's inbox was left alone")
            return
        upload = self.pipeline.adopt(agency, flow, path, name)
        self.pipeline.receive(upload)

    def bind(self) -> str:
        if not self.home.drop.is_dir():
            raise ConfigError(f"the OpenSSH chroots' folder {self.home.drop} does not exist; "
                              "register the agencies first ('exchanged agency add')")
        return f"OpenSSH mode, watching {self.home.drop}"

    def serve(self) -> None:
        self.watcher.start()

    def alive(self) -> bool:
        return self.watcher.alive()

    def connections(self) -> int:
        return 0

    def stop(self) -> None:
        self.watcher.stop()


class Service:
    """The running exchange."""

    def __init__(self, home: Home) -> None:
        home.require()
        self.config = load_config(home)
        # in OpenSSH mode the agencies' folders are sshd chroots outside the home
        self.home = home.configured(self.config)
        self._stop = threading.Event()
        self._reload = threading.Event()

    def run(self) -> int:
        os.umask(0o077)
        configure_logging(self.config)
        lock = self._lock()
        try:
            return self._run()
        finally:
            lock.close()

    def _lock(self) -> IO[str]:
        """One daemon per home: a second one would wipe the first one's work area."""
        path = self.home.root / "exchanged.pid"
        f = open(path, "a+", encoding="ascii")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "unknown"
            f.close()
            raise ConfigError(f"another exchanged is already running on {self.home.root} "
                              f"(pid {pid})") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        return f

    def _run(self) -> int:
        ledger = open_ledger(self.home)
        try:
            files = read_policy_files(self.home.policies)
            policy = load_policy_files(files)
        except PolicyError as e:
            raise ConfigError(f"the policies are invalid, not starting: {e.diagnostics()}") from None
        holder = PolicyHolder(policy)
        openpgp = OpenPGP(self.home.gnupg)
        try:
            pipeline = Pipeline(self.home, self.config, ledger, openpgp, holder)
            door = FrontDoor(self.home, self.config, ledger, pipeline, holder)
            front: FrontEnd
            if self.config.front_door == "openssh":
                front = OpenSSHFront(self.home, pipeline, holder)
            else:
                limits = Limits(quota_bytes=self.config.sftp_quota_bytes,
                                quota_files=self.config.sftp_quota_files)
                front = EmbeddedFront(SFTPServer(door, self.home.ssh_host_key,
                                                 self.config.listen, limits))
            try:
                where = front.bind()
            except OSError as e:
                raise ConfigError(f"cannot listen on {self.config.listen}: {e.strerror}") from None
            # the port is ours: only now is anything recorded or recovered
            with ledger.transaction() as txn:
                archive_policy_set(txn, policy.sha256, files, format_ts(utc_now()))
                txn.append("exchange.started", actor="admin", version=__version__,
                           policy_sha256=policy.sha256, pid=os.getpid())
            pipeline.recover()
            pipeline.start()
            scheduler = Scheduler(self.home, self.config, ledger, holder.get)
            scheduler.start()
            front.serve()
            self._install_signals()
            log.info("exchanged %s ready: %s, policy %s", __version__, where, policy.sha256[:12])
            metrics = None
            if self.config.metrics_listen:
                metrics = serve_metrics(Listen.parse(self.config.metrics_listen), ledger,
                                        lambda: {"intake_open": 0.0 if pipeline.unavailable.is_set()
                                                 else 1.0,
                                                 "connections": float(front.connections())})
            # READY=1 only now: the port listens, the ledger is open, recovery is done
            notifier = Notifier()
            notifier.ready(where)
            unavailable = False
            started = format_ts(utc_now())
            last_status = 0.0
            try:
                while not self._stop.is_set():
                    self._stop.wait(0.5)
                    if clock.monotonic() - last_status > 15:
                        last_status = clock.monotonic()
                        self._write_status(started, where, pipeline, scheduler)
                    if self._reload.is_set():
                        self._reload.clear()
                        notifier.reloading()
                        self._reload_policies(ledger, holder)
                        notifier.ready(f"{where}; policies reloaded")
                    if pipeline.unavailable.is_set() != unavailable:
                        unavailable = pipeline.unavailable.is_set()
                        notifier.status("intake stopped: the exchange cannot write"
                                        if unavailable else where)
                    notifier.watchdog(front.alive() and pipeline.workers_alive())
            finally:
                notifier.stopping()
                log.info("exchanged stopping")
                front.stop()
                if metrics is not None:
                    metrics.shutdown()
                scheduler.stop()
                pipeline.stop()
                try:
                    self.home.daemon_file.unlink()
                except FileNotFoundError:
                    pass
                ledger.append("exchange.stopped", actor="admin")
        finally:
            ledger.close()
            openpgp.stop_agent()
        return 0

    def _write_status(self, started: str, sftp: str, pipeline: Pipeline,
                      scheduler: Scheduler) -> None:
        """What 'exchanged status' shows of the running daemon."""
        status = {
            "pid": os.getpid(), "version": __version__, "started": started, "sftp": sftp,
            "intake_open": not pipeline.unavailable.is_set(),
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
            archive_policy_set(txn, policy.sha256, files, format_ts(utc_now()))
            txn.append("policy.reloaded", actor="admin", policy_sha256=policy.sha256,
                       files=len(policy.files))
        log.info("policies reloaded: %s", policy.sha256[:12])
