"""``turnout campaign`` and ``turnout task`` through click's runner (SQLite, local mode):
the names, flags and JSON keys scripts rely on, and one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from servers import turnout_cli as run

CREATE = ["campaign", "create", "--goal", "20", "--per-round", "10", "--interval", "30", "--reward", "1.00",
          "--duration", "1", "--mode", "local"]
LIST_KEYS = {"id", "codeversion", "mode", "goal", "completed", "open", "active", "ended", "end_reason", "rounds",
             "spent"}



@pytest.fixture
def project(project_dir: Path) -> Path:
    assert run(project_dir, "db", "upgrade").exit_code == 0
    return project_dir


def one_line_error(result: Any, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    # (an unanswered prompt first ends its own line, as `turnout hit create` does)
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("turnout: "), result.stderr
    return line


def test_campaign_create_shows_the_cost_asks_and_refuses_without_an_answer(project: Path):
    refused = run(project, *CREATE, "--budget", "30")
    assert "first round: HITs of 9 + 1 assignment(s) = $12.00 with MTurk's fees" in refused.stdout
    assert "the whole goal, if every assignment completes: $24.00 with fees; budget $30.00" in refused.stdout
    assert "not confirmed" in one_line_error(refused)
    assert json.loads(run(project, "campaign", "list", "--json").stdout) == []
    created = run(project, *CREATE, input="y\n")
    assert created.exit_code == 0, created.output
    assert "started campaign 1" in created.stdout
    assert "no runner is running" in created.stderr


def test_campaign_list_json_has_the_documented_keys(project: Path):
    assert run(project, *CREATE, "--yes").exit_code == 0
    (row,) = json.loads(run(project, "campaign", "list", "--json").stdout)
    assert set(row) >= LIST_KEYS
    assert (row["id"], row["goal"], row["completed"], row["open"], row["active"], row["ended"], row["rounds"],
            row["spent"]) == (1, 20, 0, 0, True, None, 0, "0.00")
    assert row["codeversion"] == "1.0" and row["mode"] == "local"
    again = run(project, *CREATE, "--yes")
    assert "campaign 1 is already active for codeversion 1.0 in mode local" in one_line_error(again)


def test_campaign_goal_and_cancel(project: Path):
    assert run(project, *CREATE, "--yes").exit_code == 0
    assert "goal now 25" in run(project, "campaign", "goal", "1", "25").stdout
    assert "must be at least 1" in one_line_error(run(project, "campaign", "goal", "1", "0"))
    assert "no campaign 7" in one_line_error(run(project, "campaign", "goal", "7", "30"))
    assert "campaign number" in one_line_error(run(project, "campaign", "cancel", "x"))
    cancelled = run(project, "campaign", "cancel", "1", "--expire-hits")
    assert cancelled.exit_code == 0 and "cancelled campaign 1" in cancelled.stdout
    (row,) = json.loads(run(project, "campaign", "list", "--json").stdout)
    assert row["active"] is False and row["ended"] and row["end_reason"].startswith("cancelled by cli:")
    assert "already ended" in one_line_error(run(project, "campaign", "cancel", "1"))


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--goal", "0", "the goal must be at least 1"),
    ("--interval", "x", "minutes between rounds must be a whole number"),
    ("--reward", "abc", "the HIT reward must be a plain dollar amount"),
    ("--budget", "1.00", "does not cover one HIT of 9 assignment(s)"),
])
def test_campaign_create_refuses_bad_settings_in_one_line(project: Path, flag: str, value: str, message: str):
    args = list(CREATE)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    assert message in one_line_error(run(project, *args, "--yes"))


def test_task_add_list_remove(project: Path):
    assert "at least 30 minutes" in one_line_error(run(project, "task", "add", "approve-all", "--interval", "20"))
    added = run(project, "task", "add", "approve-all", "--interval", "45", "--mode", "local", "--codeversion", "2.0",
                "--json")
    assert added.exit_code == 0, added.output
    task = json.loads(added.stdout)
    assert (task["kind"], task["mode"], task["codeversion"], task["interval_minutes"]) == (
        "approve-all", "local", "2.0", 45)
    assert run(project, *CREATE, "--yes").exit_code == 0
    listed = json.loads(run(project, "task", "list", "--json").stdout)
    assert [(t["kind"], t["id"]) for t in listed] == [("approve-all", task["id"]), ("campaign", 1)]
    text = run(project, "task", "list").stdout
    assert text.startswith("runner: none running") and "approve-all" in text
    assert run(project, "task", "remove", str(task["id"])).exit_code == 0
    assert "no task" in one_line_error(run(project, "task", "remove", str(task["id"])))
    assert [t["kind"] for t in json.loads(run(project, "task", "list", "--json").stdout)] == ["campaign"]
    assert one_line_error(run(project, "task", "add", "delete-all", "--interval", "30"), exit_code=2)


def test_serve_refuses_do_scheduler_with_several_workers(project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TURNOUT_DO_SCHEDULER", "true")
    monkeypatch.setenv("TURNOUT_THREADS", "3")
    refused = run(project, "serve")
    assert "threads = 1" in one_line_error(refused) and "turnout scheduler" in refused.stderr
