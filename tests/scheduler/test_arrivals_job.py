"""The runner's arrivals job: a Poisson number of simulated workers per tick, reproducible
from the seed, each taking the study over HTTP (no wall-clock waits: pace 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers import init_project
from simulation_stack import running_study
from turnout.simulation.arrivals import Arrivals
from turnout.simulation.driver import Outcome

pytestmark = pytest.mark.slow


def test_ticks_send_the_workers_due_in_them_and_post_a_hit_first(tmp_path: Path):
    with running_study(init_project(tmp_path / "study")) as study:
        arrivals = Arrivals(study.settings, rate_per_minute=6, seed=3, clock=study.clock, pace=0, dropout=0.0)
        counts = [arrivals.tick(10.0, monotonic=lambda i=i: float(i * 11)) for i in range(6)]
        arrivals.join()
        assert sum(counts) == arrivals.sent >= 1  # about 6 in these 60 simulated seconds
        assert len(study.state.list_hits().items) == 1  # the first tick posted the HIT they took
        twin = Arrivals(study.settings, rate_per_minute=6, seed=3, clock=study.clock, pace=0, dropout=0.0)
        twin.step = lambda _monotonic: None  # type: ignore[method-assign]  # count, do not send
        assert [twin.tick(10.0) for _ in range(6)] == counts  # the same seed, the same arrivals
        assert {r.outcome for r in arrivals.results} == {Outcome.SUBMITTED}
        assert arrivals.tick(0.0) == 0
