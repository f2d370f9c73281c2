"""A whole study in local mode, on every database: post a HIT of 5, let 8 workers try,
approve all, auto-bonus all, and check that the marketplace, the participant rows, the
ledger and the audit trail tell one story; then do it again and see nothing move.

Workers act through the offline marketplace's worker API (accept, return, submit) and
walk the experiment through the real routes (/exp, /sync, /inexp, /quitter,
/compute_bonus from the project's custom.py, /complete, /worker_submitted).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from turnout.errors import TurnoutError
from turnout.experiment.status import Status
from turnout.marketplace.local import WorkerActionRefused
from turnout.services import audit, hits, payments
from turnout.services.recruitment import MarketContext

from .conftest import local_client

pytestmark = pytest.mark.db

REWARD = Decimal("1.00")
FEE = Decimal("0.20")


def _fee(amount: Decimal) -> Decimal:
    return max(Decimal("0.01"), (amount * FEE).quantize(Decimal("0.01")))


def _snapshot(ctx: MarketContext, client: Any, assignment_ids: list[str]) -> dict[str, Any]:
    """Everything that must not change on a repeat run."""
    db = ctx.db
    L, P, T = db.models.LedgerEntry, db.models.Participant, db.models.StatusTransition
    with db.begin() as session:
        ledger = [(e.id, e.kind, e.assignment_id, e.amount, e.state, e.attempts)
                  for e in session.scalars(select(L).order_by(L.id))]
        statuses = dict(session.execute(select(P.uniqueid, P.status)).all())
        transitions = session.scalar(select(func.count()).select_from(T))
    return {
        "balance": client.get_account_balance()["AvailableBalance"],
        "bonuses": {a: len(client.list_bonus_payments(AssignmentId=a)["BonusPayments"]) for a in assignment_ids},
        "ledger": ledger, "statuses": statuses, "transitions": transitions,
        "money_events": [e.id for e in audit.list_events(ctx, limit=1000) if e.ledger_id is not None],
    }


def test_study_from_hit_to_bonus_pays_each_worker_exactly_once(participant_cls: Any, make_app: Any, database_url: str, clock: Any,
                                                               market: Any) -> None:
    app = make_app(database_url)
    web = app.test_client()
    db = app.extensions["turnout"].db
    client = local_client(market)
    ctx = MarketContext(db=db, settings=app.extensions["turnout"].settings, clock=clock, mode="local",
                        client=client, actor="e2e")
    side = market.state.workers

    created = hits.create_hit(ctx, max_assignments=5, reward=str(REWARD), duration_hours=1)
    hit_id = created["hit_id"]
    question = client.get_hit(HITId=hit_id)["HIT"]["Question"]
    assert "http://127.0.0.1:22362/pub?mode=local" in question

    workers = [side.register() for _ in range(8)]
    trials = {0: 10, 2: 20, 3: 0, 5: 7, 7: 50}  # completers -> trials saved (bonus = 0.02 per even trial)
    people: dict[int, Any] = {}
    assignments: dict[int, Any] = {}
    refused: list[int] = []

    def arrive(n: int) -> Any:
        try:
            assignment = side.accept(workers[n].worker_id, hit_id)
        except WorkerActionRefused as exc:
            assert exc.code == "NoAssignmentsAvailable"
            refused.append(n)
            return None
        assignments[n] = assignment
        person = participant_cls(web, worker=workers[n].worker_id, assignment=assignment.assignment_id, hit=hit_id,
                             mode="local")
        assert person.open_exp().status_code == 200
        people[n] = person
        return person

    def finish(n: int) -> None:
        person = people[n]
        assert person.inexp().status_code == 200
        assert person.save(trials[n]).status_code == 200
        assert web.get(f"/compute_bonus?uniqueId={person.uniqueid}").status_code == 200
        assert person.complete().status_code == 200
        assert web.get(f"/worker_submitted?uniqueId={person.uniqueid}").status_code == 200
        side.submit(assignments[n].assignment_id, {"done": "yes"})

    arrive(0) and finish(0)
    dropper = arrive(1)  # starts, then quits and returns the HIT: the slot comes back
    assert dropper is not None and dropper.inexp().status_code == 200
    assert dropper.quitter().status_code == 200
    side.return_assignment(assignments[1].assignment_id)
    for n in (2, 3):
        arrive(n) and finish(n)
    assert arrive(4) is not None  # opens the experiment, then walks away without submitting
    arrive(5) and finish(5)
    assert arrive(6) is None  # all five slots taken (W4's still counts)
    clock.advance(timedelta(hours=1, minutes=1))  # W4's assignment duration runs out: abandoned
    arrive(7) and finish(7)
    assert refused == [6]

    completers = sorted(trials)
    hit_view = hits.get_hit(ctx, hit_id)
    assert (hit_view["max_assignments"], hit_view["number_assignments_available"]) == (5, 0)
    assert len(client.list_assignments_for_hit(HITId=hit_id, AssignmentStatuses=["Submitted"])["Assignments"]) == 5

    approved = payments.approve_all(ctx)
    assert approved.counts() == {"ok": 5}
    bonused = payments.bonus_all(ctx, amount="auto", reason="Thanks: your accuracy bonus")
    assert bonused.counts() == {"ok": 4, "skipped": 1}
    (skipped,) = [i for i in bonused.items if i.outcome == "skipped"]
    assert skipped.assignment_id == assignments[3].assignment_id and "nothing to pay" in skipped.message

    expected_bonus = {n: (Decimal("0.02") * ((trials[n] + 1) // 2)).quantize(Decimal("0.01")) for n in completers}
    paid = {n: b for n, b in expected_bonus.items() if b > 0}
    assert paid == {0: Decimal("0.10"), 2: Decimal("0.20"), 5: Decimal("0.08"), 7: Decimal("0.50")}

    # The marketplace: balance and bonus payments.
    cost = 5 * (REWARD + _fee(REWARD)) + sum(b + _fee(b) for b in paid.values())
    assert Decimal(client.get_account_balance()["AvailableBalance"]) == Decimal("10000.00") - cost
    for n in completers:
        payments_made = client.list_bonus_payments(AssignmentId=assignments[n].assignment_id)["BonusPayments"]
        assert [Decimal(p["BonusAmount"]) for p in payments_made] == ([paid[n]] if n in paid else [])
        assert all(p["WorkerId"] == workers[n].worker_id for p in payments_made)

    # Participant statuses follow the marketplace through the state machine.
    P = db.models.Participant
    with db.begin() as session:
        status = {n: session.get(P, p.uniqueid).status for n, p in people.items()}
    assert status == {0: Status.BONUSED, 1: Status.QUITEARLY, 2: Status.BONUSED, 3: Status.CREDITED,
                      4: Status.ALLOCATED, 5: Status.BONUSED, 7: Status.BONUSED}

    # The ledger: one approve per submission, one bonus per non-zero auto amount.
    entries = payments.ledger_entries(ctx)
    approves = {e["assignment_id"]: e for e in entries if e["kind"] == "approve"}
    bonuses = {e["assignment_id"]: e for e in entries if e["kind"] == "bonus"}
    assert set(approves) == {assignments[n].assignment_id for n in completers}
    assert {e["state"] for e in entries} == {"succeeded"}
    assert {e["amount"] for e in approves.values()} == {"1.00"}
    assert {a: Decimal(e["amount"]) for a, e in bonuses.items()} == {
        assignments[n].assignment_id: b for n, b in paid.items()}

    # The audit trail: an ok event per ledger row, naming the marketplace and the actor.
    events = audit.list_events(ctx, limit=1000)
    by_ledger = {e.ledger_id: e for e in events if e.ledger_id is not None}
    assert set(by_ledger) == {e["id"] for e in entries}
    assert {(e.outcome, e.actor, e.mode) for e in by_ledger.values()} == {("ok", "e2e", "local")}
    assert [e.action for e in events if e.action == "hit.create"] == ["hit.create"]

    # Again: nothing changes, nothing is paid.
    ids = [a.assignment_id for a in assignments.values()]
    before = _snapshot(ctx, client, ids)
    again_approve = payments.approve_all(ctx)
    again_bonus = payments.bonus_all(ctx, amount="auto", reason="Thanks: your accuracy bonus")
    assert again_approve.items == []  # nothing is Submitted any more
    assert {i.outcome for i in again_bonus.items} == {"skipped"}
    assert again_bonus.paid == 0
    assert _snapshot(ctx, client, ids) == before
    summaries = [e for e in audit.list_events(ctx, limit=2)]
    assert [(e.action, e.outcome) for e in summaries] == [("bonus.all", "noop"), ("approve.all", "noop")]

    # The HIT can now be expired and deleted; a second delete says why it cannot.
    assert hits.expire_all(ctx)[0]["ok"]
    assert hits.delete_all(ctx)[0]["ok"]
    with pytest.raises(TurnoutError):
        hits.get_hit(ctx, hit_id)
