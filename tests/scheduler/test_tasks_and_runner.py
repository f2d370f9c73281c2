"""Scheduled tasks, the record of runs, the runner lease and the APScheduler wiring.

Time is a ManualClock wherever a rule depends on it (task intervals, lease expiry); the
APScheduler wiring test uses the real scheduler, and waits for what it checks, never on
how long something takes.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from turnout.config import ConfigError
from turnout.errors import Conflict, InvalidInput
from turnout.experiment.status import Status
from turnout.scheduler import jobs
from turnout.scheduler.embed import check_serve
from turnout.scheduler.lease import Lease, LeaseHeld
from turnout.scheduler.runner import Runner
from turnout.services import campaigns, hits, tasks

from .conftest import Sched

pytestmark = pytest.mark.db


def submitted(s: Sched, count: int, codeversion: str) -> list[str]:
    hit = hits.create_hit(s.ctx(), max_assignments=count, reward="1.00", duration_hours=1)["hit_id"]
    return [a.assignment_id for a in s.complete(hit, count, codeversion=codeversion)]


def statuses(s: Sched) -> dict[str, int]:
    P = s.db.models.Participant
    with s.db.begin() as session:
        return dict(session.execute(sa.select(P.assignmentid, P.status)).all())


def test_approve_all_runs_on_schedule_for_its_own_mode_and_codeversion_only(sched: Sched):
    s = sched
    mine = submitted(s, 2, "1.0")
    theirs = submitted(s, 2, "2.0")
    task = tasks.add(s.db, s.settings, s.clock, "approve-all", interval_minutes=30, mode="local", codeversion="1.0")
    env = s.env()
    assert jobs.run_pending(env)[task["job_id"]] == "skipped"  # first run one interval from now
    s.clock.advance(timedelta(minutes=29))
    assert jobs.run_pending(env)[task["job_id"]] == "skipped"
    s.clock.advance(timedelta(minutes=1))
    assert jobs.run_pending(env)[task["job_id"]] == "ok"
    now = statuses(s)
    assert {now[a] for a in mine} == {Status.CREDITED} and {now[a] for a in theirs} == {Status.SUBMITTED}
    assert s.modes_opened == ["local"]
    assert jobs.run_pending(env)[task["job_id"]] == "skipped"  # the slot is used
    later = submitted(s, 1, "1.0")
    s.clock.advance(timedelta(minutes=30))
    assert jobs.run_pending(env)[task["job_id"]] == "ok"
    assert statuses(s)[later[0]] == Status.CREDITED
    (last, first) = [r for r in tasks.runs(s.db) if r["job_id"] == task["job_id"]]
    assert last["outcome"] == first["outcome"] == "ok"
    assert (first["counts"]["ok"], last["counts"]["ok"]) == (2, 1)
    assert first["counts"]["codeversion"] == "1.0" and first["counts"]["mode"] == "local"
    assert tasks.list_tasks(s.db)[0]["last_run"]["outcome"] == "ok"


def test_task_settings_are_checked(sched_sqlite: Sched):
    s = sched_sqlite
    with pytest.raises(InvalidInput, match="at least 30 minutes"):
        tasks.add(s.db, s.settings, s.clock, "approve-all", interval_minutes=29)
    with pytest.raises(InvalidInput, match="unknown task"):
        tasks.add(s.db, s.settings, s.clock, "delete-all", interval_minutes=30)
    first = tasks.add(s.db, s.settings, s.clock, "approve-all", interval_minutes=60)
    with pytest.raises(Conflict, match=f"task {first['id']} already does approve-all"):
        tasks.add(s.db, s.settings, s.clock, "approve-all", interval_minutes=90)
    tasks.remove(s.db, s.clock, first["id"])
    assert tasks.list_tasks(s.db) == []
    assert jobs.run_pending(s.env()) == {}


def test_every_campaign_round_is_recorded_with_its_counts(sched_sqlite: Sched):
    s = sched_sqlite
    c = s.create(goal=12, per_round=10)
    done = jobs.run_pending(s.env())
    assert done == {f"campaign-{c['id']}": "posted"}
    jobs.run_pending(s.env())  # not due: leaves no run row
    (run,) = tasks.runs(s.db)
    assert (run["job_id"], run["kind"], run["outcome"]) == (f"campaign-{c['id']}", "campaign", "ok")
    assert run["counts"]["posted"] == 10 and run["counts"]["hits"] == 2 and run["finished"]


def test_a_second_runner_is_refused_and_a_dead_ones_lease_is_taken_over(sched: Sched):
    s = sched
    first = Lease(s.db, s.clock, "host-a:1:aa", timedelta(seconds=30))
    second = Lease(s.db, s.clock, "host-b:2:bb", timedelta(seconds=30))
    first.acquire()
    assert tasks.runner_status(s.db, s.clock)["alive"] is True
    with pytest.raises(LeaseHeld, match="another runner is already running for this database"):
        second.acquire()
    s.clock.advance(timedelta(seconds=20))
    assert first.renew()
    s.clock.advance(timedelta(seconds=29))
    with pytest.raises(LeaseHeld):
        second.acquire()  # renewed 29 s ago: still alive
    s.clock.advance(timedelta(seconds=2))  # the first runner died: no renewal for 31 s
    assert tasks.runner_status(s.db, s.clock)["alive"] is False
    second.acquire()
    assert first.renew() is False  # the old holder finds out and must stop
    assert tasks.runner_status(s.db, s.clock)["holder"] == "host-b:2:bb"
    second.release()
    assert tasks.runner_status(s.db, s.clock)["alive"] is False
    first.acquire()  # released: no need to wait for expiry


def test_do_scheduler_with_several_workers_is_refused_with_what_to_do(make_settings):
    settings = make_settings(None, do_scheduler="true", threads="3")
    with pytest.raises(ConfigError) as refused:
        check_serve(settings, None)
    text = str(refused.value)
    assert "threads = 1" in text and "turnout scheduler" in text and "\n" not in text
    check_serve(settings, 1)  # --workers 1 is fine
    check_serve(make_settings(None, do_scheduler="false", threads="3"), None)
    # threads = auto on SQLite serves with one process (server.worker_plan): allowed.
    check_serve(make_settings(None, do_scheduler="true", threads="auto"), None)


def _wait(predicate, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _job_ids(s: Sched) -> set[str]:
    with s.db.engine.connect() as conn:
        return set(conn.execute(sa.text(f"SELECT id FROM {s.settings.tables.jobs}")).scalars())


def test_the_runner_turns_rows_into_apscheduler_jobs_and_back(sched: Sched):
    s = sched
    runner = Runner(s.settings, s.db, clock=s.clock, reload_settings=False, market=s.open_market,
                    poll_seconds=0.2, arrivals=False)
    runner.start()
    try:
        with pytest.raises(LeaseHeld):
            Runner(s.settings, s.db, clock=s.clock, reload_settings=False, market=s.open_market).start()
        c = s.create(goal=9, per_round=9)  # as another process would: a row, nothing else
        _wait(lambda: f"campaign-{c['id']}" in _job_ids(s), "the campaign's job")
        _wait(lambda: [r["state"] for r in campaigns.rounds(s.db, c["id"])] == ["done"], "the first round")
        assert sum(h.max_assignments for h in s.market_hits()) == 9
        task = tasks.add(s.db, s.settings, s.clock, "approve-all", interval_minutes=30)
        _wait(lambda: task["job_id"] in _job_ids(s), "the task's job")
        campaigns.cancel(s.db, s.clock, c["id"])
        tasks.remove(s.db, s.clock, task["id"])
        _wait(lambda: not _job_ids(s), "the jobs to go")
    finally:
        runner.shutdown()
    assert tasks.runner_status(s.db, s.clock)["alive"] is False


def test_a_runner_that_loses_its_lease_stops_running_jobs(sched_sqlite: Sched):
    s = sched_sqlite
    runner = Runner(s.settings, s.db, clock=s.clock, reload_settings=False, market=s.open_market,
                    poll_seconds=60, renew_seconds=3600, arrivals=False)
    runner.start()
    try:
        s.clock.advance(timedelta(seconds=31))  # it stalled past its lease (renewal is an hour away here)
        Lease(s.db, s.clock, "other:9:zz", timedelta(seconds=30)).acquire()
        runner.heartbeat()
        assert runner.lost_lease and runner.stopped.is_set()
        from apscheduler.schedulers.base import STATE_PAUSED

        assert runner.scheduler.state == STATE_PAUSED
    finally:
        runner.shutdown()
    assert tasks.runner_status(s.db, s.clock)["holder"] == "other:9:zz"  # the new holder keeps its lease


def test_a_restarted_server_waits_for_the_runner_of_the_server_it_replaces(sched_sqlite: Sched,
                                                                          monkeypatch: pytest.MonkeyPatch):
    """Ctrl-C and `make demo` again at once: the previous server's runner still holds the
    lease for a moment (it notices its server is gone within a second); the new server
    waits for it instead of running without arrivals. A runner beside a live server is
    not waited for."""
    import os
    import subprocess
    import sys
    import threading

    from turnout.clock import SystemClock
    from turnout.scheduler import embed

    s = sched_sqlite
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # the stopped server
    sleeper = "import time; time.sleep(60)"
    orphan = subprocess.Popen([sys.executable, "-c", sleeper, "--watch-pid", str(gone.pid)])
    beside_live = subprocess.Popen([sys.executable, "-c", sleeper, "--watch-pid", str(os.getpid())])
    L = tasks.models(s.db).RunnerLease

    def hold(holder: str, pid: int) -> Lease:
        lease = Lease(s.db, SystemClock(), holder, timedelta(seconds=30))
        lease.acquire()
        with s.db.begin() as session:
            session.execute(sa.update(L).values(pid=pid))
        return lease

    try:
        old = hold("this-host:1:aa", orphan.pid)
        threading.Timer(1.0, old.release).start()  # what the orphan does once it notices
        assert embed._after_a_stopped_server(s.db, tasks.runner_status(s.db))["alive"] is False

        hold("this-host:2:bb", beside_live.pid)

        def no_waiting(seconds: float) -> None:
            raise AssertionError("waited for a runner whose server is alive")

        monkeypatch.setattr(embed.time, "sleep", no_waiting)
        assert embed._after_a_stopped_server(s.db, tasks.runner_status(s.db))["alive"] is True
    finally:
        orphan.kill()
        beside_live.kill()
