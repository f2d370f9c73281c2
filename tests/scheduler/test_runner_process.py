"""A real ``turnout scheduler`` process: it runs a campaign another process created, a
second runner is refused in one line, and a runner killed with SIGKILL is replaced once its
lease expires. Waits poll for the outcome; nothing asserts how long anything took."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers import TURNOUT, init_project, run_turnout, turnout_cli

pytestmark = pytest.mark.slow


def _wait(predicate: Any, what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    folder = init_project(tmp_path / "study")
    env = {**os.environ, "TURNOUT_DATABASE_URL": f"sqlite:///{folder / 'participants.db'}",
           "TURNOUT_LOGFILE": str(folder / "runner.log"), "TURNOUT_LOGLEVEL": "1",
           "TURNOUT_LAUNCH_IN_MODE": "local"}
    upgraded = run_turnout(folder, "db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    yield folder, env


def _turnout(project: tuple[Path, dict[str, str]], *args: str) -> Any:
    """A short command (create, list, cancel) in this test's process, which is not the
    runner's: starting a Python process for each poll cost more than the runner's work."""
    folder, env = project
    return turnout_cli(folder, *args, env=env)


def _runner(project: tuple[Path, dict[str, str]], *extra: str) -> subprocess.Popen[str]:
    folder, env = project
    return subprocess.Popen([TURNOUT, "-C", str(folder), "scheduler", "--lease-seconds", "3", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _campaigns(project: tuple[Path, dict[str, str]]) -> list[dict[str, Any]]:
    done = _turnout(project, "campaign", "list", "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def _hits(project: tuple[Path, dict[str, str]], count: int | None = None) -> list[dict[str, Any]]:
    """The study's HITs (or [] until there are ``count`` of them)."""
    found = json.loads(_turnout(project, "hit", "list", "--json").stdout)
    return found if count is None or len(found) == count else []


def _status(project: tuple[Path, dict[str, str]]) -> str:
    return _turnout(project, "task", "list").stdout.splitlines()[0]


def test_a_runner_process_runs_what_other_processes_create(project: tuple[Path, dict[str, str]]):
    first = _runner(project)
    try:
        _wait(lambda: _status(project).startswith("runner: alive"), "the runner's lease")
        second = run_turnout(project[0], "scheduler", env=project[1])
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1
        assert second.stderr.startswith("turnout: scheduler not started: another runner is already running")

        created = _turnout(project, "campaign", "create", "--goal", "12", "--per-round", "10", "--interval", "60",
                           "--reward", "0.50", "--duration", "1", "--yes", "--json")
        assert created.exit_code == 0, created.output
        campaign_id = json.loads(created.stdout)["id"]
        row = _wait(lambda: [c for c in _campaigns(project) if c["id"] == campaign_id and c["rounds"] == 1],
                    "the runner to run the new campaign's first round")[0]
        assert row["active"] is True and row["spent"] == "6.00"  # 10 x ($0.50 + $0.10)
        hits = _wait(lambda: _hits(project, count=2), "the round's two HITs")
        assert sorted(h["max_assignments"] for h in hits) == [1, 9]

        first.send_signal(signal.SIGKILL)  # dies without giving the lease back
        first.wait(timeout=30)
        replacement = _wait(lambda: _start_when_lease_expires(project), "a new runner to take over")
        try:
            _wait(lambda: "runner: alive" in _status(project), "the new runner's heartbeat")
            after = _hits(project)
            assert sorted(h["hitid"] for h in after) == sorted(h["hitid"] for h in hits)  # nothing posted twice
            assert _turnout(project, "campaign", "cancel", str(campaign_id)).exit_code == 0
        finally:
            replacement.send_signal(signal.SIGTERM)
            assert replacement.wait(timeout=60) == 0
        assert _status(project).startswith("runner: none running")  # a clean stop gives the lease back
        log = (project[0] / "runner.log").read_text()
        assert f"campaign {campaign_id} round 1: posted" in log
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def _lease_pid(project: tuple[Path, dict[str, str]]) -> int | None:
    import sqlalchemy as sa

    engine = sa.create_engine(project[1]["TURNOUT_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT pid FROM turnout_runner_lease")).scalar()
    finally:
        engine.dispose()


def _start_when_lease_expires(project: tuple[Path, dict[str, str]]) -> subprocess.Popen[str] | None:
    """A new runner, once one holds the lease (None if it was refused: the old lease is live)."""
    proc = _runner(project)
    while proc.poll() is None:
        if _lease_pid(project) == proc.pid:
            return proc
        time.sleep(0.2)
    return None
