"""Simulated workers against a real experiment server and the offline marketplace over HTTP.

A whole local-mode study runs in-process (tests/simulation_stack.py): experiment server,
marketplace at /_mturk, worker site, one ManualClock. Simulated workers take the HIT, walk
the study with psiturk.js's requests and submit through externalSubmit. The assertions
are on outcomes (rows, statuses, stored trials, marketplace assignments), never on timing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from servers import init_project, turnout_cli
from simulation_stack import Study, running_study
from turnout.clock import ManualClock
from turnout.config import TableNames
from turnout.db.engine import Database
from turnout.simulation.behaviour import Fate, Plan, plan_workers
from turnout.simulation.browser import Browser, NotLoopback, is_loopback_url
from turnout.simulation.driver import Outcome, Report, run_workers

SUBMITTED, QUITEARLY = 4, 6


@pytest.fixture
def study(tmp_path: Path) -> Any:
    with running_study(init_project(tmp_path / "study")) as running:
        yield running


@pytest.fixture
def study_now(tmp_path: Path) -> Any:
    """A study whose clock starts at the real time: the CLI reads the marketplace on the wall clock."""
    with running_study(init_project(tmp_path / "study"), clock=ManualClock(datetime.now(UTC))) as running:
        yield running


def simulate(study: Study, plans: list[Plan]) -> Report:
    return run_workers(plans, study.state.workers, clock=study.clock)


def expected_outcomes(plans: list[Plan], slots: int) -> list[str]:
    """What a sequential run must produce: finishers and abandoners keep their slot,
    quitters and returners give it back, and a worker who finds no free slot finds no HIT."""
    outcomes = []
    for plan in plans:
        if slots == 0:
            outcomes.append(Outcome.NO_HIT)
            continue
        outcome = {Fate.FINISH: Outcome.SUBMITTED, Fate.QUIT: Outcome.QUIT, Fate.RETURN: Outcome.RETURNED,
                   Fate.ABANDON: Outcome.ABANDONED}[plan.fate]
        if plan.fate in (Fate.FINISH, Fate.ABANDON):
            slots -= 1
        outcomes.append(outcome)
    return outcomes


def seed_with_every_fate(count: int, dropout: float) -> int:
    """The first seed whose plans include each way of not finishing (so one run shows them all)."""
    for seed in range(1000):
        if {p.fate for p in plan_workers(seed, count, dropout=dropout)} == set(Fate):
            return seed
    raise AssertionError("no seed found")  # pragma: no cover


def by_uniqueid(study: Study) -> dict[str, Any]:
    return {row.uniqueid: row for row in study.rows()}


# --- plans --------------------------------------------------------------------------


def test_plans_are_a_function_of_seed_and_index():
    first = plan_workers(7, 8, dropout=0.3)
    assert first == plan_workers(7, 8, dropout=0.3)
    assert plan_workers(7, 3, dropout=0.3) == first[:3]  # adding workers never changes earlier ones
    assert plan_workers(7, 2, first=5, dropout=0.3) == first[5:7]
    assert [p.worker_id for p in plan_workers(8, 8)] != [p.worker_id for p in first]
    assert all(p.fate is Fate.FINISH for p in plan_workers(1, 50, dropout=0.0))
    assert not any(p.fate is Fate.FINISH for p in plan_workers(1, 50, dropout=1.0))


def test_plan_trials_look_like_the_stroop_template_data():
    plan = plan_workers(3, 1, trials=12, practice=4)[0]
    trials = plan.trials(condition=1)
    assert trials == plan.trials(condition=1)  # deterministic per condition
    assert [t.data["phase"] for t in trials] == ["PRACTICE"] * 4 + ["TEST"] * 12
    for trial in trials:
        # psiTurk's example fields, plus the template's block, trial, key and correct
        assert set(trial.data) == {"phase", "block", "trial", "word", "color", "relation", "key", "response",
                                   "hit", "correct", "rt"}
        assert trial.data["hit"] == trial.data["correct"] == (trial.data["response"] == trial.data["color"])
        assert trial.data["relation"] == ("congruent" if trial.data["word"] == trial.data["color"].upper()
                                          else "incongruent")
        assert trial.data["rt"] == trial.rt_ms > 0
    congruent = [t.data["relation"] for t in trials[4:]].count("congruent")
    assert congruent == 3  # condition 1: a quarter of the test words match their ink
    assert [t.data["relation"] for t in plan.trials(0)[4:]].count("congruent") == 6
    assert plan.worker_id.startswith("A") and len(plan.worker_id) == 14


def test_browser_refuses_hosts_that_are_not_loopback():
    assert is_loopback_url("http://127.0.0.1:5000/pub")
    assert is_loopback_url("http://localhost/")
    assert is_loopback_url("http://[::1]:80/")
    assert not is_loopback_url("https://www.mturk.com/mturk/externalSubmit")
    assert not is_loopback_url("http://10.1.2.3/")
    assert not is_loopback_url("file:///etc/passwd")
    with pytest.raises(NotLoopback):
        Browser("test").get("https://workersandbox.mturk.com/mturk/externalSubmit")


# --- whole runs ---------------------------------------------------------------------


def test_submissions_stop_at_the_hit_assignment_count(study: Study):
    hit_id = study.post_hit(assignments=5)
    plans = plan_workers(11, 8, dropout=0.0)
    report = simulate(study, plans)

    assert report.counts() == {Outcome.SUBMITTED: 5, Outcome.NO_HIT: 3}  # min(assignments, finishers)
    assignments = study.state.assignments_for_hit(hit_id)
    assert Counter(a.status for a in assignments) == {"Submitted": 5}
    rows = by_uniqueid(study)
    assert sorted(rows) == sorted(r.uniqueid for r in report.results if r.outcome == Outcome.SUBMITTED)
    assert {row.status for row in rows.values()} == {SUBMITTED}
    hit = study.state.get_hit(hit_id)
    assert (hit.available, hit.pending, hit.submitted) == (0, 0, 5)


def test_dropouts_quit_early_return_or_abandon_and_finishers_store_every_trial(study: Study):
    slots = 5
    hit_id = study.post_hit(assignments=slots, duration_s=1800)
    seed = seed_with_every_fate(8, dropout=0.5)
    plans = plan_workers(seed, 8, dropout=0.5)
    report = simulate(study, plans)

    assert [r.outcome for r in report.results] == expected_outcomes(plans, slots)
    assert report.count(Outcome.ERROR) == 0, [r.detail for r in report.results if r.outcome == Outcome.ERROR]
    rows = by_uniqueid(study)
    for plan, result in zip(plans, report.results, strict=True):
        row = rows.get(result.uniqueid or "")
        if result.outcome in (Outcome.RETURNED, Outcome.NO_HIT):
            assert row is None  # never reached /exp
            continue
        assert row is not None, result
        data = json.loads(row.datastring)
        assert row.trial_count == len(data["data"]) == plan.recorded_trials() == result.trials_saved
        if result.outcome == Outcome.QUIT:
            assert row.status == QUITEARLY
        elif result.outcome == Outcome.ABANDONED:
            assert row.status == 2  # STARTED: the page is still open somewhere
        else:
            assert row.status == SUBMITTED
            blocks = [d["trialdata"] for d in data["data"] if d["trialdata"].get("phase") in ("PRACTICE", "TEST")]
            assert blocks == [t.data for t in plan.trials(row.cond)]
            assert data["questiondata"] == plan.questionnaire
            assert [d["current_trial"] for d in data["data"]] == list(range(plan.recorded_trials()))
            assert data["eventdata"][0]["eventtype"] == "initialized"
            assert data["useragent"] == plan.user_agent and data["mode"] == "local"
            assert (row.workerid, row.assignmentid, row.hitid) == (plan.worker_id, result.assignment_id, hit_id)
            assert row.endhit is not None and row.beginexp is not None
            # every save carried psiturk.js's order stamp; the last one applied is the newest
            assert row.save_key is not None and row.save_key.endswith(f".{result.requests['PUT /sync']:09d}")

    statuses = Counter(a.status for a in study.state.assignments_for_hit(hit_id))
    assert statuses["Submitted"] == report.count(Outcome.SUBMITTED)
    assert statuses["Returned"] == report.count(Outcome.QUIT) + report.count(Outcome.RETURNED)
    assert statuses["Accepted"] == report.count(Outcome.ABANDONED)

    study.clock.advance(1801)  # the abandoners' time runs out
    statuses = Counter(a.status for a in study.state.assignments_for_hit(hit_id))
    assert statuses["Accepted"] == 0
    assert statuses["Abandoned"] == report.count(Outcome.ABANDONED)


def test_finishers_call_the_projects_bonus_route_and_submit_answers(study: Study):
    hit_id = study.post_hit(assignments=2)
    report = simulate(study, plan_workers(5, 2))
    assert report.counts() == {Outcome.SUBMITTED: 2}
    rows = by_uniqueid(study)
    for result, plan in zip(report.results, plan_workers(5, 2), strict=True):
        assert result.requests["GET /compute_bonus"] == 1
        assert result.requests["POST /inexp"] == 1
        assert result.requests["GET /worker_submitted"] == 1
        assert result.requests["POST /_mturk/mturk/externalSubmit"] == 1
        assert result.requests["PUT /sync"] >= 3  # startTask, periodic saves, the questionnaire
        trials = plan.trials(rows[result.uniqueid].cond)
        test_hits = sum(1 for t in trials if t.data["hit"] and t.data["phase"] == "TEST")
        assert float(rows[result.uniqueid].bonus) == pytest.approx(0.02 * test_hits)  # the project's custom.py
    for assignment in study.state.assignments_for_hit(hit_id):
        assert assignment.status == "Submitted"
        assert f"<FreeText>{assignment.worker_id}</FreeText>" in (assignment.answer or "")


def test_same_seed_same_run(tmp_path: Path):
    def one_run(where: Path) -> tuple[list[tuple[Any, ...]], list[Any]]:
        with running_study(init_project(where)) as study:
            study.post_hit(assignments=4)
            report = simulate(study, plan_workers(21, 6, dropout=0.4))
            outcomes = [(r.worker_id, r.fate, r.outcome, r.trials_saved, dict(r.requests)) for r in report.results]
            stored = []
            for row in sorted(study.rows(), key=lambda r: r.workerid):
                data = json.loads(row.datastring)
                stored.append((row.workerid, row.status, row.cond, [d["trialdata"] for d in data["data"]],
                               [d["dateTime"] for d in data["data"]], data["questiondata"], data["eventdata"]))
            return outcomes, stored

    assert one_run(tmp_path / "a") == one_run(tmp_path / "b")


# --- the command --------------------------------------------------------------------


def test_turnout_simulate_command(study_now: Study, monkeypatch: pytest.MonkeyPatch):
    for key in ("AD_URL_DOMAIN", "AD_URL_PORT", "AD_URL_PROTOCOL", "LAUNCH_IN_MODE"):
        monkeypatch.setenv(f"TURNOUT_{key}", str({"AD_URL_DOMAIN": "127.0.0.1", "AD_URL_PORT": study_now.port,
                                                  "AD_URL_PROTOCOL": "http", "LAUNCH_IN_MODE": "local"}[key]))
    monkeypatch.setenv("TURNOUT_DATABASE_URL", study_now.settings.database_url)
    project = study_now.settings.project_dir

    refused = turnout_cli(project, "simulate", "--workers", "2")
    assert refused.exit_code == 1
    assert "no HIT is open" in refused.output and "--post-hit" in refused.output

    study_now.post_hit(assignments=3)
    ran = turnout_cli(project, "simulate", "--workers", "4", "--seed", "3", "--dropout", "0", "--json")
    assert ran.exit_code == 0, ran.output
    lines = [json.loads(line) for line in ran.stdout.splitlines() if line.startswith("{")]
    assert [line["outcome"] for line in lines[:-1]] == ["submitted"] * 3 + ["no_hit"]
    assert lines[-1] == {"summary": {"submitted": 3, "no_hit": 1}, "seed": 3, "workers": 4}
    assert sum(1 for row in study_now.rows() if row.status == SUBMITTED) == 3

    wrong_mode = turnout_cli(project, "simulate", "--mode", "sandbox")
    assert wrong_mode.exit_code == 2


def test_turnout_simulate_post_hit_uses_the_hit_service(study_now: Study, monkeypatch: pytest.MonkeyPatch):

    monkeypatch.setenv("TURNOUT_AD_URL_DOMAIN", "127.0.0.1")
    monkeypatch.setenv("TURNOUT_AD_URL_PORT", str(study_now.port))
    monkeypatch.setenv("TURNOUT_AD_URL_PROTOCOL", "http")
    monkeypatch.setenv("TURNOUT_LAUNCH_IN_MODE", "local")
    monkeypatch.setenv("TURNOUT_DATABASE_URL", study_now.settings.database_url)
    ran = turnout_cli(study_now.settings.project_dir, "simulate", "--workers", "2",
                                    "--seed", "1", "--dropout", "0", "--post-hit")
    assert ran.exit_code == 0, ran.output
    assert "posted HIT" in ran.output and "2 simulated workers: 2 submitted" in ran.output
    with study_now.db.begin() as session:
        records = list(session.query(study_now.db.models.HitRecord))
    assert [(r.mode, r.state, r.max_assignments) for r in records] == [("local", "created", 9)]


# --- background arrivals ------------------------------------------------------------


def test_arrivals_post_a_hit_when_none_is_open_and_send_workers(study: Study, caplog: pytest.LogCaptureFixture):
    from turnout.simulation.arrivals import Arrivals

    arrivals = Arrivals(study.settings, rate_per_minute=30, seed=4, clock=study.clock, pace=0, dropout=0.0,
                        post_hit=lambda: study.post_hit(assignments=3))
    caplog.set_level(logging.INFO, logger="turnout.simulation")
    waits: list[float] = []

    def wait(seconds: float) -> bool:  # five arrivals, then stop; no wall-clock time passes
        waits.append(seconds)
        if len(waits) > 1:
            arrivals.join()  # one at a time, so which worker gets a slot is reproducible
        return len(waits) > 5

    arrivals.run(wait=wait, monotonic=iter(range(0, 1000, 11)).__next__)
    arrivals.join()

    assert arrivals.sent == 5
    assert sum(w for w in waits) > 0
    assert "posted HIT" in caplog.text and "through the HIT service" in caplog.text
    outcomes = Counter(r.outcome for r in arrivals.results)
    assert outcomes == {Outcome.SUBMITTED: 5}  # the first HIT filled up, so arrivals posted a second
    assert sum(1 for row in study.rows() if row.status == SUBMITTED) == 5


def test_arrivals_post_through_the_hit_service_by_default(study: Study):
    from turnout.simulation.arrivals import Arrivals
    from turnout.simulation.posting import DEMO_ASSIGNMENTS, open_hits

    arrivals = Arrivals(study.settings, rate_per_minute=1, seed=1, clock=study.clock, pace=0)
    hit_id = arrivals.ensure_hit()
    assert hit_id is not None
    assert [h.hit_id for h in open_hits(study.state)] == [hit_id]
    assert study.state.get_hit(hit_id).max_assignments == DEMO_ASSIGNMENTS
    assert arrivals.ensure_hit() is None  # one is open now


def test_arrivals_turn_away_workers_beyond_the_in_progress_limit(study: Study):
    from turnout.simulation.arrivals import Arrivals

    study.post_hit(assignments=9)
    release = threading.Event()
    arrivals = Arrivals(study.settings, rate_per_minute=60, seed=2, clock=study.clock, pace=1.0,
                        max_in_progress=2)
    arrivals._sleep = lambda seconds: release.wait(10)  # visits block until released
    assert arrivals.send_one() is not None
    assert arrivals.send_one() is not None
    assert arrivals.send_one() is None
    assert (arrivals.sent, arrivals.turned_away) == (2, 1)
    release.set()
    arrivals.join()
    assert Counter(r.outcome for r in arrivals.results)[Outcome.SUBMITTED] == sum(
        1 for r in arrivals.results if r.fate is Fate.FINISH)


# --- turnout serve with arrivals ----------------------------------------------------


def _wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_turnout_serve_runs_one_arrivals_process_that_fills_the_database(tmp_path: Path):
    from servers import free_port, runner_processes, running_server

    project = init_project(tmp_path / "demo")
    config = project / "config.txt"
    text = config.read_text(encoding="utf-8")
    options = "simulate_arrival_rate = 120\nsimulate_pace = 0\nsimulate_dropout = 0\n"
    text = text.replace("[Marketplace]\n", "[Marketplace]\n" + options) if "[Marketplace]\n" in text \
        else text + "\n[Marketplace]\n" + options
    config.write_text(text, encoding="utf-8")
    port = free_port()
    env = {"TURNOUT_LOGFILE": "-", "TURNOUT_LAUNCH_IN_MODE": "local",
           "TURNOUT_AD_URL_DOMAIN": "127.0.0.1", "TURNOUT_AD_URL_PORT": str(port), "TURNOUT_AD_URL_PROTOCOL": "http",
           "TURNOUT_DATABASE_URL": f"sqlite:///{project / 'participants.db'}"}
    log_path = project / "serve.log"
    with running_server(project, env=env, port=port, workers=3, log_path=log_path, stop_timeout_s=30) as served:
        server = served.process
        db = Database(env["TURNOUT_DATABASE_URL"], TableNames())

        def submitted() -> int:
            if server.poll() is not None:
                raise AssertionError(f"turnout serve exited:\n{log_path.read_text()}")
            try:
                with db.begin() as session:
                    return len(list(session.scalars(select(db.models.Participant.uniqueid)
                                                    .where(db.models.Participant.status == SUBMITTED))))
            except Exception:  # the schema is still being created
                return 0

        _wait_for(lambda: submitted() >= 3, 120, "three simulated participants to submit")
        assert len(runner_processes(project)) == 1  # one runner, not one per worker process
        text = log_path.read_text()
        assert "simulated arrivals are on" in text and "posted HIT" in text
        db.dispose()
    _wait_for(lambda: not runner_processes(project), 30, "the runner to stop with the server")
