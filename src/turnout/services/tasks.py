"""Scheduled tasks, the record of every run, and whether a runner is alive.

A task is a row (``turnout_task``) any process may add or remove; the runner turns each
into an APScheduler job. Today there is one kind, ``approve-all``: at an interval of at
least 30 minutes (psiTurk's minimum), approve every Submitted assignment of the task's
own mode and codeversion through the payments ledger. psiTurk's task approved every
submitted row of every mode and codeversion through one mode's endpoint (§10 item 8).

Each run first claims its slot with a conditional UPDATE of ``next_run_at``, so even two
runners that both believe they hold the lease cannot run one task twice for one slot.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from turnout.clock import Clock
from turnout.config import MODES, Settings
from turnout.db.engine import Database
from turnout.errors import Conflict, InvalidInput, NotFound
from turnout.services.campaigns import DUE_SLACK, models, study_of
from turnout.services.recruitment import MarketContext

KINDS = ("approve-all",)
MIN_INTERVAL_MINUTES = 30


def job_id(task_id: int) -> str:
    return f"task-{task_id}"


def _interval(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"the interval must be a whole number of minutes, got {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise InvalidInput(f"the interval must be a whole number of minutes, got {value!r}")
    if value < MIN_INTERVAL_MINUTES:
        raise InvalidInput(f"the interval must be at least {MIN_INTERVAL_MINUTES} minutes, got {value}")
    return value


def add(db: Database, settings: Settings, clock: Clock, kind: str, *, interval_minutes: Any,
        mode: str | None = None, codeversion: str | None = None, actor: str = "cli") -> dict[str, Any]:
    """Schedule a task; its first run is one interval from now."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown task {kind!r}; known: {', '.join(KINDS)}")
    minutes = _interval(interval_minutes)
    mode = mode or settings.default_mode
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    codeversion = settings.codeversion if codeversion is None else codeversion.strip()
    if not codeversion or len(codeversion) > 128:
        raise InvalidInput("the codeversion must be 1 to 128 characters")
    T = models(db).Task
    study = study_of(db)
    now = clock.now()
    with db.begin(immediate=True) as session:
        same = session.scalar(select(T.id).where(T.study == study, T.kind == kind, T.mode == mode,
                                                 T.codeversion == codeversion, T.removed_at.is_(None)))
        if same is not None:
            raise Conflict(f"task {same} already does {kind} for codeversion {codeversion} in mode {mode}; "
                           f"remove it first (turnout task remove {same})", task_id=same)
        row = T(study=study, kind=kind, mode=mode, codeversion=codeversion, interval_minutes=minutes,
                created_at=now, created_by=actor[:128], next_run_at=now + timedelta(minutes=minutes))
        session.add(row)
        session.flush()
        task_id = row.id
    return get(db, task_id)


def _last_runs(session: Any, db: Database, job_ids: list[str]) -> dict[str, Any]:
    R = models(db).TaskRun
    found: dict[str, Any] = {}
    for jid in job_ids:
        run = session.scalar(select(R).where(R.study == study_of(db), R.job_id == jid)
                             .order_by(R.id.desc()).limit(1))
        if run is not None:
            found[jid] = run
    return found


def _run_view(run: Any | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"started": run.started_at.isoformat(), "finished": run.finished_at.isoformat() if run.finished_at else None,
            "outcome": run.outcome, "counts": json.loads(run.counts) if run.counts else {}, "error": run.error}


def get(db: Database, task_id: int) -> dict[str, Any]:
    T = models(db).Task
    with db.begin() as session:
        row = session.get(T, task_id)
        if row is None or row.study != study_of(db) or row.removed_at is not None:
            raise NotFound(f"no task {task_id} (see turnout task list)")
        last = _last_runs(session, db, [job_id(task_id)]).get(job_id(task_id))
        return _task_view(row, last)


def _task_view(row: Any, last: Any | None) -> dict[str, Any]:
    return {"id": row.id, "job_id": job_id(row.id), "kind": row.kind, "mode": row.mode,
            "codeversion": row.codeversion, "interval_minutes": row.interval_minutes,
            "created": row.created_at.isoformat(),
            "next_run": row.next_run_at.isoformat() if row.next_run_at else None,
            "last_run": _run_view(last)}


def list_tasks(db: Database, *, with_campaigns: bool = True) -> list[dict[str, Any]]:
    """Every scheduled task; with ``with_campaigns``, the running campaigns too (kind
    ``campaign``, removed with ``turnout campaign cancel``)."""
    M = models(db)
    T, C = M.Task, M.Campaign
    with db.begin() as session:
        rows = list(session.scalars(select(T).where(T.study == study_of(db), T.removed_at.is_(None)).order_by(T.id)))
        campaigns = list(session.scalars(select(C).where(C.study == study_of(db), C.active_key.is_not(None))
                                         .order_by(C.id))) if with_campaigns else []
        last = _last_runs(session, db, [job_id(r.id) for r in rows] + [f"campaign-{c.id}" for c in campaigns])
        views = [_task_view(r, last.get(job_id(r.id))) for r in rows]
        for c in campaigns:
            views.append({"id": c.id, "job_id": f"campaign-{c.id}", "kind": "campaign", "mode": c.mode,
                          "codeversion": c.codeversion, "interval_minutes": c.interval_minutes,
                          "created": c.created_at.isoformat(),
                          "next_run": c.next_round_at.isoformat() if c.next_round_at else None,
                          "last_run": _run_view(last.get(f"campaign-{c.id}"))})
    return views


