"""``turnout hit|worker|ledger|balance|mode`` through click's runner, in local mode, with
no server running: the commands serve the project's offline store in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from servers import turnout_cli as run
from turnout.config import load_settings
from turnout.marketplace.local import MarketplaceState


def ok_json(project: Path, *args: str) -> Any:
    result = run(project, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def project(project_dir: Path) -> Path:
    assert run(project_dir, "db", "upgrade").exit_code == 0
    return project_dir


def store(project: Path) -> MarketplaceState:
    return MarketplaceState(load_settings(project).marketplace_store)


def submit(project: Path, hit_id: str, count: int) -> list[str]:
    side = store(project).workers
    done = []
    for _ in range(count):
        worker = side.register()
        done.append(side.submit(side.accept(worker.worker_id, hit_id).assignment_id, {"x": "1"}).assignment_id)
    return done


def test_hit_create_shows_cost_asks_and_creates(project: Path) -> None:
    refused = run(project, "hit", "create", "3", "0.50", "1")
    assert refused.exit_code == 1
    assert "$1.50 + MTurk fees $0.30 (20%) = $1.80" in refused.output
    assert "not confirmed" in refused.stderr
    assert ok_json(project, "hit", "list") == []

    created = run(project, "hit", "create", "3", "0.50", "1", input="y\n")
    assert created.exit_code == 0, created.output
    assert "created local HIT" in created.stdout
    (listed,) = ok_json(project, "hit", "list")
    assert (listed["max_assignments"], listed["reward"], listed["codeversion"]) == (3, "0.50", "1.0")


def test_bad_input_is_one_line_and_non_zero(project: Path) -> None:
    for args in (["hit", "create", "0", "1.00", "1", "--yes"], ["hit", "create", "2", "1.001", "1", "--yes"],
                 ["hit", "create", "2", "1.00", "-1", "--yes"], ["hit", "create"], ["hit", "extend", "NOPE"],
                 ["worker", "approve"], ["worker", "bonus", "--auto", "--amount", "1", "--all", "--reason", "x"],
                 ["worker", "bonus", "--amount", "1", "--all"], ["mode", "nowhere"],
                 ["hit", "expire"], ["hit", "list", "--active", "--reviewable"]):
        result = run(project, *args)
        assert result.exit_code != 0, args
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert result.stderr.startswith("turnout: "), (args, result.stderr)


def test_approve_and_bonus_all_then_again_pays_nothing(project: Path) -> None:
    hit_id = ok_json(project, "hit", "create", "4", "1.00", "1", "--yes")["hit_id"]
    assignments = submit(project, hit_id, 2)
    listed = ok_json(project, "worker", "list", "--submitted")
    assert sorted(a["assignmentId"] for a in listed) == sorted(assignments)

    approved = ok_json(project, "worker", "approve", "--all")
    assert approved["counts"] == {"ok": 2}
    bonused = ok_json(project, "worker", "bonus", "--amount", "0.25", "--reason", "thanks", "--all")
    assert (bonused["counts"], bonused["paid"]) == ({"ok": 2}, "0.50")
    balance = ok_json(project, "balance")["available_balance"]

    again = run(project, "worker", "bonus", "--amount", "0.25", "--reason", "thanks", "--all")
    assert again.exit_code == 0
    assert "2 skipped" in again.stdout
    assert ok_json(project, "balance")["available_balance"] == balance == "9997.00"
    ledger = ok_json(project, "ledger", "list")
    assert sorted((e["kind"], e["state"]) for e in ledger) == [("approve", "succeeded")] * 2 + [
        ("bonus", "succeeded")] * 2


def test_reject_then_unreject_and_delete(project: Path) -> None:
    hit_id = ok_json(project, "hit", "create", "2", "1.00", "1", "--yes")["hit_id"]
    (assignment,) = submit(project, hit_id, 1)
    refused = run(project, "hit", "delete", hit_id)
    assert refused.exit_code == 1 and "expire it first" in refused.stdout
    assert ok_json(project, "worker", "reject", assignment, "--feedback", "blank answers")["counts"] == {"ok": 1}
    assert ok_json(project, "worker", "unreject", assignment)["counts"] == {"ok": 1}
    assert ok_json(project, "hit", "expire", "--all")[0]["ok"]
    assert ok_json(project, "hit", "delete", "--all")[0]["ok"]
    assert ok_json(project, "hit", "list") == []


def test_extend_refuses_crossing_ten_up_front(project: Path) -> None:
    hit_id = ok_json(project, "hit", "create", "5", "1.00", "1", "--yes")["hit_id"]
    result = run(project, "hit", "extend", hit_id, "--assignments", "5")
    assert result.exit_code == 1
    assert "Add at most 4 here" in result.stderr
    assert ok_json(project, "hit", "extend", hit_id, "--assignments", "4", "--expiration", "30")["max_assignments"] == 9


def test_live_money_refuses_without_confirmation(project: Path) -> None:
    # No stdin answer and no --yes: refused before any call to MTurk is made.
    result = run(project, "worker", "approve", "--all", "--mode", "live")
    assert result.exit_code == 1
    assert "LIVE MTurk" in result.output and "not confirmed" in result.stderr
    result = run(project, "worker", "bonus", "--auto", "--reason", "x", "--all", "--mode", "live", input="n\n")
    assert result.exit_code == 1 and "cancelled" in result.stderr


def test_mode_prints_and_rewrites_config_keeping_comments(project: Path) -> None:
    assert ok_json(project, "mode") == {"mode": "local", "source": "config.txt"}
    config = project / "config.txt"
    config.write_text(config.read_text().replace("[Shell Parameters]", "# keep me\n[Shell Parameters]\n; and me"))
    assert run(project, "mode", "sandbox").exit_code == 0
    text = config.read_text()
    assert "launch_in_mode = sandbox" in text and "# keep me" in text and "; and me" in text
    assert ok_json(project, "mode")["mode"] == "sandbox"
    assert ok_json(project, "mode", "--mode", "live")["mode"] == "live"  # --mode shows, never writes


def test_set_launch_mode_adds_section_when_missing(tmp_path: Path) -> None:
    from turnout.config import set_launch_mode

    config = tmp_path / "config.txt"
    config.write_text("[HIT Configuration]\ntitle = x")
    set_launch_mode(config, "live")
    assert config.read_text() == "[HIT Configuration]\ntitle = x\n\n[Shell Parameters]\nlaunch_in_mode = live\n"


def test_money_and_duration_input_is_refused_on_one_line(project: Path) -> None:
    """Issue 6 items 6 and 7: no traceback, nothing posted or paid, for amounts and durations
    MTurk would refuse or no one meant."""
    bonus = ["worker", "bonus", "--all", "--reason", "x", "--amount"]
    for args in ([*bonus, "1e999"], [*bonus, "1e2"], [*bonus, "1.005"], [*bonus, "inf"], [*bonus, "-1"],
                 ["hit", "create", "3", "1e999", "1", "--yes"], ["hit", "create", "3", "0.50", "inf", "--yes"],
                 ["hit", "create", "99999999999999999999", "0.50", "1", "--yes"],
                 ["hit", "create", "3", "0.50", "1e-9", "--yes"], ["hit", "create", "3", "0.50", "0.008", "--yes"],
                 ["hit", "create", "3", "0.50", "8761", "--yes"], ["hit", "create", "3", "1e2", "1", "--yes"],
                 ["hit", "create", "3", "0.00", "1", "--yes"], ["hit", "create", "3", "0.50", "nan", "--yes"]):
        result = run(project, *args)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert result.stderr.startswith("turnout: "), (args, result.stderr)
        assert "Traceback" not in result.output
    assert "at least 30 seconds" in run(project, "hit", "create", "3", "0.50", "0.008", "--yes").stderr
    assert "plain" in run(project, *bonus, "1e2").stderr
    assert ok_json(project, "hit", "list") == []
    created = ok_json(project, "hit", "create", "3", "0.50", "0.0084", "--yes")  # 30.24 s: MTurk's minimum
    assert created["state"] == "created"


def test_override_is_previewed_as_paying_again(project: Path) -> None:
    result = run(project, "worker", "bonus", "--all", "--amount", "0.50", "--reason", "x",
                 "--override-bonused-status")
    assert result.exit_code == 0, result.output
    assert "paid AGAIN" in result.stderr


def test_payment_summaries_show_fees_and_tables_are_readable(project: Path) -> None:
    """Issue 11 items 3 and 4: what workers got, MTurk's fees and the total; names, two
    decimals, times to the second, the real override flag."""
    hit_id = ok_json(project, "hit", "create", "4", "1.30", "1", "--yes")["hit_id"]
    submit(project, hit_id, 2)
    approved = run(project, "worker", "approve", "--all")
    assert approved.exit_code == 0, approved.output
    assert "paid $2.60 to workers + MTurk fees $0.52 = $3.12" in approved.stdout
    bonused = run(project, "worker", "bonus", "--amount", "0.5", "--reason", "thanks", "--all")
    assert "paid $1.00 to workers + MTurk fees $0.20 = $1.20" in bonused.stdout
    assert ok_json(project, "balance")["available_balance"] == f"{10000 - 3.12 - 1.20:.2f}"
    again = run(project, "worker", "bonus", "--amount", "0.5", "--reason", "thanks", "--all")
    assert "pass --override-bonused-status to pay another bonus" in again.stdout

    listed = run(project, "worker", "list").stdout
    assert "participant" in listed and "0.50" in listed
    hits_table = run(project, "hit", "list").stdout
    assert "reviewed" in hits_table and "approved or rejected" in hits_table
    assert "1.30" in hits_table
    import re

    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", hits_table), hits_table
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", hits_table + listed), "times are to the second"
    ledger = run(project, "ledger", "list").stdout
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", ledger) and "0.50" in ledger


def test_worker_list_names_participant_statuses() -> None:
    from turnout.cli.base import _money, _status_name, _when

    assert [_status_name(c) for c in (4, 5, 7, None)] == ["submitted", "credited", "bonused", ""]
    assert (_money("0.5"), _money(0.3), _money(None)) == ("0.50", "0.30", "")
    assert _when("2026-01-01T12:00:00.123456+00:00").count(":") == 2


def test_an_unusable_marketplace_store_is_one_line(project: Path) -> None:
    """Issue 13 item 8: a store the offline marketplace cannot open (locked past SQLite's busy
    timeout, not a SQLite file) ends the command with one line naming it, not a traceback."""
    path = load_settings(project).marketplace_store
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a database")
    result = run(project, "worker", "bonus", "--amount", "0.50", "--reason", "x", "--all")
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "local_store" in result.stderr, result.stderr
    assert "Traceback" not in result.output
