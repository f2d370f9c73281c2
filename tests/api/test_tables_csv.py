"""The Workers and HITs pages' CSV twins give exactly the rows the page and the JSON list."""

from __future__ import annotations

import csv
import io
from typing import Any


def _csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.data.decode())))


def test_assignments_csv_matches_the_workers_page_and_json(sqlite_study: Any, browser_for) -> None:
    from turnout.services import payments

    first, second = sqlite_study.hit(), sqlite_study.hit()
    approved = sqlite_study.submit(first, 2, bonus=1.5)
    submitted = sqlite_study.submit(second, 3)
    payments.approve(sqlite_study.ctx(), approved)
    b = browser_for(sqlite_study.app)

    every = _csv(b.get("/api/assignments.csv"))
    assert sorted(r["assignmentId"] for r in every) == sorted(approved + submitted)
    only = _csv(b.get("/api/assignments.csv?status=Submitted"))
    assert sorted(r["assignmentId"] for r in only) == sorted(submitted)
    as_json = b.get("/api/assignments/?status=Submitted&per_page=500").get_json()["rows"]
    assert [r["assignmentId"] for r in only] == [r["assignmentId"] for r in as_json]
    page = b.get("/dashboard/workers?status=Submitted").data.decode()
    assert sorted(a for a in approved + submitted if f'data-assignment="{a}"' in page) == sorted(submitted)
    assert 'href="/api/assignments.csv?status=Submitted"' in page
    row = next(r for r in every if r["assignmentId"] == approved[0])
    assert (row["status"], row["local_status_name"], row["bonus"], row["hitId"]) == ("Approved", "Approved", "1.5",
                                                                                      first)
    assert _csv(b.get(f"/api/assignments.csv?hit_id={first}"))[0]["hitId"] == first
    bad = b.get("/api/assignments.csv?status=Paid")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_input"


def test_hits_csv_matches_the_hits_page_filters(sqlite_study: Any, browser_for, add_user) -> None:
    from turnout.services import hits

    first, second = sqlite_study.hit(), sqlite_study.hit(assignments=3, reward="0.50")
    hits.expire_hits(sqlite_study.ctx(), [first])
    add_user(sqlite_study.app, "ra", "viewer", "pw-ra")
    b = browser_for(sqlite_study.app, "ra", "pw-ra")  # a viewer sees and exports
    every = _csv(b.get("/api/hits.csv"))
    assert [r["hitid"] for r in every] == [first, second]
    active = _csv(b.get("/api/hits.csv?status=active"))
    assert [(r["hitid"], r["max_assignments"], r["reward"]) for r in active] == [(second, "3", "0.50")]
    assert [h["hitid"] for h in b.get("/api/hits/?status=active").get_json()] == [r["hitid"] for r in active]
    page = b.get("/dashboard/hits?show=active").data.decode()
    assert 'href="/api/hits.csv?status=active"' in page and first not in page
    assert b.get("/api/hits.csv?status=bogus").status_code == 400
    assert sqlite_study.app.test_client().get("/api/hits.csv").status_code == 401


def test_campaigns_tasks_and_reconcile_csv_twins(sqlite_study: Any, browser_for) -> None:
    b = browser_for(sqlite_study.app)
    cid = b.post_json("/api/campaigns/", {"goal": 20, "per_round": 10, "interval_minutes": 30, "reward": "1.00",
                                          "duration_hours": 1, "mode": "local"}).get_json()["id"]
    task_id = b.post_json("/api/tasks/", {"interval_minutes": 45, "mode": "local",
                                          "codeversion": "1.0"}).get_json()["id"]
    camp = _csv(b.get("/api/campaigns.csv"))
    assert [(r["id"], r["goal"], r["active"], r["mode"]) for r in camp] == [(str(cid), "20", "True", "local")]
    listed = b.get("/api/tasks/").get_json()["tasks"]
    tasks = _csv(b.get("/api/tasks.csv"))
    assert [(r["id"], r["kind"]) for r in tasks] == [(str(t["id"]), t["kind"]) for t in listed]
    assert (str(task_id), "approve-all") in [(r["id"], r["kind"]) for r in tasks]
    diffs = b.get("/api/reconciliation/last.csv")
    assert diffs.status_code == 200 and diffs.data.decode().splitlines() == [
        "kind,assignment_id,worker_id,hit_id,local_status,marketplace_status,detail,remedies,uniqueids"]


def test_every_page_links_a_json_twin_that_answers(sqlite_study: Any, browser_for) -> None:
    import re

    b = browser_for(sqlite_study.app)
    uid = sqlite_study.submit(sqlite_study.hit(), 1)[0]
    uniqueid = next(r["uniqueid"] for r in b.get("/api/assignments/").get_json()["rows"] if r["assignmentId"] == uid)
    pages = ["/dashboard/", "/dashboard/participants", f"/dashboard/participants/{uniqueid}", "/dashboard/workers",
             "/dashboard/hits", "/dashboard/activity", "/dashboard/campaigns", "/dashboard/tasks",
             "/dashboard/reconciliation", "/dashboard/settings", "/dashboard/settings/accounts"]
    for path in pages:
        page = b.get(path)
        assert page.status_code == 200, path
        twins = re.findall(r'href="(/api/[^"]+)"', page.data.decode())
        json_links = [t for t in twins if ".csv" not in t and "openapi" not in t]
        assert json_links, f"{path} links no JSON twin"
        for link in twins:
            answer = b.get(link.replace("&amp;", "&"))
            assert answer.status_code == 200, (path, link)
