"""The functions APScheduler calls. Module-level, taking ids and plain values only.

psiTurk pickled a Campaign ORM object into each job, so a job ran on a stale snapshot and
a changed goal needed ``job.modify``. Here a job's state is ``{"campaign_id": 3}``: the
function reads the campaign fresh from the database on every run. What a run needs that
cannot be pickled (the database, the clock, the marketplace) is the runner's environment,
installed once per runner process with ``install``.

Every run is recorded in ``turnout_task_run`` (start, end, outcome, counts, error);
a run that was not due leaves no row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from turnout.clock import Clock
from turnout.config import Settings
from turnout.db.engine import Database
from turnout.services import campaigns, tasks
from turnout.services.recruitment import MarketContext

log = logging.getLogger("turnout.scheduler")

CAMPAIGN_JOB = "turnout.scheduler.jobs:campaign_job"
TASK_JOB = "turnout.scheduler.jobs:task_job"
ROUND_OUTCOMES = {"posted": "ok", "resumed": "ok", "ended": "ok", "nothing": "noop", "skipped": "skipped",
                  "failed": "failed"}


@dataclass
class RunnerEnv:
    """What jobs in this process run with: one database, one clock, a way to open a
    marketplace for a mode, and the project's settings (re-read, so a changed
    experiment_code_version is seen)."""

    db: Database
    clock: Clock
    settings: Callable[[], Settings]
    market: Callable[[str], AbstractContextManager[Any]]
    holder: str
    arrivals: Any | None = None

    @property
    def actor(self) -> str:
        return f"scheduler:{self.holder}"[:128]

    @contextmanager
    def context(self, mode: str) -> Iterator[MarketContext]:
        settings = self.settings()
        with self.market(mode) as client:
            yield MarketContext(db=self.db, settings=settings, clock=self.clock, mode=mode, client=client,
                                actor=self.actor)


_env: RunnerEnv | None = None


def install(env: RunnerEnv | None) -> None:
    global _env
    _env = env


def current() -> RunnerEnv:
    if _env is None:
        raise RuntimeError("no runner environment in this process; jobs run only in a runner (turnout scheduler)")
    return _env


def campaign_job(campaign_id: int, force: bool = False) -> str:
    """One campaign round (if due). Returns the round's outcome."""
    env = current()
    try:
        mode = campaigns.get(env.db, campaign_id)["mode"]
    except Exception as exc:  # removed meanwhile: the runner drops the job at its next look
        log.info("campaign %s: %s", campaign_id, exc)
        return "skipped"
    outcome = "skipped"
    with tasks.recorded_run(env.db, env.clock, campaigns.job_id(campaign_id), "campaign", runner=env.holder) as run:
        with env.context(mode) as ctx:
            result = campaigns.run_round(ctx, campaign_id, force=force)
        outcome = result.outcome
        run.outcome = ROUND_OUTCOMES.get(result.outcome, "ok")
        run.counts = {**result.counts(), "result": result.outcome}
        if result.note:
            run.counts["note"] = result.note
        if result.outcome == "failed":
            run.error = result.note
        log.info("campaign %s round %s: %s %s", campaign_id, result.number, result.outcome, result.note)
    return outcome


def task_job(task_id: int, force: bool = False) -> str:
    """One run of a scheduled task (if due)."""
    env = current()
    task = tasks.claim_run(env.db, env.clock, task_id, force=force)
    if task is None:
        return "skipped"
    outcome = "ok"
    with tasks.recorded_run(env.db, env.clock, tasks.job_id(task_id), task.kind, runner=env.holder) as run:
        run.outcome = "failed"  # until it returns
        with env.context(task.mode) as ctx:
            done = tasks.run_approve_all(ctx, task)
        run.counts = {**done["counts"], "paid": done["paid"], "mode": task.mode, "codeversion": task.codeversion}
        run.outcome = "ok" if done["ok"] else "failed"
        if not done["counts"]:
            run.outcome = "noop"
        outcome = run.outcome
        log.info("task %s (%s %s %s): %s", task_id, task.kind, task.mode, task.codeversion, done["counts"])
    return outcome


def settle_job() -> None:
    """Drain the ledger: finish entries left unknown, claimed by a process that died, or
    pending (written, never sent), in every mode that has some (payments.settle_all, the
    same as ``turnout ledger settle``). Safe next to the CLI and the dashboard: the
    ledger's claim lets one process call the marketplace per entry."""
    from turnout.services import payments

    env = current()
    L = env.db.models.LedgerEntry
    with env.db.begin() as session:
        modes = list(session.scalars(select(L.mode).distinct().where(
            L.study == env.db.tables.participants, L.state.in_(payments.UNSETTLED))))
    for mode in modes:
        with tasks.recorded_run(env.db, env.clock, f"ledger-settle-{mode}", "ledger-settle",
                                runner=env.holder) as run:
            with env.context(mode) as ctx:
                result = payments.settle_all(ctx)
            run.counts = {**result.counts(), "mode": mode}
            run.outcome = "ok" if result.ok else "failed"
            if not result.items:
                run.outcome = "noop"


def arrivals_job(seconds: float) -> None:
    """Send the simulated workers due in the next ``seconds`` (make demo's arrivals)."""
    env = current()
    if env.arrivals is not None:
        env.arrivals.tick(seconds)


def run_pending(env: RunnerEnv | None = None, *, force: bool = False) -> dict[str, str]:
    """Run every active campaign's and task's job once, now, in this thread.

    What APScheduler does on its own clock, for tests and the benchmark that drive a
    ManualClock: each job still decides for itself whether it is due.
    """
    if env is not None:
        install(env)
    env = current()
    done: dict[str, str] = {}
    for campaign_id in campaigns.active_campaign_ids(env.db):
        done[campaigns.job_id(campaign_id)] = campaign_job(campaign_id, force=force)
    for task_id, _ in tasks.active_task_ids(env.db):
        done[tasks.job_id(task_id)] = task_job(task_id, force=force)
    return done
