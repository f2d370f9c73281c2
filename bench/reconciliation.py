"""Reconciliation at scale: how many marketplace calls and how long a check of thousands of
assignments takes, and what the dashboard page reads afterwards.

Posts ``--hits`` HITs of ``--per-hit`` assignments on the local marketplace (in-process),
has a worker accept and submit each, writes a local row per assignment (every tenth one
left at status 2, "started", so it is a ``submitted_remotely`` difference), then:

* ``check``: ``reconciliation.check`` with a progress callback, every boto3 call counted by
  operation through botocore's ``before-call`` event;
* ``stored``: ``reconcile_jobs.latest`` (what the page renders from) and
  ``reconciliation.last_run`` (the navigation badge), with no marketplace call.

    .venv/bin/python bench/reconciliation.py --hits 20 --per-hit 100

SQLite in a temporary folder; loopback only. Not a test: it measures and prints.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hits", type=int, default=20)
    parser.add_argument("--per-hit", type=int, default=100)
    args = parser.parse_args()

    from turnout.clock import SystemClock
    from turnout.config import load_settings
    from turnout.db.engine import Database
    from turnout.db.migrate import upgrade
    from turnout.marketplace import make_client
    from turnout.marketplace.local import ThreadedMarketplace
    from turnout.services import hits, reconcile_jobs, reconciliation
    from turnout.services.recruitment import MarketContext

    tmp = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    try:
        project = tmp / "project"
        shutil.copytree(Path(__file__).parent.parent / "tests" / "fixtures" / "minimal_project", project)
        settings = load_settings(project, environ={"TURNOUT_DATABASE_URL": f"sqlite:///{tmp / 'p.db'}",
                                                   "PSITURK_GLOBAL_CONFIG_LOCATION": str(tmp / "none")})
        db = Database(settings.database_url, settings.tables)
        upgrade(db)
        clock = SystemClock()
        store = tmp / "mturk.db"
        with ThreadedMarketplace(store, clock=clock) as market:
            client = make_client("local", endpoint_url=market.endpoint_url, store=store, max_attempts=1)
            ctx = MarketContext(db=db, settings=settings, clock=clock, mode="local", client=client, actor="bench")
            t0 = time.perf_counter()
            P = db.models.Participant
            side = market.state.workers
            n = 0
            for _ in range(args.hits):
                hit_id = hits.create_hit(ctx, max_assignments=args.per_hit, reward="0.10",
                                         duration_hours=1)["hit_id"]
                rows = []
                for _ in range(args.per_hit):
                    worker = side.register()
                    a = side.accept(worker.worker_id, hit_id)
                    side.submit(a.assignment_id, {"done": "yes"})
                    rows.append(P(uniqueid=f"{worker.worker_id}:{a.assignment_id}", assignmentid=a.assignment_id,
                                  workerid=worker.worker_id, hitid=hit_id, codeversion="1.0", mode="local",
                                  status=2 if n % 10 == 0 else 4, bonus=0, cond=0, counterbalance=0,
                                  beginhit=clock.now()))
                    n += 1
                with db.begin() as session:
                    session.add_all(rows)
            print(f"setup: {n} assignments on {args.hits} HITs in {time.perf_counter() - t0:.1f} s")

            calls: Counter[str] = Counter()
            client.meta.events.register("before-call.mturk.*",
                                        lambda model, **_: calls.update([model.name]))
            seen: list[tuple[int, int]] = []
            t0 = time.perf_counter()
            report = reconciliation.check(ctx, progress=lambda d, t: seen.append((d, t)))
            took = time.perf_counter() - t0
            print(f"check: {report.checked} assignments, {len(report.differences)} differences "
                  f"{report.counts()}, {took:.2f} s; progress callbacks {len(seen)} (last {seen[-1]})")
            print(f"marketplace calls: {dict(calls)} = {sum(calls.values())} "
                  "(two paged calls per HIT, not one per assignment)")

            records = MarketContext(db=db, settings=settings, clock=clock, mode="local", client=None, actor="b")
            for name, fn in (("latest (page)", lambda: reconcile_jobs.latest(records)),
                             ("last_run (badge)", lambda: reconciliation.last_run(records))):
                times = []
                for _ in range(20):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
                print(f"{name}: median {statistics.median(times) * 1000:.1f} ms over 20, no marketplace call")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
