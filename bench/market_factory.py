"""What a request pays for its marketplace: the first ``open_market`` of a process (boto3
client + the offline marketplace's thread) against every later one, and against building a
boto3 client, which the CLI, the runner, the simulation and the psiTurk wrapper each did per
command, job or call before the factory. Run: ``python bench/market_factory.py``."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from turnout.clock import SystemClock
from turnout.config import load_settings
from turnout.db.engine import Database
from turnout.marketplace import factory, make_client
from turnout.services.context import open_market

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "minimal_project"


def main() -> None:
    project = Path(tempfile.mkdtemp()) / "project"
    shutil.copytree(FIXTURE, project)
    settings = load_settings(project)
    db = Database(f"sqlite:///{project}/bench.db", settings.tables)
    clock = SystemClock()
    try:
        start = time.perf_counter()
        open_market(settings, db, "local", "bench", clock)
        first = time.perf_counter() - start
        cached = []
        for _ in range(200):
            start = time.perf_counter()
            open_market(settings, db, "local", "bench", clock)
            cached.append(time.perf_counter() - start)
        built = []
        for _ in range(10):
            start = time.perf_counter()
            make_client("sandbox", aws_access_key_id="a", aws_secret_access_key="b")
            built.append(time.perf_counter() - start)
    finally:
        factory.reset()
        db.dispose()
        shutil.rmtree(project.parent, ignore_errors=True)
    print(f"first open_market: {first * 1000:.1f} ms; later open_market median {statistics.median(cached) * 1e6:.0f} us; "
          f"make_client median {statistics.median(built) * 1000:.1f} ms "
          f"({statistics.median(built) / statistics.median(cached):.0f}x a cached open_market)")


if __name__ == "__main__":
    main()
