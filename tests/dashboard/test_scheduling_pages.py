"""The Campaigns and Tasks pages (server-rendered) and the runner warning."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from turnout.scheduler.lease import Lease
from turnout.services import campaigns, tasks

OPTIONS = {"goal": 12, "per_round": 10, "interval_minutes": 30, "reward": "1.00", "duration_hours": 1,
           "mode": "local", "codeversion": "1.0"}


def _st(study: Any) -> Any:
    return study.app.extensions["turnout.dashboard"]


def test_campaigns_page_shows_progress_money_forecast_and_past(sqlite_study: Any, browser_for, add_user) -> None:
    st = _st(sqlite_study)
    old = campaigns.create(st.db, st.settings, st.clock, **{**OPTIONS, "codeversion": "0.9"})
    campaigns.cancel(st.db, st.clock, old["id"], actor="alice")
    live = campaigns.create(st.db, st.settings, st.clock, **OPTIONS)
    campaigns.run_round(sqlite_study.ctx(), live["id"])  # posts 9 + 1: $12.00 with fees

    b = browser_for(sqlite_study.app)
    html = b.get("/dashboard/campaigns").get_data(as_text=True)
    card = html[html.index(f'id="campaign-{live["id"]}"'):html.index('id="start-h"')]
    assert 'data-field="progress">0 / 12' in card
    assert 'data-field="open">10<' in card
    assert 'data-field="rounds">1<' in card
    assert 'data-field="spent">$12.00' in card
    assert "no completions yet to forecast from" in card
    assert 'data-field="total-cost">$14.40' in card  # 12.00 committed + 2 more with fees
    past = html[html.index('id="past-campaigns"'):]
    assert f'<td class="num">{old["id"]}</td>' in past and "cancelled by alice" in past
    assert 'id="campaign-form"' in html and "Cancel campaign" in html

    add_user(sqlite_study.app, "vic", "viewer", "viewer-password-1")
    viewer = browser_for(sqlite_study.app, "vic", "viewer-password-1").get("/dashboard/campaigns").get_data(as_text=True)
    assert 'data-field="spent">$12.00' in viewer
    assert 'id="campaign-form"' not in viewer and "Cancel campaign" not in viewer


def test_tasks_page_lists_tasks_and_campaigns_with_last_run(sqlite_study: Any, browser_for) -> None:
    st = _st(sqlite_study)
    task = tasks.add(st.db, st.settings, st.clock, "approve-all", interval_minutes=30, mode="local")
    camp = campaigns.create(st.db, st.settings, st.clock, **OPTIONS)
    with tasks.recorded_run(st.db, st.clock, tasks.job_id(task["id"]), "approve-all") as run:
        run.outcome, run.counts = "ok", {"approved": 3}
    html = browser_for(sqlite_study.app).get("/dashboard/tasks").get_data(as_text=True)
    row = html[html.index(f'data-kind="approve-all" data-id="{task["id"]}"'):]
    row = row[:row.index("</tr>")]
    assert "approved 3" in row and ">ok<" in row and f'data-delete-task="{task["id"]}"' in row
    camp_row = html[html.index(f'data-kind="campaign" data-id="{camp["id"]}"'):]
    assert f'/dashboard/campaigns#campaign-{camp["id"]}' in camp_row[:camp_row.index("</tr>")]


def test_runner_warning_only_when_no_runner_is_alive(sqlite_study: Any, browser_for) -> None:
    st = _st(sqlite_study)
    b = browser_for(sqlite_study.app)
    assert 'id="runner-warning"' not in b.get("/dashboard/").get_data(as_text=True)  # nothing waits for one
    for path in ("/dashboard/campaigns", "/dashboard/tasks"):
        page = b.get(path).get_data(as_text=True)
        assert 'id="runner-warning"' in page and "turnout scheduler" in page and "do_scheduler" in page
    tasks.add(st.db, st.settings, st.clock, "approve-all", interval_minutes=30, mode="local")
    assert 'id="runner-warning"' in b.get("/dashboard/").get_data(as_text=True)

    lease = Lease(st.db, st.clock, "host-a:1:aa", timedelta(seconds=30))
    lease.acquire()
    try:
        for path in ("/dashboard/", "/dashboard/campaigns", "/dashboard/tasks"):
            assert 'id="runner-warning"' not in b.get(path).get_data(as_text=True), path
        assert 'id="runner-alive"' in b.get("/dashboard/tasks").get_data(as_text=True)
        st.clock.advance(timedelta(seconds=31))  # its heartbeat stopped: the lease expired
        assert 'id="runner-warning"' in b.get("/dashboard/tasks").get_data(as_text=True)
    finally:
        lease.release()


def test_nav_has_campaigns_and_tasks(sqlite_study: Any, browser_for) -> None:
    html = browser_for(sqlite_study.app).get("/dashboard/tasks").get_data(as_text=True)
    assert 'href="/dashboard/campaigns">Campaigns</a>' in html
    assert 'aria-current="page" href="/dashboard/tasks">Tasks</a>' in html
