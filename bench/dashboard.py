"""Server-side cost of the dashboard's participant table: the filtered, grouped JSON with
facets, and the CSV export's time and peak memory, on a database already filled by
``bench/seed.py``.

    .venv/bin/python bench/seed.py --project tests/fixtures/minimal_project \\
        --database-url sqlite:////tmp/dash.db -m 100000 --trials 5 --trial-bytes 40 --no-transitions
    .venv/bin/python bench/dashboard.py --project tests/fixtures/minimal_project \\
        --database-url sqlite:////tmp/dash.db

It calls the service the /api/participants views call (``participant_table.query`` and
``stream_csv``) and the overview's (``study_summary.summary``: funnel, conditions,
completions per day, money) in-process, so the numbers are the database and serialisation work of one
request without HTTP. The CSV's peak memory is tracemalloc's peak of Python allocations
while streaming every row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

from workload import load_project_settings

VIEWS = {
    "complete, grouped by cond (the default view)": {"complete": "true", "group_by": "cond"},
    "one mode, sorted by worker, page 20": {"mode": "sandbox", "sort": "workerid", "page": "20"},
    "all codeversions, status Approved, grouped by status": {"codeversion": "*", "status": "5",
                                                             "group_by": "status"},
    "search by worker id prefix": {"q": "s1w00001"},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--no-csv", action="store_true")
    args = parser.parse_args(argv)

    from sqlalchemy import func, select

    from turnout.db.engine import Database
    from turnout.services import participant_table
    from turnout.services.participant_table import TableQuery

    settings = load_project_settings(args.project, args.database_url)
    db = Database(settings.database_url, settings.tables)
    with db.begin() as session:
        rows = session.scalar(select(func.count()).select_from(db.models.Participant))
    report: dict[str, object] = {"backend": db.backend, "participants": rows, "views": {}}
    for name, params in VIEWS.items():
        tq = TableQuery.from_args(params, settings.codeversion)
        participant_table.query(db, tq)  # warm the connection and the caches
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = participant_table.query(db, tq)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        report["views"][name] = {"median_ms": round(statistics.median(times), 1),  # type: ignore[index]
                                 "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                                 "total": result["total"]}
    from turnout.services import study_summary

    study_summary.summary(db, codeversion=settings.codeversion, mode="sandbox")
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        overview = study_summary.summary(db, codeversion=settings.codeversion, mode="sandbox")
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    report["overview"] = {"median_ms": round(statistics.median(times), 1),
                          "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1), "total": overview["total"]}
    if not args.no_csv:
        tq = TableQuery.from_args({"codeversion": "*"}, settings.codeversion)
        start = time.perf_counter()
        lines = size = 0
        for chunk in participant_table.stream_csv(db, tq):
            lines += chunk.count("\n")
            size += len(chunk)
        seconds = time.perf_counter() - start
        tracemalloc.start()  # a second pass: tracing slows allocation, so it is not timed
        for _chunk in participant_table.stream_csv(db, tq):
            pass
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        report["csv"] = {"rows": lines - 1, "megabytes": round(size / 1e6, 1), "seconds": round(seconds, 2),
                         "peak_python_memory_mb": round(peak / 1e6, 1)}
    db.dispose()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
