"""The daemon's scheduled jobs (APScheduler): ledger checkpoints, on a fixed interval.

A job that was due while the daemon was down runs at start-up: the next
checkpoint is due one interval after the latest one on disk, or at once if
that moment has passed (or there is none).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from exchanged.checkpoints import latest, make_checkpoint
from exchanged.home import Config, Home
from exchanged.ledger import Ledger

log = logging.getLogger("exchanged.scheduler")


class Scheduler:
    def __init__(self, home: Home, config: Config, ledger: Ledger) -> None:
        self.home = home
        self.config = config
        self.ledger = ledger
        self._scheduler = BackgroundScheduler(timezone=UTC)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

    def start(self) -> None:
        interval = timedelta(hours=self.config.checkpoint_interval_hours)
        self._scheduler.add_job(
            self.checkpoint, IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
            id="ledger-checkpoint", next_run_time=self._first_checkpoint(interval),
            coalesce=True, max_instances=1, misfire_grace_time=None,
        )
        self._scheduler.start()

    def _first_checkpoint(self, interval: timedelta) -> datetime:
        now = datetime.now(UTC)
        path = latest(self.home)
        if path is None:
            return now
        due = datetime.fromtimestamp(path.stat().st_mtime, UTC) + interval
        return max(now, due)

    def checkpoint(self) -> None:
        try:
            make_checkpoint(self.home, self.ledger)
        except Exception as e:  # a job never brings the daemon down; it is retried next time
            log.error("the scheduled ledger checkpoint failed (%s)", type(e).__name__)
        finally:
            self.ledger.close()

    def next_runs(self) -> list[tuple[str, datetime | None]]:
        return [(job.id, job.next_run_time) for job in self._scheduler.get_jobs()]

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
