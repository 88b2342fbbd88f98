"""The daemon's scheduled jobs (APScheduler): checkpoints, retention, reminders.

- a ledger checkpoint every ``checkpoint_interval_hours``, and also as soon as
  ``checkpoint_every_entries`` entries were written since the last one, or
  ``checkpoint_every_minutes`` after it if anything was written meanwhile (looked at
  every few seconds: two indexed look-ups), so that the newest entries are soon held
  by a checkpoint in the agencies' hands (cutting them off unnoticed needs it);
- retention (exchanged.admin.retention) and reminders (exchanged.admin.reminders) daily.

A job that was due while the daemon was down runs at start-up: the next
checkpoint is due one interval after the latest one on disk, or at once if that
moment has passed (or there is none); retention and reminders run at every
start, then daily. Every job's work is recorded in the ledger by the job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from exchanged.admin.reminders import run_reminders
from exchanged.admin.retention import run_retention
from exchanged.home import Config, Home
from exchanged.ledger import Ledger
from exchanged.ledger.checkpoints import (
    checkpoint_due,
    latest,
    make_checkpoint,
    since_last_checkpoint,
)
from exchanged.ledger.timestamps import stamp_pending
from exchanged.policy.model import PolicySet

DAILY = timedelta(days=1)
#: how often the daemon looks whether a checkpoint is due by entries or minutes
DUE_CHECK = timedelta(seconds=5)

log = logging.getLogger("exchanged.daemon.scheduler")


class Scheduler:
    def __init__(self, home: Home, config: Config, ledger: Ledger,
                 policy: Callable[[], PolicySet]) -> None:
        self.home = home
        self.config = config
        self.ledger = ledger
        self.policy = policy
        self._scheduler = BackgroundScheduler(timezone=UTC)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        # one checkpoint at a time, whichever job makes it
        self._checkpointing = threading.Lock()
        # the due check's failure is logged once, not every few seconds while it lasts
        self._due_failing = False

    def start(self) -> None:
        interval = timedelta(hours=self.config.checkpoint_interval_hours)
        self._scheduler.add_job(
            self.checkpoint, IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
            id="ledger-checkpoint", next_run_time=self._first_checkpoint(interval),
            coalesce=True, max_instances=1, misfire_grace_time=None,
        )
        if self.config.checkpoint_every_entries or self.config.checkpoint_every_minutes:
            self._scheduler.add_job(
                self.checkpoint_if_due,
                IntervalTrigger(seconds=DUE_CHECK.total_seconds(), timezone=UTC),
                id="ledger-checkpoint-due", coalesce=True, max_instances=1,
                misfire_grace_time=None,
            )
        now = datetime.now(UTC)
        if self.config.timestamp_url:
            # RFC 3161 tokens for checkpoints: right after each checkpoint (see _stamp_soon),
            # and every timestamp_retry_minutes for those the authority failed to stamp
            self._scheduler.add_job(
                self.timestamps,
                IntervalTrigger(minutes=self.config.timestamp_retry_minutes, timezone=UTC),
                id="timestamps", next_run_time=now, coalesce=True, max_instances=1,
                misfire_grace_time=None,
            )
        for job_id, job in (("retention", self.retention), ("reminders", self.reminders)):
            self._scheduler.add_job(
                job, IntervalTrigger(seconds=DAILY.total_seconds(), timezone=UTC), id=job_id,
                next_run_time=now, coalesce=True, max_instances=1, misfire_grace_time=None,
            )
        self._scheduler.start()

    def _first_checkpoint(self, interval: timedelta) -> datetime:
        now = datetime.now(UTC)
        path = latest(self.home)
        if path is None:
            return now
        due = datetime.fromtimestamp(path.stat().st_mtime, UTC) + interval
        return max(now, due)

    def _run(self, name: str, job: Callable[[], object]) -> None:
        try:
            job()
        except Exception as e:  # a job never brings the daemon down; it is retried next time
            log.error("the scheduled %s failed (%s)", name, type(e).__name__,
                      exc_info=log.isEnabledFor(logging.DEBUG))
        finally:
            self.ledger.close()

    def checkpoint(self) -> None:
        def job() -> object:
            with self._checkpointing:
                made = make_checkpoint(self.home, self.ledger)
            self._stamp_soon()
            return made

        self._run("ledger checkpoint", job)

    def _stamp_soon(self) -> None:
        """Wake the timestamps job: a new checkpoint is waiting for its token (asked in that
        job's thread, so a slow authority never holds a checkpoint up)."""
        if self.config.timestamp_url and self._scheduler.running:
            self._scheduler.modify_job("timestamps", next_run_time=datetime.now(UTC))

    def timestamps(self) -> None:
        self._run("timestamps", lambda: stamp_pending(self.home, self.ledger, self.config))

    def checkpoint_if_due(self) -> None:
        """A checkpoint if ``checkpoint_every_entries`` or ``checkpoint_every_minutes`` says
        one is due."""
        try:
            with self._checkpointing:
                since = since_last_checkpoint(self.ledger)
                if checkpoint_due(since, datetime.now(UTC),
                                  every_entries=self.config.checkpoint_every_entries,
                                  every_minutes=self.config.checkpoint_every_minutes):
                    make_checkpoint(self.home, self.ledger)
                    self._stamp_soon()
            self._due_failing = False
        except Exception as e:  # retried at the next look; said once while it lasts
            if not self._due_failing:
                log.error("the scheduled ledger checkpoint failed (%s)", type(e).__name__,
                          exc_info=log.isEnabledFor(logging.DEBUG))
            self._due_failing = True
        finally:
            self.ledger.close()

    def retention(self) -> None:
        self._run("retention", lambda: run_retention(self.home, self.config, self.ledger,
                                                     self.policy(), datetime.now(UTC)))

    def reminders(self) -> None:
        def job() -> object:
            now = datetime.now(UTC)
            return run_reminders(self.home, self.ledger, self.policy(), now,
                                 now.astimezone(self.config.zone).date())

        self._run("reminders", job)

    def next_runs(self) -> list[tuple[str, datetime | None]]:
        return [(job.id, job.next_run_time) for job in self._scheduler.get_jobs()]

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
