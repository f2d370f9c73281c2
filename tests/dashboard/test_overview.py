"""/dashboard/ (overview) and /api/overview: funnel, conditions, completions, money."""

from __future__ import annotations

from typing import Any


def test_funnel_and_conditions_match_the_rows(dash_app: Any, browser_for, seed) -> None:
    seed(dash_app, 8, status=[1, 2, 3, 4, 5, 7, 6, 4], cond=[0, 1])
    seed(dash_app, 2, prefix="S", mode="sandbox", status=4)
    b = browser_for(dash_app)
    body = b.get("/api/overview").get_json()
    steps = {f["step"]: f["count"] for f in body["funnel"]}
    assert steps == {"loaded": 8, "started": 7, "completed": 5, "submitted": 4, "approved": 2, "bonused": 1}
    assert {c["cond"]: (c["total"], c["completed"]) for c in body["conditions"]} == {0: (4, 2), 1: (4, 3)}
    assert body["money"]["spent"] == "0.00"
    page = b.get("/dashboard/").data.decode()
    assert 'data-step="completed">5<' in page and 'hx-trigger="every 15s"' in page


def test_refresh_returns_the_body_only(sqlite_dash_app: Any, browser_for) -> None:
    partial = browser_for(sqlite_dash_app).get("/dashboard/", headers={"HX-Request": "true"}).data.decode()
    assert "<html" not in partial and 'id="funnel"' in partial


def test_money_spent_and_committed_with_fees(study: Any, browser_for) -> None:
    from turnout.services import payments

    hit_id = study.hit(assignments=5, reward="1.00")
    ids = study.submit(hit_id, 2, bonus=0.5)
    payments.approve(study.ctx(), ids)
    payments.bonus(study.ctx(), ids[:1], amount="auto", reason="thanks")
    money = browser_for(study.app).get("/api/overview").get_json()["money"]
    assert (money["rewards"], money["bonuses"], money["fees"], money["spent"]) == ("2.00", "0.50", "0.50", "3.00")
    # three of five assignments still open at $1.00 + 20%
    assert (money["committed"], money["committed_fees"], money["committed_total"]) == ("3.00", "0.60", "3.60")


def test_overview_shows_the_marketplaces_accepted_count(sqlite_study: Any, browser_for) -> None:
    hit_id = sqlite_study.hit(assignments=5)
    sqlite_study.submit(hit_id, 2)
    side = sqlite_study.market.state.workers
    side.accept(side.register().worker_id, hit_id)  # accepted, never loaded the experiment
    page = browser_for(sqlite_study.app).get("/dashboard/").data.decode()
    assert 'data-accepted="3"' in page


def test_completions_hour_by_hour_while_the_study_is_young(dash_app: Any, browser_for, seed) -> None:
    from datetime import UTC, datetime

    ids = seed(dash_app, 4, status=4)
    db = dash_app.extensions["turnout"].db
    P = db.models.Participant
    ends = [datetime(2026, 3, 1, 9, 5, tzinfo=UTC), datetime(2026, 3, 1, 9, 55, tzinfo=UTC),
            datetime(2026, 3, 1, 11, 30, tzinfo=UTC), datetime(2026, 3, 2, 0, 10, tzinfo=UTC)]
    with db.begin() as session:
        for uid, end in zip(ids, ends, strict=True):
            session.get(P, uid).endhit = end
    b = browser_for(dash_app)
    body = b.get("/api/overview").get_json()
    assert body["completions_hourly"] == [{"hour": "2026-03-01T09:00:00", "count": 2},
                                          {"hour": "2026-03-01T11:00:00", "count": 1},
                                          {"hour": "2026-03-02T00:00:00", "count": 1}]
    assert body["completions"] == [{"day": "2026-03-01", "count": 3}, {"day": "2026-03-02", "count": 1}]
    assert "Completions per hour" in b.get("/dashboard/").data.decode()
    with db.begin() as session:  # a study older than three days plots per day
        session.get(P, ids[0]).endhit = datetime(2026, 2, 20, tzinfo=UTC)
    body = b.get("/api/overview").get_json()
    assert body["completions_hourly"] is None and len(body["completions"]) == 3
