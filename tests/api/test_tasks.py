"""``/api/tasks/``: the approve-all task over the task service, and the runner's heartbeat."""

from __future__ import annotations

from typing import Any


def test_create_list_delete_approve_all(study: Any, browser_for) -> None:
    b = browser_for(study.app)
    made = b.post_json("/api/tasks/", {"kind": "approve-all", "interval_minutes": 30, "mode": "local",
                                       "codeversion": "1.0"})
    assert made.status_code == 201, made.get_json()
    task = made.get_json()
    assert (task["kind"], task["interval_minutes"], task["mode"], task["codeversion"]) == \
        ("approve-all", 30, "local", "1.0")
    assert task["next_run"] and task["last_run"] is None

    same = b.post_json("/api/tasks/", {"interval_minutes": 45, "mode": "local", "codeversion": "1.0"})
    assert same.status_code == 409

    listed = b.get("/api/tasks/").get_json()
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    assert listed["runner"]["alive"] is False  # no runner in tests

    gone = b.client.delete(f"/api/tasks/{task['id']}", headers={"X-CSRFToken": b.csrf})
    assert gone.status_code == 200
    assert b.get("/api/tasks/").get_json()["tasks"] == []
    assert b.client.delete(f"/api/tasks/{task['id']}", headers={"X-CSRFToken": b.csrf}).status_code == 404


def test_running_campaigns_are_listed_as_tasks(sqlite_study: Any, browser_for) -> None:
    b = browser_for(sqlite_study.app)
    cid = b.post_json("/api/campaigns/", {"goal": 5, "per_round": 5, "interval_minutes": 30, "reward": "1.00",
                                          "duration_hours": 1, "mode": "local"}).get_json()["id"]
    rows = b.get("/api/tasks/").get_json()["tasks"]
    assert [(r["kind"], r["id"]) for r in rows] == [("campaign", cid)]


def test_interval_validation_roles_and_csrf(sqlite_study: Any, browser_for, add_user) -> None:
    app = sqlite_study.app
    b = browser_for(app)
    for body, words in [({"interval_minutes": 29, "mode": "local"}, "at least 30"),
                        ({"mode": "local"}, "interval_minutes is required"),
                        ({"interval_minutes": "soon", "mode": "local"}, "whole number"),
                        ({"kind": "reject-all", "interval_minutes": 30, "mode": "local"}, "unknown task"),
                        ({"interval_minutes": 30, "mode": "live"}, "confirm_live")]:
        answer = b.post_json("/api/tasks/", body)
        assert answer.status_code == 400, (body, answer.get_json())
        assert words in answer.get_json()["error"]["message"]
    assert b.post_json("/api/tasks/", {"interval_minutes": 30, "mode": "local"}, csrf=False).status_code == 400
    assert b.client.delete("/api/tasks/abc", headers={"X-CSRFToken": b.csrf}).status_code == 400
    assert b.get("/api/tasks/").get_json()["tasks"] == []

    tid = b.post_json("/api/tasks/", {"interval_minutes": 30, "mode": "local"}).get_json()["id"]
    assert b.client.delete(f"/api/tasks/{tid}").status_code == 400  # no CSRF header: refused
    add_user(app, "vic", "viewer", "viewer-password-1")
    viewer = browser_for(app, "vic", "viewer-password-1")
    assert viewer.get("/api/tasks/").status_code == 200
    assert viewer.post_json("/api/tasks/", {"interval_minutes": 60, "mode": "local"}).status_code == 403
    assert viewer.client.delete(f"/api/tasks/{tid}", headers={"X-CSRFToken": viewer.csrf}).status_code == 403
    assert len(b.get("/api/tasks/").get_json()["tasks"]) == 1
