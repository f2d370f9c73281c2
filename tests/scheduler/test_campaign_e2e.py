"""A campaign end to end in local mode: the experiment server, the offline marketplace and
simulated workers who take the HIT and walk the study over HTTP (quitting, returning and
abandoning some of the time), the runner's job function on a ManualClock. Rounds 30
minutes apart and assignment deadlines pass without any wall-clock wait."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from servers import init_project
from simulation_stack import running_study
from turnout.marketplace import make_client
from turnout.scheduler import jobs
from turnout.services import campaigns
from turnout.simulation.behaviour import plan_workers
from turnout.simulation.driver import Outcome, run_workers

pytestmark = pytest.mark.slow


def test_goal_25_with_simulated_workers_completes_exactly_25_and_ends_by_itself(tmp_path: Path):
    with running_study(init_project(tmp_path / "study")) as study:
        client = make_client("local", endpoint_url=f"{study.url}/_mturk/", store=study.settings.marketplace_store,
                             max_attempts=1)

        @contextmanager
        def market(mode: str) -> Any:
            assert mode == "local"
            yield client

        env = jobs.RunnerEnv(db=study.db, clock=study.clock, settings=lambda: study.settings, market=market,
                             holder="e2e")
        created = campaigns.create(study.db, study.settings, study.clock, goal=25, per_round=10,
                                   interval_minutes=30, reward="1.00", duration_hours=1, mode="local")
        cid = created["id"]
        outcomes: Counter[str] = Counter()
        sent = 0
        for _ in range(20):
            if jobs.run_pending(env).get(f"campaign-{cid}") == "ended":
                break
            plans = plan_workers(11, 12, first=sent, dropout=0.3)
            sent += len(plans)
            report = run_workers(plans, study.state.workers, clock=study.clock)
            outcomes.update(r.outcome for r in report.results)
            assert not report.count(Outcome.ERROR), [r.detail for r in report.results if r.outcome == "error"]
            study.clock.advance(timedelta(minutes=30))
        view = campaigns.get(study.db, cid)
        assert view["active"] is False and view["end_reason"].startswith("goal reached: 25 of 25"), view
        assert view["completed"] == 25
        finished = [r for r in study.rows() if r.status in (3, 4, 5, 7)]
        assert len(finished) == 25 and {r.codeversion for r in finished} == {"1.0"}
        assert outcomes[Outcome.SUBMITTED] == 25
        assert outcomes[Outcome.QUIT] + outcomes[Outcome.RETURNED] + outcomes[Outcome.ABANDONED] > 0
        own = [h["hit_id"] for r in campaigns.rounds(study.db, cid) for h in r["hits"]]
        snapshots = [study.state.get_hit(h) for h in own]
        assert all(1 <= s.max_assignments <= 9 for s in snapshots)
        assert not any(s.status == "Assignable" for s in snapshots)  # leftovers expired
        assert sum(s.max_assignments for s in snapshots) >= 25
