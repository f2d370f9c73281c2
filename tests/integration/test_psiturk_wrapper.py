"""psiTurk's ``MTurkServicesWrapper``, called by project code, against the offline marketplace.

The wrapper's methods run turnout's HIT services and payments ledger: each payment is a
ledger row, made once, and a repeated call pays nothing. Responses keep psiTurk's shape.
"""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

pytestmark = pytest.mark.db

ADMIN_ROUTE = """\
from flask import Blueprint, jsonify, request
from psiturk.amt_services_wrapper import MTurkServicesWrapper
custom_code = Blueprint("custom_code", __name__)

@custom_code.route("/admin/approve", methods=["POST"])
def approve():
    response = MTurkServicesWrapper().approve_assignment_by_assignment_id(request.form["assignment_id"])
    return jsonify(success=response.success, status=response.status, operation=response.operation,
                   assignment_id=response.data.get("assignment_id"))
"""


def _ledger(db: Any) -> list[tuple[str, str, str, str | None, str]]:
    L = db.models.LedgerEntry
    with db.begin() as session:
        return [(e.kind, e.assignment_id, e.state, e.amount, e.mode)
                for e in session.scalars(select(L).order_by(L.id))]


def _statuses(db: Any) -> dict[str, int]:
    P = db.models.Participant
    with db.begin() as session:
        return {p.assignmentid: p.status for p in session.scalars(select(P))}


