"""Pre-fill a turnout database with M past participants, so per-request cost can be compared
at 1k and at 100k existing rows.

Rows look like a study's history: mostly paid participants with full task data, some who
quit or never started, spread over the last six months, balanced over the conditions, all
of the project's codeversion and the given mode (the worst case for counterbalancing,
which counts exactly those rows). Status transitions are written too. Deterministic for a
given --seed; bulk inserts in batches, one transaction per batch.

    .venv/bin/python bench/seed.py --project tests/fixtures/minimal_project \\
        --database-url postgresql://postgres@127.0.0.1/bench -m 100000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workload import load_project_settings, task_body, task_trials

# (status, weight): credited and bonused dominate a finished study.
STATUS_MIX = ((5, 45), (7, 10), (4, 5), (3, 5), (6, 15), (2, 10), (1, 10))
COMPLETED = {3, 4, 5, 7}
PATH = {1: [1], 2: [1, 2], 6: [1, 2, 6], 3: [1, 2, 3], 4: [1, 2, 3, 4], 5: [1, 2, 3, 4, 5],
        7: [1, 2, 3, 4, 5, 7]}
REASONS = {1: "exp", 2: "inexp", 3: "complete", 4: "worker_submitted", 5: "approve", 6: "quitter", 7: "bonus"}
BROWSERS = (("chrome", "windows"), ("chrome", "mac os x"), ("firefox", "windows"), ("safari", "mac os x"),
            ("edge", "windows"), ("chrome", "linux"))


def make_rows(rng: random.Random, seed: int, start: int, count: int, *, codeversion: str, mode: str,
              num_conds: int, num_counters: int, trials: int, trial_bytes: int, now: datetime
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    statuses = [s for s, _ in STATUS_MIX]
    weights = [w for _, w in STATUS_MIX]
    participants, transitions = [], []
    for i in range(start, start + count):
        worker, assignment = f"s{seed}w{i:07d}", f"s{seed}a{i:07d}"
        uid = f"{worker}:{assignment}"
        status = rng.choices(statuses, weights)[0]
        cond, counter = rng.randrange(num_conds), rng.randrange(num_counters)
        beginhit = now - timedelta(days=rng.uniform(0.05, 180))
        beginexp = beginhit + timedelta(seconds=rng.uniform(30, 240)) if status != 1 else None
        endhit = beginexp + timedelta(minutes=rng.uniform(8, 35)) if status in COMPLETED else None
        if status in COMPLETED:
            n = max(1, round(rng.gauss(trials, trials * 0.05)))
        elif status == 1:
            n = 0
        else:
            n = rng.randint(0, trials)
        datastring = None
        if status != 1:
            fields = {"condition": cond, "counterbalance": counter, "assignmentId": assignment,
                      "workerId": worker, "hitId": f"s{seed}h{i // 500:05d}", "bonus": 0, "id": uid}
            body = task_body(fields, task_trials(seed, uid, n, trial_bytes), n, mode=mode,
                             questions={"age": str(rng.randint(18, 70))} if status in COMPLETED else None)
            datastring = body.decode()
        browser, platform = rng.choice(BROWSERS)
        participants.append({
            "uniqueid": uid, "assignmentid": assignment, "workerid": worker, "hitid": f"s{seed}h{i // 500:05d}",
            "ipaddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "browser": browser, "platform": platform, "language": "en-US", "cond": cond,
            "counterbalance": counter, "codeversion": codeversion, "beginhit": beginhit, "beginexp": beginexp,
            "endhit": endhit, "bonus": round(0.01 * rng.randint(0, 50), 2) if status == 7 else 0.0,
            "status": status, "mode": mode, "datastring": datastring,
            "turnout_token": "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
                                                 k=43)),
            "turnout_trials": n if datastring is not None else 0,
        })
        at = beginhit
        previous = None
        for step in PATH[status]:
            transitions.append({"table_name": "", "uniqueid": uid, "old_status": previous, "new_status": step,
                                "reason": REASONS[step], "at": at, "processed_at": at, "detail": None})
            previous = step
            at = at + timedelta(minutes=rng.uniform(1, 30))
    return participants, transitions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, required=True,
                        help="project folder (codeversion, conditions and table names come from its config)")
    parser.add_argument("--database-url", help="database to fill (default: the project's)")
    parser.add_argument("-m", "--rows", type=int, required=True, help="participants to add")
    parser.add_argument("--mode", default="sandbox")
    parser.add_argument("--trials", type=int, default=50, help="trials of a finished participant (mean)")
    parser.add_argument("--trial-bytes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000, help="rows per INSERT batch and transaction")
    parser.add_argument("--no-transitions", action="store_true", help="skip the status-transition rows")
    args = parser.parse_args(argv)
    if args.rows < 0 or args.batch < 1:
        parser.error("--rows must be >= 0 and --batch >= 1")

    from sqlalchemy import func, insert, select

    from turnout.db.engine import Database
    from turnout.db.migrate import upgrade

    settings = load_project_settings(args.project, args.database_url)
    db = Database(settings.database_url, settings.tables)
    upgrade(db)
    P, T = db.models.Participant, db.models.StatusTransition
    with db.begin() as session:
        clash = session.scalar(select(func.count()).select_from(P).where(P.workerid.like(f"s{args.seed}w%")))
    if clash:
        raise SystemExit(f"the database already holds {clash} rows seeded with --seed {args.seed}; "
                         "use another seed or a fresh database")

    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    started = time.perf_counter()
    written = 0
    try:
        for start in range(0, args.rows, args.batch):
            count = min(args.batch, args.rows - start)
            rows, transitions = make_rows(
                rng, args.seed, start, count, codeversion=settings.codeversion, mode=args.mode,
                num_conds=settings.num_conds, num_counters=settings.num_counters, trials=args.trials,
                trial_bytes=args.trial_bytes, now=now)
            for t in transitions:
                t["table_name"] = settings.tables.participants
            with db.begin() as session:
                session.execute(insert(P.__table__), rows)
                if not args.no_transitions:
                    session.execute(insert(T.__table__), transitions)
            written += count
            if written % (args.batch * 10) == 0 or written == args.rows:
                rate = written / (time.perf_counter() - started)
                print(f"  {written}/{args.rows} participants ({rate:.0f}/s)", flush=True)
        with db.begin() as session:
            total = session.scalar(select(func.count()).select_from(P))
            sizes = session.scalar(select(func.sum(func.length(P.datastring))))
        # Fresh planner statistics (and, on PostgreSQL, the visibility map that index-only
        # scans need), as autovacuum / InnoDB's auto-recalculation would soon give a live
        # database; without them the first measurements would see a stale plan.
        quote = db.engine.dialect.identifier_preparer.quote
        verb = {"postgresql": "VACUUM ANALYZE", "sqlite": "ANALYZE"}.get(db.backend, "ANALYZE TABLE")
        for table in (P.__table__.name, T.__table__.name):
            if db.backend == "postgresql":  # VACUUM refuses to run inside a transaction
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql(f"{verb} {quote(table)}")
            else:
                with db.engine.begin() as conn:
                    conn.exec_driver_sql(f"{verb} {quote(table)}")
    finally:
        db.dispose()
    print(json.dumps({"added": written, "participants_now": total, "datastring_bytes": int(sizes or 0),
                      "seconds": round(time.perf_counter() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
