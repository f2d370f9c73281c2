"""/api/reconciliation: the report, the background check, and one fix at a time (issue 10)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dashboard.conftest import PAYER_PW, VIEWER_PW


def behind_the_labs_back(study: Any, hit_id: str) -> str:
    """A submitted assignment approved on the marketplace directly: approved_remotely."""
    (aid,) = study.submit(hit_id, 1)
    study.ctx().client.approve_assignment(AssignmentId=aid)
    return aid


def test_the_report_lists_each_difference_with_its_remedies(study: Any, browser_for) -> None:
    hit_id = study.hit()
    approved = behind_the_labs_back(study, hit_id)
    (unfinished,) = study.submit(hit_id, 1, status=2)  # submitted without finishing
    study.submit(hit_id, 1, status=4)  # agrees: submitted on both sides
    b = browser_for(study.app)
    body = b.get("/api/reconciliation?mode=local").get_json()
    assert body["checked"] == 3
    found = {d["assignment_id"]: d for d in body["differences"]}
    assert set(found) == {approved, unfinished}
    assert found[approved]["kind"] == "approved_remotely" and found[approved]["remedies"] == ["sync_local"]
    assert found[unfinished]["kind"] == "submitted_remotely"
    assert found[unfinished]["remedies"] == ["approve", "reject", "exclude"]
    d = found[unfinished]
    assert (d["hit_id"], d["local_status"], d["marketplace_status"]) == (hit_id, "Started", "Submitted")
    assert set(d) >= {"assignment_id", "worker_id", "hit_id", "kind", "local_status", "marketplace_status",
                      "detail", "remedies"}


def test_a_bonus_fix_previews_then_pays_exactly_once(study: Any, browser_for) -> None:
    hit_id = study.hit(reward="1.00")
    (aid,) = study.submit(hit_id, 1, bonus=0.5)
    b = browser_for(study.app)
    assert b.post_json(f"/api/assignments/{aid}/approve").get_json()["items"][0]["outcome"] == "ok"
    kinds = [d["kind"] for d in b.get("/api/reconciliation").get_json()["differences"]]
    assert kinds == ["bonus_missing"]
    before = Decimal(study.balance())
    preview = b.post_json("/api/reconciliation/fix", {"assignment_id": aid, "remedy": "pay_bonus",
                                                      "preview": True}).get_json()
    assert (preview["amount"], preview["fee"], preview["total"]) == ("0.50", "0.10", "0.60")
    assert preview["money"] is True and preview["marketplace"].startswith("local ")
    assert Decimal(study.balance()) == before  # a preview pays nothing
    fixed = b.post_json("/api/reconciliation/fix", {"assignment_id": aid, "remedy": "pay_bonus",
                                                    "reason": "thanks"})
    assert fixed.status_code == 200, fixed.get_json()
    assert fixed.get_json()["outcome"] == "ok" and fixed.get_json()["paid"] == "0.50"
    assert fixed.get_json()["remaining"] == []
    again = b.post_json("/api/reconciliation/fix", {"assignment_id": aid, "remedy": "pay_bonus"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert Decimal(study.balance()) == before - Decimal("0.60")
    assert b.get("/api/reconciliation").get_json()["differences"] == []


def test_roles_csrf_and_errors(sqlite_study: Any, browser_for, add_user) -> None:
    study = sqlite_study
    hit_id = study.hit()
    aid = behind_the_labs_back(study, hit_id)
    add_user(study.app, "ra", "viewer", VIEWER_PW)
    add_user(study.app, "pay", "payer", PAYER_PW)
    assert study.app.test_client().get("/api/reconciliation").status_code == 401
    viewer = browser_for(study.app, "ra", VIEWER_PW)
    assert viewer.get("/api/reconciliation").status_code == 200
    refused = viewer.post_json("/api/reconciliation/fix", {"assignment_id": aid, "remedy": "sync_local"})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    payer = browser_for(study.app, "pay", PAYER_PW)
    no_csrf = payer.post_json("/api/reconciliation/fix", {"assignment_id": aid, "remedy": "sync_local"}, csrf=False)
    assert no_csrf.status_code == 400 and no_csrf.get_json()["error"]["code"] == "csrf_failed"
    bad = payer.post_json("/api/reconciliation/fix", {"assignment_id": aid, "remedy": "refund"})
    assert bad.status_code == 400 and "remedy must be one of" in bad.get_json()["error"]["message"]
    assert payer.post_json("/api/reconciliation/fix", {"remedy": "approve"}).status_code == 400
    assert payer.post_json("/api/reconciliation/fix", [1]).status_code == 400
    unfit = payer.post_json("/api/reconciliation/fix", {"assignment_id": aid, "remedy": "reject"})
    assert unfit.status_code == 409 and "use one of sync_local" in unfit.get_json()["error"]["message"]
    unknown = payer.post_json("/api/reconciliation/fix", {"assignment_id": "NOPE", "remedy": "approve"})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "not_found"
    assert payer.get("/api/reconciliation?mode=moon").status_code == 400
    ok = payer.post_json("/api/reconciliation/fix", {"assignment_id": aid, "remedy": "sync_local"})
    assert ok.status_code == 200 and ok.get_json()["outcome"] == "ok"


def test_the_background_check_stores_its_report_and_a_fix_updates_it(sqlite_study: Any, browser_for) -> None:
    from turnout.services import reconcile_jobs

    study = sqlite_study
    hit_id = study.hit()
    aid = behind_the_labs_back(study, hit_id)
    b = browser_for(study.app)
    assert b.get("/api/reconciliation/last").get_json()["last"] is None
    started = b.post_json("/api/reconciliation/checks", {"codeversion": ""})
    assert started.status_code == 202
    run_id = started.get_json()["run_id"]
    assert reconcile_jobs.wait(run_id, 30)
    run = b.get(f"/api/reconciliation/checks/{run_id}").get_json()
    assert (run["state"], run["hits_done"], run["hits_total"], run["checked"]) == ("done", 1, 1, 1)
    assert [d["assignment_id"] for d in run["report"]["differences"]] == [aid]
    last = b.get("/api/reconciliation/last").get_json()["last"]
    assert last["run_id"] == run_id and last["counts"] == {"approved_remotely": 1}
    fixed = b.post_json("/api/reconciliation/fix", {"assignment_id": aid, "remedy": "sync_local"}).get_json()
    assert fixed["counts"] == {}
    last = b.get("/api/reconciliation/last").get_json()["last"]
    assert (last["differences"], last["report"]["differences"]) == (0, [])
    assert b.get("/api/reconciliation/checks/999999").status_code == 404


def test_live_money_remedy_needs_confirmation_before_any_call(sqlite_dash_app: Any, browser_for,
                                                               monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    b = browser_for(sqlite_dash_app)
    b.post_json("/api/services_manager", {"mode": "live"})
    response = b.post_json("/api/reconciliation/fix", {"assignment_id": "A1", "remedy": "pay_bonus"})
    assert response.status_code == 403 and "live mode" in response.get_json()["error"]["message"]


def test_a_second_press_joins_the_running_check_and_a_dead_one_is_shown_interrupted(
        sqlite_study: Any, browser_for, clock: Any) -> None:
    """Two presses start one check; a check whose process died (lease run out) is reported
    interrupted on the page, and a new check may start."""
    from datetime import timedelta

    study = sqlite_study
    db = study.st.db
    run = db.models.ReconcileRun
    with db.begin() as session:  # a check "running" in another process
        row = run(study=db.tables.participants, mode="local", codeversion=None, at=clock.now(), actor="other",
                  checked=0, differences=0, state="running", hits_done=3, hits_total=10,
                  lease_until=clock.now() + timedelta(seconds=60))
        session.add(row)
        session.flush()
        other = row.id
    b = browser_for(study.app)
    joined = b.post_json("/api/reconciliation/checks", {}).get_json()
    assert joined == {"run_id": other, "already_running": True}
    page = b.get("/dashboard/reconciliation").data.decode()
    assert f'data-run-id="{other}"' in page and "3 of" in page
    clock.advance(timedelta(minutes=5))  # its process died: the lease ran out
    assert b.get(f"/api/reconciliation/checks/{other}").get_json()["state"] == "interrupted"
    assert 'id="check-failed"' in b.get("/dashboard/reconciliation").data.decode()
    started = b.post_json("/api/reconciliation/checks", {}).get_json()
    assert started["already_running"] is False and started["run_id"] != other
    from turnout.services import reconcile_jobs

    assert reconcile_jobs.wait(started["run_id"], 30)
    assert b.get(f"/api/reconciliation/checks/{other}").get_json()["state"] == "failed"
    assert b.get(f"/api/reconciliation/checks/{started['run_id']}").get_json()["state"] == "done"