def active_task_ids(db: Database) -> list[tuple[int, int]]:
    """(id, interval_minutes) of every task not removed."""
    T = models(db).Task
    with db.begin() as session:
        return [(i, m) for i, m in session.execute(select(T.id, T.interval_minutes).where(
            T.study == study_of(db), T.removed_at.is_(None)).order_by(T.id))]


def remove(db: Database, clock: Clock, task_id: int) -> dict[str, Any]:
    view = get(db, task_id)
    T = models(db).Task
    with db.begin(immediate=True) as session:
        session.execute(update(T).where(T.id == task_id, T.removed_at.is_(None))
                        .values(removed_at=clock.now(), next_run_at=None).execution_options(synchronize_session=False))
    return view


def claim_run(db: Database, clock: Clock, task_id: int, *, force: bool = False) -> Any | None:
    """Take this task's due slot (None if not due, removed, or taken by another runner)."""
    T = models(db).Task
    now = clock.now()
    with db.begin() as session:
        row = session.get(T, task_id)
        if row is None or row.removed_at is not None:
            return None
        due_at = row.next_run_at
    if not force and due_at is not None and now < due_at - DUE_SLACK:
        return None
    with db.begin(immediate=True) as session:
        changed = session.execute(
            update(T).where(T.id == task_id, T.removed_at.is_(None),
                            T.next_run_at.is_(None) if due_at is None else T.next_run_at == due_at)
            .values(next_run_at=now + timedelta(minutes=row.interval_minutes), last_run_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            return None
        return session.get(T, task_id, populate_existing=True)


def run_approve_all(ctx: MarketContext, task: Any) -> dict[str, Any]:
    """The approve-all task's work: this task's mode (the context's) and codeversion only."""
    from turnout.services import payments

    if ctx.mode != task.mode:
        raise InvalidInput(f"task {task.id} approves in mode {task.mode}, not {ctx.mode}")
    # A person confirmed approving automatically when they scheduled the task.
    result = payments.approve_all(ctx, codeversion=task.codeversion, confirm_live=True)
    return {"counts": result.counts(), "paid": str(result.paid), "ok": result.ok}


# --- the record of runs -------------------------------------------------------------------------


class RunRecord:
    """What a job fills in while it runs; written when it ends."""

    def __init__(self) -> None:
        self.outcome = "ok"
        self.counts: dict[str, Any] = {}
        self.error: str | None = None


@contextmanager
def recorded_run(db: Database, clock: Clock, job: str, kind: str, *, runner: str | None = None
                 ) -> Iterator[RunRecord]:
    """Write a run row at the start ("running") and its end (outcome, counts, error).

    A job that finds it was not due after all sets ``outcome = "skipped"``: its row goes.

    An exception ends the run as ``failed`` with its one-line text and is not re-raised:
    a job that fails is reported in the runs table, and the runner keeps going.
    """
    R = models(db).TaskRun
    with db.begin(immediate=True) as session:
        row = R(study=study_of(db), job_id=job[:64], kind=kind[:32], started_at=clock.now(), outcome="running",
                runner=(runner or holder_name())[:128])
        session.add(row)
        session.flush()
        run_id = row.id
    record = RunRecord()
    try:
        yield record
    except Exception as exc:  # recorded, never fatal to the runner
        record.outcome = "failed"
        record.error = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"[:4000]
    with db.begin(immediate=True) as session:
        if record.outcome == "skipped":  # not due after all: not a run
            session.execute(delete(R).where(R.id == run_id))
            return
        session.execute(update(R).where(R.id == run_id).values(
            finished_at=clock.now(), outcome=record.outcome[:16],
            counts=json.dumps(record.counts, default=str, sort_keys=True) if record.counts else None,
            error=record.error).execution_options(synchronize_session=False))


def runs(db: Database, *, job: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Recent runs, newest first."""
    R = models(db).TaskRun
    query = select(R).where(R.study == study_of(db)).order_by(R.id.desc()).limit(max(1, min(limit, 1000)))
    if job is not None:
        query = query.where(R.job_id == job)
    with db.begin() as session:
        return [{"id": r.id, "job_id": r.job_id, "kind": r.kind, "runner": r.runner, **(_run_view(r) or {})}
                for r in session.scalars(query)]


# --- the runner's heartbeat ----------------------------------------------------------------------


def holder_name() -> str:
    return f"{socket.gethostname()[:64]}:{os.getpid()}"


def lease_name(db: Database) -> str:
    """One runner per job store: the lease is named after the job table."""
    return db.tables.jobs[:64]


def runner_status(db: Database, clock: Clock | None = None) -> dict[str, Any]:
    """Is a runner alive for this database's job store? For the dashboard's warning.

    ``alive`` is true while the holder keeps renewing its lease; a runner that died shows
    as not alive once the lease expires (seconds, not minutes).
    """
    from turnout.clock import SystemClock

    now = (clock or SystemClock()).now()
    L = models(db).RunnerLease
    with db.begin() as session:
        lease = session.get(L, lease_name(db))
        if lease is None:
            return {"alive": False, "holder": None, "host": None, "pid": None, "started": None, "heartbeat": None,
                    "expires": None, "seconds_since_heartbeat": None}
        return {"alive": lease.expires_at > now, "holder": lease.holder, "host": lease.host, "pid": lease.pid,
                "started": lease.started_at.isoformat(), "heartbeat": lease.heartbeat_at.isoformat(),
                "expires": lease.expires_at.isoformat(),
                "seconds_since_heartbeat": round((now - lease.heartbeat_at).total_seconds(), 1)}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