def test_wrapper_moves_money_through_the_ledger_once(make_app, project_file, database_url: str, market: Any,
                                                     clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_MTURK_ENDPOINT", market.endpoint_url)
    project_file("custom.py", ADMIN_ROUTE)
    app = make_app(database_url, local_store=market.store_path)  # sign with its keys
    db = app.extensions["turnout"].db
    module = importlib.import_module("psiturk.amt_services_wrapper")
    exceptions = importlib.import_module("psiturk.psiturk_exceptions")
    wrapper = module.MTurkServicesWrapper()          # the project's mode: local
    start = Decimal(wrapper.amt_balance().data)

    created = wrapper.create_hit(num_workers=4, reward=1.0, duration=1.0)
    assert (created.success, created.operation) == (True, "create_hit"), created
    hit_id = created.data["hit_id"]
    listed = wrapper.get_all_hits().data
    assert [h.options["hitid"] for h in listed] == [hit_id]
    assert (listed[0].options["max_assignments"], listed[0].options["status"]) == (4, "Assignable")
    assert wrapper.count_available().data == 4

    side = market.state.workers
    accepted = [side.accept(side.register().worker_id, hit_id) for _ in range(4)]
    done = [side.submit(a.assignment_id, {"done": "yes"}) for a in accepted]
    ids = [a.assignment_id for a in done]
    P = db.models.Participant
    with db.begin() as session:      # the rows /exp ... /worker_submitted leave behind
        for a, bonus in zip(done, (0.50, 0.25, 0.0, 0.0), strict=True):
            session.add(P(uniqueid=f"{a.worker_id}:{a.assignment_id}", assignmentid=a.assignment_id,
                          workerid=a.worker_id, hitid=hit_id, codeversion="1.0", mode="local", status=4,
                          bonus=bonus, beginhit=clock.now()))

    rejected = wrapper.reject_assignment(ids[3])
    assert rejected.to_dict() == {"status": "success", "success": True, "message": "",
                                  "data": {"success": True}, "operation": "reject_assignment"}

    # One approval from the project's own admin route, the rest by approve-all.
    via_route = app.test_client().post("/admin/approve", data={"assignment_id": ids[0]})
    assert via_route.json == {"success": True, "status": "success", "assignment_id": ids[0],
                              "operation": "approve_assignment_by_assignment_id"}
    approved = wrapper.approve_all_assignments()
    assert approved.success
    assert sorted(r.data["assignment_id"] for r in approved.data["results"] if r.data["outcome"] == "ok") == \
        sorted(ids[1:3])
    unrejected = wrapper.unreject_assignment(ids[3])
    assert (unrejected.success, unrejected.data) == (True, f"unrejected {ids[3]}")

    bonused = wrapper.bonus_all_local_assignments("auto", "Your accuracy bonus")
    by_id = {r.data["assignment_id"]: r for r in bonused.data["results"]}
    assert {a: r.success for a, r in by_id.items()} == {ids[0]: True, ids[1]: True, ids[2]: False, ids[3]: False}
    assert by_id[ids[0]].data["message"] == f"gave bonus of $0.50 for assignment {ids[0]}"
    assert isinstance(by_id[ids[2]].exception, exceptions.NoAutoBonusAmountSetError)
    single = wrapper.bonus_assignment_for_assignment_id(ids[2], 0.1, "Thanks for the feedback")
    assert (single.success, single.data["amount"]) == (True, "0.10")

    ledger = _ledger(db)
    assert sorted(ledger) == sorted(
        [("reject", ids[3], "succeeded", None, "local")]
        + [("approve", a, "succeeded", "1.00", "local") for a in ids[:3]]
        + [("unreject", ids[3], "succeeded", "1.00", "local")]
        + [("bonus", ids[0], "succeeded", "0.50", "local"), ("bonus", ids[1], "succeeded", "0.25", "local"),
           ("bonus", ids[2], "succeeded", "0.10", "local")])
    paid = 4 * Decimal("1.20") + Decimal("0.60") + Decimal("0.30") + Decimal("0.12")   # reward/bonus + 20% fee
    assert Decimal(wrapper.amt_balance().data) == start - paid
    assert _statuses(db) == {ids[0]: 7, ids[1]: 7, ids[2]: 7, ids[3]: 5}

    # Every call again: nothing is paid, nothing is added to the ledger.
    again = [wrapper.approve_all_assignments(), wrapper.bonus_all_local_assignments("auto", "Your accuracy bonus"),
             wrapper.bonus_assignment_for_assignment_id(ids[2], 0.1, "Thanks for the feedback"),
             wrapper.bonus_local_assignment(db.session.get(P, f"{done[0].worker_id}:{ids[0]}"), "0.50", "again"),
             wrapper.approve_assignment_by_assignment_id(ids[0])]
    assert again[0].data["results"] == []
    assert not any(r.success for r in again[1].data["results"])
    assert isinstance(again[2].exception, exceptions.AssignmentAlreadyBonusedError)
    assert isinstance(again[3].exception, exceptions.AssignmentAlreadyBonusedError)
    assert (again[4].success, again[4].data["outcome"]) == (True, "already")
    assert _ledger(db) == ledger
    assert Decimal(wrapper.amt_balance().data) == start - paid
    client = market_client(market)
    assert {a: len(client.list_bonus_payments(AssignmentId=a)["BonusPayments"]) for a in ids} == \
        {ids[0]: 1, ids[1]: 1, ids[2]: 1, ids[3]: 0}

    # Bad input is refused before anything is sent.
    refused = wrapper.bonus_nonlocal_assignment(ids[3], 0.333, "x")
    assert isinstance(refused.exception, exceptions.BadBonusAmountError)
    unknown = wrapper.approve_assignment_by_assignment_id("NO_SUCH_ASSIGNMENT")
    assert isinstance(unknown.exception, exceptions.AssignmentIdNotFoundInLocalDBError)
    assert _ledger(db) == ledger

    # The HIT: expire, then delete (everything submitted has been reviewed).
    assert wrapper.expire_hit(hit_id).data == {"hit_id": hit_id, "success": True}
    assert wrapper.get_active_hits().data == []
    deleted = wrapper.delete_hit(hit_id)
    assert (deleted.success, deleted.data["hit_id"]) == (True, hit_id), deleted


def market_client(market: Any) -> Any:
    from .conftest import local_client

    return local_client(market)


def test_wrapper_in_another_mode_never_touches_this_modes_ledger(app: Any, market: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # A sandbox wrapper with no AWS credentials fails in its own marketplace; the local
    # study's ledger is untouched and the local wrapper (on the project's own store) still
    # works.
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")   # no credential lookup over the network
    module = importlib.import_module("psiturk.amt_services_wrapper")
    local, sandbox = module.MTurkServicesWrapper(mode="local"), module.MTurkServicesWrapper(mode="sandbox")
    failed = sandbox.bonus_nonlocal_assignment("A" * 30, "1.00", "bonus")
    assert failed.success is False and failed.to_dict()["status"] == "error"
    assert _ledger(app.extensions["turnout"].db) in ([], [("bonus", "A" * 30, "failed", "1.00", "sandbox")])
    assert local.get_mode().data == "local" and local.tally_hits().data == {"hit_tally": 0}
