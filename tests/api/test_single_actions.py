"""One assignment or one HIT at a time: approve, reject, unreject, bonus; expire, extend."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def test_approve_then_bonus_then_no_second_bonus(study: Any, browser_for) -> None:
    hit_id = study.hit()
    (aid,) = study.submit(hit_id, 1, bonus=0.5)
    b = browser_for(study.app)
    first = b.post_json(f"/api/assignments/{aid}/approve").get_json()
    assert first["items"][0]["outcome"] == "ok"
    again = b.post_json(f"/api/assignments/{aid}/approve").get_json()
    assert again["items"][0]["outcome"] == "already"
    bonus = b.post_json(f"/api/assignments/{aid}/bonus", {"amount": "auto", "reason": "thanks"}).get_json()
    assert bonus["items"][0]["outcome"] == "ok" and bonus["paid"] == "0.50"
    second = b.post_json(f"/api/assignments/{aid}/bonus", {"amount": "auto", "reason": "thanks"}).get_json()
    assert second["items"][0]["outcome"] == "skipped"
    assert Decimal(study.balance()) == Decimal("10000.00") - Decimal("1.20") - Decimal("0.60")


def test_reject_and_unreject(sqlite_study: Any, browser_for) -> None:
    hit_id = sqlite_study.hit()
    (aid,) = sqlite_study.submit(hit_id, 1)
    b = browser_for(sqlite_study.app)
    assert b.post_json(f"/api/assignments/{aid}/reject", {"feedback": "no"}).get_json()["items"][0]["outcome"] == "ok"
    assert b.post_json(f"/api/assignments/{aid}/unreject").get_json()["items"][0]["outcome"] == "ok"


def test_bad_bonus_amount_and_unknown_operation_are_400s(sqlite_study: Any, browser_for) -> None:
    hit_id = sqlite_study.hit()
    (aid,) = sqlite_study.submit(hit_id, 1)
    b = browser_for(sqlite_study.app)
    assert b.post_json(f"/api/assignments/{aid}/bonus", {"amount": 1.5, "reason": "x"}).status_code == 400
    assert b.post_json(f"/api/assignments/{aid}/bonus", {"amount": "-1", "reason": "x"}).status_code == 400
    assert b.post_json(f"/api/assignments/{aid}/pay").status_code == 400
    assert b.post_json(f"/api/hits/{hit_id}/extend", {"minutes": "soon"}).status_code == 400


def test_hit_expire_and_extend(sqlite_study: Any, browser_for) -> None:
    hit_id = sqlite_study.hit(assignments=2)
    b = browser_for(sqlite_study.app)
    assert b.post_json(f"/api/hits/{hit_id}/expire").get_json()["ok"] is True
    assert b.get("/api/hits/?status=active").get_json() == []
    b.post_json(f"/api/hits/{hit_id}/extend", {"minutes": 60})
    assert [h["hitid"] for h in b.get("/api/hits/?status=active").get_json()] == [hit_id]


def test_live_money_needs_confirmation(sqlite_dash_app: Any, browser_for, monkeypatch) -> None:
    """In live mode an unconfirmed payment is refused before anything is sent (no
    credentials here, so it cannot reach MTurk either way)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    b = browser_for(sqlite_dash_app)
    b.post_json("/api/services_manager", {"mode": "live"})
    response = b.post_json("/api/assignments/A1/approve")
    assert response.status_code == 403 and "live mode" in response.get_json()["error"]["message"]
