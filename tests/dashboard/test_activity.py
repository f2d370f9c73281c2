"""/dashboard/activity and /api/activity(.csv): the audit log, filtered, exported."""

from __future__ import annotations

import csv
import io
from typing import Any

from turnout.services import payments


def test_activity_shows_who_paid_and_filters(study: Any, browser_for) -> None:
    hit_id = study.hit()
    (aid,) = study.submit(hit_id, 1)
    b = browser_for(study.app)
    b.post_json(f"/api/assignments/{aid}/approve")
    body = b.get("/api/activity?action=approve").get_json()
    actions = {(r["action"], r["actor"], r["outcome"]) for r in body["rows"]}
    assert ("approve", "dashboard:boss", "ok") in actions
    assert all(r["action"].startswith("approve") for r in body["rows"])
    assert b.get("/api/activity?outcome=failed").get_json()["rows"] == []
    page = b.get("/dashboard/activity?action=approve").data.decode()
    assert aid in page and "dashboard:boss" in page


def test_activity_csv_has_every_matching_event(sqlite_study: Any, browser_for) -> None:
    hit_id = sqlite_study.hit()
    ids = sqlite_study.submit(hit_id, 3)
    payments.approve(sqlite_study.ctx(), ids)
    b = browser_for(sqlite_study.app)
    api_rows = b.get("/api/activity?action=approve&limit=1000").get_json()["rows"]
    text = b.get("/api/activity.csv?action=approve").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == [r["id"] for r in api_rows]
    assert len([r for r in rows if r["action"] == "approve"]) == 3


def test_bad_activity_filter_is_400(sqlite_dash_app: Any, browser_for) -> None:
    b = browser_for(sqlite_dash_app)
    assert b.get("/api/activity?limit=0").status_code == 400
    assert b.get("/dashboard/activity?before_id=x").status_code == 400
