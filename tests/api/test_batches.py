"""Batch actions through the API: preview, run in the background, report; never twice."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from turnout.services import batches, payments

START = Decimal("10000.00")


def finished(b: Any, batch_id: str) -> dict[str, Any]:
    assert batches.wait(batch_id, 60)
    body = b.get(f"/api/batches/{batch_id}").get_json()
    assert body["state"] == "done", body
    return body


def test_approve_all_preview_run_report_and_second_run_pays_nothing(study: Any, browser_for) -> None:
    hit_id = study.hit(assignments=5, reward="1.00")
    study.submit(hit_id, 3)
    b = browser_for(study.app)
    preview = b.post_json("/api/assignments/action/approve_all", {"mode": "local", "preview": True}).get_json()
    assert {k: preview[k] for k in ("count", "reward", "fees", "total")} == \
        {"count": 3, "reward": "3.00", "fees": "0.60", "total": "3.60"}
    assert "local" in preview["marketplace"]
    assert study.balance() == "10000.00"  # a preview changes nothing

    started = b.post_json("/api/assignments/action/approve_all", {"mode": "local", "codeversion": "1.0"})
    assert started.status_code == 202
    report = finished(b, started.get_json()["batch_id"])
    assert (report["total"], report["done"], report["skipped"], report["failed"]) == (3, 3, 0, 0)
    assert all(i["state"] == "done" and i["ledger_id"] for i in report["items"])
    assert Decimal(study.balance()) == START - Decimal("3.60")

    again = b.post_json("/api/assignments/action/approve_all", {"mode": "local"})
    second = finished(b, again.get_json()["batch_id"])
    assert second["total"] == 0 and second["done"] == 0
    assert Decimal(study.balance()) == START - Decimal("3.60")


def test_resumed_batch_skips_what_the_ledger_already_paid(study: Any, browser_for, monkeypatch,
                                                          clock: Any) -> None:
    """The process died mid-batch (its lease ran out): the next look resumes it, and the
    item that was paid before the crash is reported as skipped, not paid again."""
    hit_id = study.hit(assignments=5)
    first, *_rest = study.submit(hit_id, 3)
    b = browser_for(study.app)
    monkeypatch.setattr(batches, "_spawn", lambda *a, **k: None)  # the process "dies" at once
    batch_id = b.post_json("/api/assignments/action/approve_all", {}).get_json()["batch_id"]
    payments.approve(study.ctx(), [first])  # paid before the crash, by the dead process
    monkeypatch.undo()
    assert b.get(f"/api/batches/{batch_id}").get_json()["state"] == "running"  # lease still held
    clock.advance(batches.LEASE.total_seconds() + 1)
    b.get(f"/api/batches/{batch_id}")  # looking at it takes it over
    report = finished(b, batch_id)
    states = {i["target"]: (i["state"], i["message"]) for i in report["items"]}
    assert states[first][0] == "skipped" and "already approved" in states[first][1]
    assert (report["done"], report["skipped"]) == (2, 1)
    assert Decimal(study.balance()) == START - Decimal("3.60")


def test_bonus_all_auto_pays_each_bonus_once(study: Any, browser_for) -> None:
    hit_id = study.hit(assignments=5)
    study.submit(hit_id, 2, bonus=0.75)
    payments.approve_all(study.ctx())
    b = browser_for(study.app)
    missing = b.post_json("/api/assignments/action/bonus_all", {"preview": True})
    assert missing.status_code == 400 and "reason" in missing.get_json()["error"]["message"]
    preview = b.post_json("/api/assignments/action/bonus_all", {"preview": True, "reason": "thanks"}).get_json()
    assert (preview["count"], preview["reward"], preview["fees"], preview["total"]) == (2, "1.50", "0.30", "1.80")
    batch_id = b.post_json("/api/assignments/action/bonus_all", {"reason": "thanks"}).get_json()["batch_id"]
    assert finished(b, batch_id)["done"] == 2
    after = Decimal(study.balance())
    assert b.post_json("/api/assignments/action/bonus_all", {"preview": True, "reason": "x"}).get_json()["count"] == 0
    batch_id = b.post_json("/api/assignments/action/bonus_all", {"reason": "thanks"}).get_json()["batch_id"]
    assert finished(b, batch_id)["done"] == 0
    assert Decimal(study.balance()) == after


def test_expire_all_hits(study: Any, browser_for) -> None:
    study.hit(assignments=2)
    b = browser_for(study.app)
    assert b.post_json("/api/hits/action/expire_all", {"preview": True}).get_json()["count"] == 1
    report = finished(b, b.post_json("/api/hits/action/expire_all", {}).get_json()["batch_id"])
    assert report["done"] == 1
    assert all(h["is_expired"] for h in b.get("/api/hits/").get_json())
    assert b.get("/api/hits/?status=active").get_json() == []


def test_viewer_is_refused_a_payment(study: Any, browser_for, add_user) -> None:
    hit_id = study.hit()
    study.submit(hit_id, 1)
    add_user(study.app, "ra", "viewer", "pw")
    b = browser_for(study.app, "ra", "pw")
    response = b.post_json("/api/assignments/action/approve_all", {})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert study.balance() == "10000.00"


@pytest.mark.parametrize("path", ["/api/assignments/action/pay_everyone", "/api/hits/action/explode"])
def test_unknown_action_is_a_400(sqlite_dash_app: Any, browser_for, path: str) -> None:
    response = browser_for(sqlite_dash_app).post_json(path, {"preview": True})
    assert response.status_code == 400


def test_get_on_an_action_does_nothing(study: Any, browser_for) -> None:
    """GET never changes state (psiTurk's HIT actions were GETs a link could trigger)."""
    study.hit()
    b = browser_for(study.app)
    assert b.get("/api/hits/action/expire_all").status_code in (404, 405)
    assert not any(h["is_expired"] for h in b.get("/api/hits/").get_json())


def test_a_second_press_while_running_gets_the_same_batch(study: Any, browser_for, add_user,
                                                          monkeypatch) -> None:
    """Two people (or a double click) start "approve all" at once: one batch, not two."""
    hit_id = study.hit()
    study.submit(hit_id, 2)
    add_user(study.app, "pi", "payer", "pw-pi")
    first, second = browser_for(study.app), browser_for(study.app, "pi", "pw-pi")
    monkeypatch.setattr(batches, "_spawn", lambda *a, **k: None)  # keep the first one running
    one = first.post_json("/api/assignments/action/approve_all", {}).get_json()
    two = second.post_json("/api/assignments/action/approve_all", {}).get_json()
    assert two == {"batch_id": one["batch_id"], "already_running": True}
    assert len(batches.recent(study.ctx())) == 1


def test_an_orphan_resumes_in_its_own_mode_whoever_looks(study: Any, browser_for, monkeypatch,
                                                         clock: Any) -> None:
    hit_id = study.hit()
    study.submit(hit_id, 1)
    b = browser_for(study.app)
    monkeypatch.setattr(batches, "_spawn", lambda *a, **k: None)
    batch_id = b.post_json("/api/assignments/action/approve_all", {}).get_json()["batch_id"]
    spawned: list[str] = []
    monkeypatch.setattr(batches, "_spawn", lambda _id, _owner, mode, _opener: spawned.append(mode))
    b.post_json("/api/services_manager", {"mode": "sandbox"})  # the viewer's own mode differs
    clock.advance(batches.LEASE.total_seconds() + 1)
    assert b.get(f"/api/batches/{batch_id}").get_json()["mode"] == "local"
    assert spawned == ["local"]


def _set_cond(study: Any, assignment_id: str, cond: int) -> None:
    from sqlalchemy import update

    P = study.st.db.models.Participant
    with study.st.db.begin() as session:
        session.execute(update(P).where(P.assignmentid == assignment_id).values(cond=cond))


def test_a_batch_over_a_table_filter_acts_on_what_the_filter_shows(sqlite_study: Any, browser_for) -> None:
    """The same filter as the participant table (its query string) picks the batch's
    items; approve, bonus and reject each go through the ledger, once."""
    study = sqlite_study
    hit_id = study.hit(assignments=5, reward="1.00")
    first, second, third = study.submit(hit_id, 3)
    _set_cond(study, third, 1)
    b = browser_for(study.app)
    preview = b.post_json("/api/participants/action/approve?cond=1", {"preview": True}).get_json()
    assert (preview["count"], preview["reward"], preview["fees"], preview["total"]) == (1, "1.00", "0.20", "1.20")
    report = finished(b, b.post_json("/api/participants/action/approve?cond=1", {}).get_json()["batch_id"])
    assert [(i["target"], i["state"]) for i in report["items"]] == [(third, "done")]
    assert Decimal(study.balance()) == START - Decimal("1.20")

    bonus = b.post_json("/api/participants/action/bonus?cond=1", {"amount": "0.50", "reason": "thanks"})
    assert finished(b, bonus.get_json()["batch_id"])["done"] == 1
    again = b.post_json("/api/participants/action/bonus?cond=1", {"amount": "0.50", "reason": "thanks",
                                                                   "preview": True}).get_json()
    assert again["count"] == 0  # already bonused: a second press pays nothing
    assert Decimal(study.balance()) == START - Decimal("1.20") - Decimal("0.60")

    rejected = b.post_json("/api/participants/action/reject?cond=0", {"feedback": "incomplete"})
    report = finished(b, rejected.get_json()["batch_id"])
    assert sorted(i["target"] for i in report["items"]) == sorted([first, second]) and report["done"] == 2
    statuses = {a["assignmentId"]: a["status"] for a in b.get("/api/assignments/").get_json()["rows"]}
    assert (statuses[first], statuses[second], statuses[third]) == ("Rejected", "Rejected", "Approved")


@pytest.mark.parametrize(("path", "body"), [
    ("/api/participants/action/pay_everyone", {"preview": True}),
    ("/api/participants/action/approve?status=bogus", {"preview": True}),
    ("/api/participants/action/bonus", {"preview": True}),  # no reason
    ("/api/participants/action/bonus", {"preview": True, "reason": "r", "amount": "lots"}),
])
def test_a_bad_filter_batch_is_a_400(sqlite_study: Any, browser_for, path: str, body: dict[str, Any]) -> None:
    response = browser_for(sqlite_study.app).post_json(path, body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"]


def test_a_second_press_on_the_same_filter_gets_the_same_batch_another_filter_its_own(
        sqlite_study: Any, browser_for, monkeypatch) -> None:
    hit_id = sqlite_study.hit()
    sqlite_study.submit(hit_id, 2)
    b = browser_for(sqlite_study.app)
    monkeypatch.setattr(batches, "_spawn", lambda *a, **k: None)  # keep them running
    one = b.post_json("/api/participants/action/approve?cond=0", {}).get_json()
    two = b.post_json("/api/participants/action/approve?cond=0", {}).get_json()
    other = b.post_json("/api/participants/action/approve?cond=1", {}).get_json()
    assert two == {"batch_id": one["batch_id"], "already_running": True}
    assert other["already_running"] is False and other["batch_id"] != one["batch_id"]
