"""``/api/campaigns/``: psiTurk's paths over the campaign service, with roles, CSRF and 4xx errors."""

from __future__ import annotations

from typing import Any

from turnout.services import campaigns

BODY = {"goal": 20, "per_round": 10, "interval_minutes": 30, "reward": "1.00", "duration_hours": 1,
        "mode": "local"}


def _count(app: Any) -> int:
    return len(campaigns.list_campaigns(app.extensions["turnout"].db))


def test_preview_changes_nothing_then_create_list_and_one_active_conflict(study: Any, browser_for) -> None:
    b = browser_for(study.app)
    preview = b.post_json("/api/campaigns/", {**BODY, "preview": True})
    assert preview.status_code == 200
    body = preview.get_json()
    assert body["first_round_hits"] == [9, 1]
    assert body["first_round_cost"] == "12.00"  # 10 x $1.00 + 20% fees (HITs of at most 9)
    assert body["full_cost"] == "24.00"
    assert _count(study.app) == 0

    created = b.post_json("/api/campaigns/", BODY)
    assert created.status_code == 201, created.get_json()
    campaign = created.get_json()
    assert (campaign["goal"], campaign["active"], campaign["mode"]) == (20, True, "local")

    listed = b.get("/api/campaigns/").get_json()
    assert [c["id"] for c in listed] == [campaign["id"]]
    assert listed[0]["forecast"]["remaining"] == 20

    again = b.post_json("/api/campaigns/", BODY)
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] and str(campaign["id"]) in again.get_json()["error"]["message"]
    assert _count(study.app) == 1


def test_goal_change_and_cancel_with_expire(study: Any, browser_for) -> None:
    b = browser_for(study.app)
    cid = b.post_json("/api/campaigns/", BODY).get_json()["id"]
    changed = b.client.patch(f"/api/campaigns/{cid}", json={"goal": 30}, headers={"X-CSRFToken": b.csrf})
    assert changed.status_code == 200 and changed.get_json()["goal"] == 30
    bad = b.client.patch(f"/api/campaigns/{cid}", json={"goal": 0}, headers={"X-CSRFToken": b.csrf})
    assert bad.status_code == 400 and "goal" in bad.get_json()["error"]["message"]
    campaigns.run_round(study.ctx(), cid)  # posts HITs of 9 + 1
    done = b.client.patch(f"/api/campaigns/{cid}", json={"is_active": False, "expire_hits": True},
                          headers={"X-CSRFToken": b.csrf})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["active"] is False and done.get_json()["expire_error"] is None
    expired = done.get_json()["expired"]
    assert len(expired) == 2 and all(e["ok"] for e in expired), expired
    listed = b.get("/api/hits/").get_json()
    assert len(listed) == 2 and all(h["is_expired"] for h in listed), listed
    assert "cancelled by dashboard:" in done.get_json()["end_reason"]
    twice = b.client.patch(f"/api/campaigns/{cid}", json={"is_active": False}, headers={"X-CSRFToken": b.csrf})
    assert twice.status_code == 409
    missing = b.client.patch("/api/campaigns/999", json={"goal": 5}, headers={"X-CSRFToken": b.csrf})
    assert missing.status_code == 404


def test_validation_errors_are_400_with_the_services_message(sqlite_study: Any, browser_for) -> None:
    b = browser_for(sqlite_study.app)
    cases = [
        ({**BODY, "reward": 1.5}, "decimal string"),
        ({**BODY, "goal": -1}, "goal"),
        ({k: v for k, v in BODY.items() if k != "per_round"}, "per_round is required"),
        ({**BODY, "budget": "0.50"}, "does not cover one HIT"),
        ({**BODY, "mode": "moon"}, "mode must be one of"),
        ({**BODY, "color": "red"}, "unknown field"),
    ]
    for body, words in cases:
        answer = b.post_json("/api/campaigns/", body)
        assert answer.status_code == 400, (body, answer.get_json())
        assert words in answer.get_json()["error"]["message"], answer.get_json()
    assert b.client.post("/api/campaigns/", data="[1]", content_type="application/json",
                         headers={"X-CSRFToken": b.csrf}).status_code == 400
    patch = b.client.patch("/api/campaigns/x", json={"goal": 3}, headers={"X-CSRFToken": b.csrf})
    assert patch.status_code == 400
    assert _count(sqlite_study.app) == 0


def test_live_needs_confirm_live(sqlite_study: Any, browser_for) -> None:
    b = browser_for(sqlite_study.app)
    refused = b.post_json("/api/campaigns/", {**BODY, "mode": "live"})
    assert refused.status_code == 400 and "confirm_live" in refused.get_json()["error"]["message"]
    assert _count(sqlite_study.app) == 0
    preview = b.post_json("/api/campaigns/", {**BODY, "mode": "live", "preview": True})
    assert preview.status_code == 200 and preview.get_json()["mode"] == "live"
    assert b.post_json("/api/campaigns/", {**BODY, "mode": "live", "confirm_live": True}).status_code == 201


def test_roles_csrf_and_bearer(sqlite_study: Any, browser_for, add_user) -> None:
    from turnout.services import accounts

    app = sqlite_study.app
    add_user(app, "vic", "viewer", "viewer-password-1")
    viewer = browser_for(app, "vic", "viewer-password-1")
    assert viewer.get("/api/campaigns/").status_code == 200
    denied = viewer.post_json("/api/campaigns/", BODY)
    assert denied.status_code == 403 and denied.get_json()["error"]["code"] == "forbidden"
    assert viewer.client.patch("/api/campaigns/1", json={"goal": 3},
                               headers={"X-CSRFToken": viewer.csrf}).status_code == 403
    assert app.test_client().get("/api/campaigns/").status_code == 401

    admin = browser_for(app)
    no_csrf = admin.post_json("/api/campaigns/", BODY, csrf=False)
    assert no_csrf.status_code == 400 and no_csrf.get_json()["error"]["code"] == "csrf_failed"
    patch = admin.client.patch("/api/campaigns/1", json={"goal": 3})
    assert patch.status_code == 400 and patch.get_json()["error"]["code"] == "csrf_failed"
    assert _count(app) == 0

    st = app.extensions["turnout.dashboard"]
    _row, token = accounts.create_token(st.db, name="script", role="payer", clock=st.clock)
    made = app.test_client().post("/api/campaigns/", json=BODY, headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["mode"] == "local"
