"""Campaign benchmark: recruit N completed participants in local mode, round by round.

A fresh project (``turnout init``) on SQLite, the offline marketplace in a thread, and a
ManualClock: each round runs ``campaigns.run_round`` (what the runner's job does) through
an unmodified boto3 client, then simulated workers fill the campaign's open slots through
the marketplace's worker side, and the clock moves on by the interval. Some workers do not
finish (``--dropout``): half of them return the HIT at once (the slot reopens), half abandon
it (the slot comes back when the assignment's deadline passes, an hour later). Workers
here do not walk the study over HTTP (tests/scheduler/test_campaign_e2e.py does that for
25); a finisher gets the participant row /complete and /worker_submitted would leave.

Reported: wall time (time.perf_counter, whole run and rounds only), rounds, marketplace
calls per round (counted by run_round), HITs posted and their sizes, money committed, and
whether the goal was hit exactly (completed == goal, nothing posted past it). Exits 1 if not.

    .venv/bin/python bench/campaign.py                      # 1,000 participants, 100 a round
    .venv/bin/python bench/campaign.py --goal 1000 --per-round 250 --json
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goal", type=int, default=1000)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--interval", type=int, default=30, help="minutes between rounds")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from click.testing import CliRunner

    from turnout.cli import main as cli
    from turnout.clock import ManualClock
    from turnout.config import load_settings
    from turnout.db.engine import Database
    from turnout.db.migrate import upgrade
    from turnout.marketplace import make_client
    from turnout.marketplace.local import ThreadedMarketplace
    from turnout.services import campaigns
    from turnout.services.recruitment import MarketContext

    rng = random.Random(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="turnout-bench-campaign-") as tmp:
        project = Path(tmp) / "study"
        assert CliRunner().invoke(cli, ["init", str(project)]).exit_code == 0
        settings = load_settings(project, environ={"PSITURK_GLOBAL_CONFIG_LOCATION": str(project / "none"),
                                                   "TURNOUT_LAUNCH_IN_MODE": "local"})
        db = Database(settings.database_url, settings.tables)
        upgrade(db)
        clock = ManualClock()
        P = db.models.Participant
        rounds: list[dict[str, Any]] = []
        round_seconds = 0.0
        with ThreadedMarketplace(Path(tmp) / "bench-mturk.db", clock=clock) as market:
            client = make_client("local", endpoint_url=market.endpoint_url, store=market.store_path, max_attempts=1)
            ctx = MarketContext(db=db, settings=settings, clock=clock, mode="local", client=client, actor="bench")
            side = market.state.workers
            created = campaigns.create(db, settings, clock, goal=args.goal, per_round=args.per_round,
                                       interval_minutes=args.interval, reward="1.00", duration_hours=1, mode="local")
            cid = created["id"]
            for _ in range(10_000):
                t0 = time.perf_counter()
                result = campaigns.run_round(ctx, cid)
                round_seconds += time.perf_counter() - t0
                rounds.append({"number": result.number, "outcome": result.outcome, "calls": result.calls,
                               "completed": result.completed, "open": result.open, "posted": sum(result.posted),
                               "hits": len(result.posted)})
                if result.outcome == "ended":
                    break
                for hit_id in campaigns.open_hit_ids(db, cid):
                    free = market.state.get_hit(hit_id)
                    for _ in range(free.available if free.status == "Assignable" else 0):
                        worker = side.register()
                        assignment = side.accept(worker.worker_id, hit_id)
                        if rng.random() < args.dropout:
                            if rng.random() < 0.5:
                                side.return_assignment(assignment.assignment_id)
                            continue  # abandoned: the deadline frees the slot
                        side.submit(assignment.assignment_id, {"done": "yes"})
                        with db.begin() as session:
                            session.add(P(uniqueid=f"{worker.worker_id}:{assignment.assignment_id}",
                                          assignmentid=assignment.assignment_id, workerid=worker.worker_id,
                                          hitid=hit_id, codeversion=settings.codeversion, mode="local", status=4,
                                          beginhit=clock.now(), endhit=clock.now()))
                clock.advance(timedelta(minutes=args.interval))
            view = campaigns.get(db, cid)
            sizes = [h["assignments"] for r in campaigns.rounds(db, cid) for h in r["hits"]]
        db.dispose()
    wall = time.perf_counter() - started
    posting = [r for r in rounds if r["outcome"] in ("posted", "nothing", "ended")]
    calls = [r["calls"] for r in posting]
    report = {
        "goal": args.goal, "per_round": args.per_round, "dropout": args.dropout, "seed": args.seed,
        "completed": view["completed"], "goal_hit_exactly": view["completed"] == args.goal and not view["active"],
        "end_reason": view["end_reason"], "rounds": len(rounds), "hits": len(sizes), "largest_hit": max(sizes),
        "assignments_posted": sum(sizes), "spent": view["spent"],
        "calls_per_round": {"min": min(calls), "mean": round(statistics.mean(calls), 1), "max": max(calls),
                            "total": sum(calls)},
        "wall_seconds": round(wall, 2), "round_seconds": round(round_seconds, 2),
        "python": platform.python_version(), "machine": platform.machine(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:18} {value}")
    ok = report["goal_hit_exactly"] and report["largest_hit"] <= 9
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
