"""Concurrency against the real server: ``turnout serve`` with 4 gunicorn workers, on each database.

These tests prove what the in-process tests cannot: that several worker *processes* and
their threads, hitting one database at once, still balance conditions, make one row per
double-loaded /exp, and never let a stale /sync PUT replace newer data. Nothing here
depends on wall-clock speed; timeouts are generous and only counts and contents are asserted.
"""

from __future__ import annotations

import json
import random
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from servers import running_server
from turnout.config import TableNames
from turnout.db.engine import Database

pytestmark = [pytest.mark.db, pytest.mark.slow]

VENV_BIN = Path(sys.executable).parent
WORKERS = 4
NUM_CONDS = 4
START_TIMEOUT_S = 90
REQUEST_TIMEOUT_S = 120
TOKEN = re.compile(r'name="turnout-participant-token" content="([^"]+)"')


def _set_option(config: Path, key: str, value: str) -> None:
    text = config.read_text(encoding="utf-8")
    text, n = re.subn(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text)
    assert n == 1, f"{config} has no {key} line"
    config.write_text(text, encoding="utf-8")


@dataclass
class LiveServer:
    url: str
    db: Database
    log: Path

    def rows(self) -> list[Any]:
        P = self.db.models.Participant
        with self.db.begin() as session:
            return list(session.execute(select(P.uniqueid, P.workerid, P.cond, P.counterbalance,
                                               P.trial_count, P.datastring)))


@pytest.fixture
def live_server(database_url: str, project_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """``turnout serve --workers 4`` on a project copy with 4 conditions, on ``database_url``."""
    project = project_dir
    config = project / "config.txt"
    _set_option(config, "num_conds", str(NUM_CONDS))
    _set_option(config, "num_counters", "1")
    # sandbox: the experiment server alone, without local mode's offline marketplace mounted.
    env = {"TURNOUT_DATABASE_URL": database_url, "TURNOUT_LAUNCH_IN_MODE": "sandbox", "PYTHONUNBUFFERED": "1",
           "TURNOUT_LOGFILE": None}
    db = Database(database_url, TableNames())
    try:
        with running_server(project, env=env, workers=WORKERS, log_path=tmp_path / "server.out",
                            timeout_s=START_TIMEOUT_S, stop_timeout_s=30) as url:
            yield LiveServer(url=url, db=db, log=url.log_path)
    finally:
        db.dispose()


def _exp_url(server: LiveServer, worker: str, assignment: str) -> str:
    return f"{server.url}/exp?hitId=H1&assignmentId={assignment}&workerId={worker}&mode=sandbox"


def _run_all(jobs: list[Callable[[], Any]], threads: int) -> list[Any]:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [f.result() for f in [pool.submit(job) for job in jobs]]


def _failure(server: LiveServer, what: str) -> str:
    return f"{what}\n--- server output ---\n{server.log.read_text(errors='replace')[-6000:]}"


def test_200_concurrent_first_visits_balance_four_conditions(live_server: LiveServer) -> None:
    def visit(i: int) -> tuple[int, str]:
        r = requests.get(_exp_url(live_server, f"W{i:04d}", f"A{i:04d}"), timeout=REQUEST_TIMEOUT_S)
        return r.status_code, r.text

    results = _run_all([lambda i=i: visit(i) for i in range(200)], threads=64)

    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 200}, _failure(live_server, f"responses: {dict(statuses)}")
    assert all(TOKEN.search(body) for _, body in results)
    rows = live_server.rows()
    assert len(rows) == 200
    assert {r.workerid for r in rows} == {f"W{i:04d}" for i in range(200)}
    per_cond = Counter(r.cond for r in rows)
    assert set(per_cond) <= set(range(NUM_CONDS)) and {r.counterbalance for r in rows} == {0}
    counts = [per_cond.get(c, 0) for c in range(NUM_CONDS)]
    assert max(counts) - min(counts) <= 1, f"condition counts {counts} are not balanced"


def test_20_concurrent_double_loads_make_one_row(live_server: LiveServer) -> None:
    url = _exp_url(live_server, "WDOUBLE", "ADOUBLE")
    barrier = threading.Barrier(20)

    def load() -> tuple[int, str | None]:
        barrier.wait(timeout=REQUEST_TIMEOUT_S)
        r = requests.get(url, timeout=REQUEST_TIMEOUT_S)
        match = TOKEN.search(r.text)
        return r.status_code, match.group(1) if match else None

    results = _run_all([load] * 20, threads=20)

    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 20}, _failure(live_server, f"responses: {dict(statuses)}")
    tokens = {token for _, token in results}
    assert len(tokens) == 1 and None not in tokens, "every load must be handed the one participant's token"
    rows = live_server.rows()
    assert [r.uniqueid for r in rows] == ["WDOUBLE:ADOUBLE"]


def _sync_body(uniqueid: str, trials: int) -> bytes:
    worker, assignment = uniqueid.split(":")
    body = {"id": uniqueid, "workerId": worker, "assignmentId": assignment, "hitId": "H1",
            "condition": 0, "counterbalance": 0, "currenttrial": trials, "bonus": 0, "mode": "sandbox",
            "data": [{"uniqueid": uniqueid, "current_trial": i, "dateTime": 1_700_000_000_000 + i,
                      "trialdata": {"phase": "TEST", "trial": i, "rt": 400 + i}} for i in range(trials)],
            "questiondata": {}, "eventdata": []}
    return json.dumps(body).encode()


def test_concurrent_sync_puts_never_replace_newer_data_with_stale(live_server: LiveServer) -> None:
    """Two participants save as other clients do (no save stamp: fewer trials is stale), two as
    turnout's psiturk.js does (X-Turnout-Save: <page load>.<n>: an earlier n is stale)."""
    participants: dict[str, str] = {}
    stamped: dict[str, str] = {}
    for i in range(4):
        worker, assignment = f"WS{i}", f"AS{i}"
        r = requests.get(_exp_url(live_server, worker, assignment), timeout=REQUEST_TIMEOUT_S)
        assert r.status_code == 200
        participants[f"{worker}:{assignment}"] = TOKEN.search(r.text).group(1)
        if i % 2:
            stamped[f"{worker}:{assignment}"] = f"{1_700_000_000_000 + i}-0000beef"

    # Each participant's saves 1..30 race each other in a shuffled order, so newer saves
    # often land before older ones; a fixed seed keeps the order the same on every run.
    rng = random.Random(20240611)
    jobs = [(uid, n) for uid in participants for n in range(1, 31)]
    rng.shuffle(jobs)

    def put(uid: str, trials: int) -> int:
        headers = {"Content-Type": "application/json", "X-Turnout-Token": participants[uid]}
        if uid in stamped:
            headers["X-Turnout-Save"] = f"{stamped[uid]}.{trials}"
        r = requests.put(f"{live_server.url}/sync/{uid}", data=_sync_body(uid, trials), headers=headers,
                         timeout=REQUEST_TIMEOUT_S)
        return r.status_code

    statuses = Counter(_run_all([lambda u=u, n=n: put(u, n) for u, n in jobs], threads=32))
    assert set(statuses) <= {200, 409}, _failure(live_server, f"responses: {dict(statuses)}")
    # A stale save after everything has settled is refused too, in both schemes.
    for uid in participants:
        assert put(uid, 7) == 409

    stored = {r.uniqueid: r for r in live_server.rows()}
    for uid in participants:
        row = stored[uid]
        assert row.trial_count == 30, f"{uid}: stored trial count {row.trial_count}, largest sent 30"
        assert row.datastring == _sync_body(uid, 30).decode(), f"{uid}: stored data is not the largest save"
