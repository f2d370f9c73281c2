"""The runner: APScheduler 3 over the project's job table, held to one process by a lease.

Why only the runner touches APScheduler: APScheduler 3's FAQ says a job store cannot be
shared by several schedulers (none locks, each runs every job), and a running scheduler
is not woken by jobs another process writes (psiTurk's runner slept until restarted).
So other processes (CLI, dashboard, API) never write the job table; they write campaign
and task *rows*, transactionally and with their constraints, and the runner turns rows
into jobs: every ``poll_seconds`` it compares the two and adds, reschedules or removes
jobs. A campaign created elsewhere therefore has its first round within a few seconds.

Jobs live in ``jobs_table_name`` through SQLAlchemyJobStore (so next run times survive a
restart) and carry only ids. ``coalesce`` and ``misfire_grace_time=None``: rounds missed
while no runner ran are made up once, not once per missed interval, and never dropped.
The runner's own housekeeping (sync, ledger settling, demo arrivals) runs from an
in-memory job store: it belongs to this process, not to the database. The lease heartbeat
has its own thread, so busy job threads never delay it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from turnout.clock import Clock, SystemClock
from turnout.config import Settings
from turnout.db.engine import Database
from turnout.scheduler import jobs
from turnout.scheduler.lease import LEASE_SECONDS, RENEW_SECONDS, Lease
from turnout.services import campaigns, tasks

log = logging.getLogger("turnout.scheduler")

POLL_SECONDS = 2.0          # how soon a task created by another process is noticed
SETTLE_MINUTES = 5          # ledger entries left unknown are retried this often
ARRIVALS_TICK_SECONDS = 1.0


def _market_opener(settings: Callable[[], Settings], clock: Clock,
                   endpoint: str | None) -> Callable[[str], AbstractContextManager[Any]]:
    from turnout.marketplace.factory import marketplace_for

    def opener(mode: str) -> AbstractContextManager[Any]:
        # The process's one marketplace for the mode (built on first use, then kept).
        market = marketplace_for(settings(), mode, clock=clock, endpoint_url=endpoint if mode == "local" else None,
                                 check_credentials=False)
        return nullcontext(market.client)  # type: ignore[attr-defined]

    return opener


class Runner:
    """One runner process's scheduler. ``start`` takes the lease (or raises LeaseHeld)."""

    def __init__(self, settings: Settings, db: Database, *, clock: Clock | None = None,
                 reload_settings: bool = True, market: Callable[[str], AbstractContextManager[Any]] | None = None,
                 endpoint: str | None = None, poll_seconds: float = POLL_SECONDS,
                 lease_seconds: float = LEASE_SECONDS, renew_seconds: float = RENEW_SECONDS,
                 arrivals: bool = True) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock or SystemClock()
        self.poll_seconds = poll_seconds
        self.renew_seconds = renew_seconds
        self.lease = Lease.for_this_process(db, self.clock, lease_seconds)
        self.stopped = threading.Event()
        self.lost_lease = False
        self.scheduler: Any = None
        self._with_arrivals = arrivals
        self._beat: threading.Thread | None = None

        def current_settings() -> Settings:
            if not reload_settings:
                return self.settings
            from turnout.config import ConfigError, load_settings

            try:
                self.settings = load_settings(self.settings.project_dir)
            except ConfigError as exc:  # keep the last good settings; say why once per read
                log.error("runner: config.txt cannot be read (%s); using the settings read before", exc)
            return self.settings

        self.env = jobs.RunnerEnv(db=db, clock=self.clock, settings=current_settings,
                                  market=market or _market_opener(current_settings, self.clock, endpoint),
                                  holder=self.lease.holder)

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        self.lease.acquire()
        jobs.install(self.env)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.db.engine, tablename=self.db.tables.jobs),
                       "runner": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC)
        add = self.scheduler.add_job
        add(self.sync, "interval", seconds=self.poll_seconds, id="runner-sync", jobstore="runner")
        add(jobs.settle_job, "interval", minutes=SETTLE_MINUTES, id="ledger-settle", jobstore="runner",
            next_run_time=datetime.now(UTC) + timedelta(seconds=10))
        settings = self.settings
        if self._with_arrivals and settings.default_mode == "local" and settings.simulate_arrival_rate > 0:
            self.env.arrivals = _make_arrivals(settings)
            add(jobs.arrivals_job, "interval", seconds=ARRIVALS_TICK_SECONDS, id="simulate-arrivals",
                jobstore="runner", kwargs={"seconds": ARRIVALS_TICK_SECONDS}, next_run_time=datetime.now(UTC))
        self.scheduler.start()
        # The heartbeat has a thread of its own: jobs that keep every pool thread busy (a
        # long approve-all) must not delay the lease renewal past its expiry.
        self._beat = threading.Thread(target=self._beat_loop, name="runner-heartbeat", daemon=True)
        self._beat.start()
        self.sync()
        log.warning("turnout runner %s started for %s (job table %s)", self.lease.holder,
                    settings.project_dir, self.db.tables.jobs)

    def stop(self) -> None:
        self.stopped.set()

    def shutdown(self) -> None:
        """Stop scheduling, let running jobs finish, give the lease back."""
        self.stopped.set()  # ends the heartbeat thread
        if self.env.arrivals is not None:
            self.env.arrivals.stop.set()  # first, so a running arrivals tick ends at once
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        jobs.install(None)
        if not self.lost_lease:
            try:
                self.lease.release()
            except Exception:  # the database went away: the lease simply expires
                log.exception("runner: could not release the lease")

    def run_forever(self, watch_pid: int | None = None) -> int:
        """Run until stopped (a signal, the watched process ending, or a lost lease)."""
        self.start()
        try:
            while not self.stopped.wait(1.0):
                if watch_pid is not None and not _alive(watch_pid):
                    log.warning("runner: the server process %d is gone; stopping", watch_pid)
                    break
        finally:
            self.shutdown()
        return 1 if self.lost_lease else 0

    # --- housekeeping jobs ----------------------------------------------------------------------

    def _beat_loop(self) -> None:
        while not self.stopped.wait(self.renew_seconds):
            self.heartbeat()

    def heartbeat(self) -> None:
        try:
            kept = self.lease.renew()
        except Exception:
            log.exception("runner: could not renew the lease; will retry")
            return
        if not kept:
            log.error("runner %s: lost the lease (another runner took over after it expired); stopping now",
                      self.lease.holder)
            self.lost_lease = True
            if self.scheduler is not None:
                self.scheduler.pause()
            self.stopped.set()

    def sync(self) -> None:
        """Make the job table match the active campaigns and tasks."""
        if self.lost_lease or self.scheduler is None:
            return
        try:
            self._sync()
        except Exception:
            log.exception("runner: could not read campaigns and tasks; will retry")

    def _sync(self) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        M = campaigns.models(self.db)
        wanted: dict[str, tuple[str, dict[str, Any], int, datetime | None]] = {}
        with self.db.begin() as session:
            from sqlalchemy import select

            C = M.Campaign
            for cid, minutes, due in session.execute(select(C.id, C.interval_minutes, C.next_round_at).where(
                    C.study == campaigns.study_of(self.db), C.active_key.is_not(None))):
                wanted[campaigns.job_id(cid)] = (jobs.CAMPAIGN_JOB, {"campaign_id": cid}, minutes, due)
            T = M.Task
            for tid, minutes, due in session.execute(select(T.id, T.interval_minutes, T.next_run_at).where(
                    T.study == campaigns.study_of(self.db), T.removed_at.is_(None))):
                wanted[tasks.job_id(tid)] = (jobs.TASK_JOB, {"task_id": tid}, minutes, due)
        existing = {job.id: job for job in self.scheduler.get_jobs(jobstore="default")}
        for job_id in set(existing) - set(wanted):
            self.scheduler.remove_job(job_id, jobstore="default")
            log.info("runner: removed job %s", job_id)
        now = datetime.now(UTC)
        for job_id, (func, kwargs, minutes, due) in wanted.items():
            job = existing.get(job_id)
            interval = timedelta(minutes=minutes)
            if job is not None and getattr(job.trigger, "interval", None) == interval:
                continue
            first = now if due is None or due <= now else due
            self.scheduler.add_job(func, IntervalTrigger(minutes=minutes, timezone=UTC), id=job_id, name=job_id,
                                   kwargs=kwargs, jobstore="default", next_run_time=first, replace_existing=True)
            log.info("runner: scheduled %s every %d minute(s), next at %s", job_id, minutes, first.isoformat())


def _make_arrivals(settings: Settings) -> Any:
    from turnout.simulation.arrivals import ARRIVAL_DROPOUT, ARRIVAL_PACE, Arrivals, option

    arrivals = Arrivals(settings, rate_per_minute=settings.simulate_arrival_rate,
                        pace=option(settings, "simulate_pace", ARRIVAL_PACE, 0.0, 10.0),
                        dropout=option(settings, "simulate_dropout", ARRIVAL_DROPOUT, 0.0, 1.0))
    arrivals.announce()
    return arrivals


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
