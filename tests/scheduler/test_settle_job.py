"""The runner drains the payments ledger: an intent written but never sent is sent, once."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.scheduler import jobs
from turnout.services import hits, payments
from turnout.services.payments import ledger

from .conftest import Sched

pytestmark = pytest.mark.db


class Died(BaseException):
    """The process stopped between writing the intent and claiming it."""


def _pending_approval(s: Sched, monkeypatch: pytest.MonkeyPatch) -> str:
    hit = hits.create_hit(s.ctx(), max_assignments=2, reward="1.00", duration_hours=1)["hit_id"]
    (a,) = s.complete(hit, 1)

    def die(*_a: Any, **_k: Any) -> None:
        raise Died()

    monkeypatch.setattr(ledger, "_claim", die)
    with pytest.raises(Died):
        payments.approve(s.ctx(), [a.assignment_id])
    monkeypatch.undo()
    return str(a.assignment_id)


def _ledger(s: Sched) -> list[tuple[str, str]]:
    return [(r["kind"], r["state"]) for r in payments.ledger_entries(s.ctx())]


def test_settle_job_sends_an_intent_left_pending_once(sched_sqlite: Sched, monkeypatch: pytest.MonkeyPatch) -> None:
    s = sched_sqlite
    assignment_id = _pending_approval(s, monkeypatch)
    balance = s.client().get_account_balance()["AvailableBalance"]
    jobs.install(s.env())
    jobs.settle_job()  # just written: its own process may still be sending it
    assert _ledger(s) == [("approve", "pending")]
    s.clock.advance(payments.PENDING_GRACE.total_seconds() + 1)
    jobs.settle_job()
    assert _ledger(s) == [("approve", "succeeded")]
    assert s.client().get_assignment(AssignmentId=assignment_id)["Assignment"]["AssignmentStatus"] == "Approved"
    jobs.settle_job()
    again = payments.approve(s.ctx(), [assignment_id])
    assert [i.outcome for i in again.items] == ["already"]
    spent = float(balance) - float(s.client().get_account_balance()["AvailableBalance"])
    assert round(spent, 2) == 1.20  # the reward and its fee, once


def test_a_settler_taking_a_row_its_own_process_is_about_to_send_moves_money_once(
        sched_sqlite: Sched, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process that wrote the intent was slow to claim it (past PENDING_GRACE) and
    the settler took it first: of the two, one calls the marketplace; the other is told
    it is already done."""
    s = sched_sqlite
    hit = hits.create_hit(s.ctx(), max_assignments=2, reward="1.00", duration_hours=1)["hit_id"]
    (a,) = s.complete(hit, 1)
    balance = float(s.client().get_account_balance()["AvailableBalance"])
    real_claim = ledger._claim
    settled: list[Any] = []

    def slow_claim(ctx: Any, entry_id: int, claimant: str) -> Any:
        if not settled:  # the first claim is this request's: the settler gets in before it
            settled.append(None)
            s.clock.advance(payments.PENDING_GRACE.total_seconds() + 1)
            settled[0] = payments.settle_all(s.ctx())
        return real_claim(ctx, entry_id, claimant)

    monkeypatch.setattr(ledger, "_claim", slow_claim)
    late = payments.approve(s.ctx(), [a.assignment_id])
    monkeypatch.undo()
    assert settled[0].counts() == {"ok": 1}
    assert [i.outcome for i in late.items] == ["already"]
    assert _ledger(s) == [("approve", "succeeded")]
    assert round(balance - float(s.client().get_account_balance()["AvailableBalance"]), 2) == 1.20
