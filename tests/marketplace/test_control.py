"""The control API (/_control/) and the participant-facing externalSubmit endpoint."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from turnout.clock import SystemClock
from turnout.marketplace.local import ThreadedMarketplace
from turnout.marketplace.local.quals import PERCENT_APPROVED
from turnout.marketplace.local.testing import START

pytestmark = pytest.mark.local_only


def post(market: ThreadedMarketplace, path: str, body: Any = None) -> requests.Response:
    return requests.post(market.control_url + path, json=body if body is not None else {}, timeout=10)


def get(market: ThreadedMarketplace, path: str) -> requests.Response:
    return requests.get(market.control_url + path, timeout=10)


def test_index_lists_every_route(market: ThreadedMarketplace) -> None:
    routes = get(market, "/").json()["routes"]
    assert {k: routes[4][k] for k in ("method", "path")} == {"method": "POST", "path": "/_control/clock/advance"}
    assert len(routes) >= 20


def test_seeding_workers_with_attributes(market: ThreadedMarketplace) -> None:
    created = post(market, "/workers", {"count": 3, "percent_approved": 80, "country": "de"}).json()["workers"]
    assert len(created) == 3 and all(w["percent_approved"] == 80 and w["country"] == "DE" for w in created)
    named = post(market, "/workers", {"workers": [{"worker_id": "A2YUCJ28XANFOX", "masters": True}]}).json()["workers"]
    assert named[0]["worker_id"] == "A2YUCJ28XANFOX" and named[0]["masters"] is True
    assert len(get(market, "/workers").json()["workers"]) == 4
    bad = post(market, "/workers", {"workers": [{"worker_id": "not-a-worker"}]})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidInput"


def test_advancing_a_manual_clock_moves_marketplace_time(market: ThreadedMarketplace) -> None:
    moved = post(market, "/clock/advance", {"seconds": 90}).json()
    assert moved["now"] == (START + timedelta(seconds=90)).isoformat() and moved["manual"] is True
    assert post(market, "/clock/advance", {"seconds": -1}).status_code == 400


def test_advancing_the_wall_clock_is_refused(tmp_path: Any) -> None:
    with ThreadedMarketplace(tmp_path / "wall.db", clock=SystemClock(), self_check=True) as wall:
        response = post(wall, "/clock/advance", {"seconds": 1})
    assert response.status_code == 409 and response.json()["error"]["code"] == "NotManualClock"


def test_a_worker_accepts_via_control_and_submits_through_external_submit(market: ThreadedMarketplace, make_hit: Any, mturk: Any) -> None:
    hit = make_hit(Question=_question("http://127.0.0.1:5000/ad?study=1"))
    worker = post(market, "/workers", {"count": 1}).json()["workers"][0]["worker_id"]
    assert [h["hit_id"] for h in get(market, f"/workers/{worker}/hits").json()["hits"]] == [hit["HITId"]]
    accepted = post(market, f"/workers/{worker}/accept", {"hit_id": hit["HITId"]}).json()
    query = parse_qs(urlsplit(accepted["task_url"]).query)
    assignment_id = accepted["assignment"]["assignment_id"]
    assert query == {"study": ["1"], "assignmentId": [assignment_id], "hitId": [hit["HITId"]],
                     "turkSubmitTo": [market.base_url], "workerId": [worker]}
    # The participant's page posts its form to {turkSubmitTo}/mturk/externalSubmit, from the
    # browser that accepted (it holds the proof cookie the accept handed out).
    proof = {f"turnout_submit_{assignment_id}": accepted["submit_key"]}
    page = requests.post(query["turkSubmitTo"][0] + "/mturk/externalSubmit", cookies=proof,
                         data={"assignmentId": assignment_id, "workerId": worker, "feedback": "fun <study>"}, timeout=10)
    assert page.status_code == 200 and "submitted" in page.text
    listed = mturk.list_assignments_for_hit(HITId=hit["HITId"])["Assignments"]
    assert listed[0]["AssignmentId"] == assignment_id
    assert "<FreeText>fun &lt;study&gt;</FreeText>" in listed[0]["Answer"]
    again = requests.post(market.base_url + "/mturk/externalSubmit", data={"assignmentId": assignment_id},
                          cookies=proof, timeout=10)
    assert again.status_code == 409


@pytest.mark.parametrize("assignment_id", ["", "ASSIGNMENT_ID_NOT_AVAILABLE"])
def test_external_submit_without_a_real_assignment_is_refused(market: ThreadedMarketplace, assignment_id: str) -> None:
    response = requests.post(market.base_url + "/mturk/externalSubmit", data={"assignmentId": assignment_id}, timeout=10)
    assert response.status_code == 400


def test_preview_url_carries_the_not_available_assignment_id(market: ThreadedMarketplace, make_hit: Any) -> None:
    hit = make_hit(MaxAssignments=2)
    worker = post(market, "/workers", {}).json()["workers"][0]["worker_id"]
    previewed = post(market, f"/workers/{worker}/preview", {"hit_id": hit["HITId"]}).json()["hit"]
    assert "assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE" in previewed["preview_url"]
    assert "workerId" not in previewed["preview_url"]
    assert previewed["pending"] == 1


def test_worker_refusals_map_to_http_statuses(market: ThreadedMarketplace, make_hit: Any) -> None:
    hit = make_hit(QualificationRequirements=[{"QualificationTypeId": PERCENT_APPROVED, "Comparator": "GreaterThan", "IntegerValues": [98]}])
    worker = post(market, "/workers", {"percent_approved": 90}).json()["workers"][0]["worker_id"]
    refused = post(market, f"/workers/{worker}/accept", {"hit_id": hit["HITId"]})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "NotQualified"
    assert post(market, "/workers/ANOBODY/accept", {"hit_id": hit["HITId"]}).status_code == 404
    assert post(market, f"/workers/{worker}/accept", {}).json()["error"]["code"] == "MissingField"


def test_return_then_accept_again(market: ThreadedMarketplace, make_hit: Any) -> None:
    hit = make_hit()
    worker = post(market, "/workers", {}).json()["workers"][0]["worker_id"]
    first = post(market, f"/workers/{worker}/accept", {"hit_id": hit["HITId"]}).json()["assignment"]["assignment_id"]
    returned = post(market, f"/assignments/{first}/return").json()["assignment"]
    assert returned["status"] == "Returned"
    second = post(market, f"/workers/{worker}/accept", {"hit_id": hit["HITId"]})
    assert second.status_code == 200
    events = [e["event_type"] for e in get(market, "/events?after=0").json()["events"]]
    assert events == ["HITCreated", "AssignmentAccepted", "AssignmentReturned", "AssignmentAccepted"]


def test_submit_via_control_and_inspect_assignments_of_any_status(market: ThreadedMarketplace, make_hit: Any) -> None:
    hit = make_hit(MaxAssignments=2)
    a, b = (post(market, "/workers", {}).json()["workers"][0]["worker_id"] for _ in range(2))
    done = post(market, f"/workers/{a}/accept", {"hit_id": hit["HITId"]}).json()["assignment"]["assignment_id"]
    post(market, f"/workers/{b}/accept", {"hit_id": hit["HITId"]})
    assert post(market, f"/assignments/{done}/submit", {"answers": {"q1": 3}}).json()["assignment"]["status"] == "Submitted"
    statuses = sorted(x["status"] for x in get(market, f"/hits/{hit['HITId']}/assignments").json()["assignments"])
    assert statuses == ["Accepted", "Submitted"]


def test_reset_takes_a_starting_balance_and_forgets_hits(market: ThreadedMarketplace, make_hit: Any, mturk: Any) -> None:
    make_hit()
    state = post(market, "/reset", {"balance": "25.00"}).json()
    assert state["balance"] == "25.00" and state["hits"] == 0
    assert mturk.get_account_balance()["AvailableBalance"] == "25.00"


def test_faults_can_be_added_listed_and_cleared(market: ThreadedMarketplace) -> None:
    listed = post(market, "/faults", {"operation": "SendBonus", "kind": "drop_response", "count": 2}).json()["faults"]
    assert listed == [{"operation": "SendBonus", "kind": "drop_response", "remaining": 2}]
    assert post(market, "/faults", {"operation": "SendBonus", "kind": "explode"}).status_code == 400
    assert post(market, "/faults", {"operation": "SendBitcoin", "kind": "throttle"}).status_code == 400
    assert post(market, "/faults/clear").json() == {"faults": []}
    assert get(market, "/faults").json() == {"faults": []}


def test_mutating_routes_refuse_get(market: ThreadedMarketplace) -> None:
    response = get(market, "/reset")
    assert response.status_code == 405
    assert get(market, "/nope").status_code == 404


def test_ledger_lists_each_debit(market: ThreadedMarketplace, submitted: Any, mturk: Any, worker: Any) -> None:
    assignment = submitted()
    mturk.approve_assignment(AssignmentId=assignment.assignment_id)
    mturk.send_bonus(WorkerId=worker.worker_id, AssignmentId=assignment.assignment_id, BonusAmount="0.10", Reason="r")
    ledger = get(market, "/ledger").json()
    assert [(t["kind"], t["amount"], t["fee"], t["balance_after"]) for t in ledger["transactions"]] == [
        ("reward", "1.00", "0.20", "9998.80"), ("bonus", "0.10", "0.02", "9998.68")]
    assert ledger["balance"] == "9998.68"


def _question(url: str) -> str:
    from turnout.marketplace.local.testing import external_question

    return external_question(url)
