"""The marketplace port: the ledger's rules run on any adapter. A small in-memory adapter
(no MTurk client, no boto3) drives approve and bonus, including the exactly-once cases:
a retry, an answer lost after the bonus was paid, and a repeated request token."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest

from turnout.db.engine import Database
from turnout.db.migrate import upgrade
from turnout.marketplace.port import Assignment, Bonus, FailureKind, MarketError, MarketFailure
from turnout.services import payments
from turnout.services.recruitment import MarketContext


class FakeMarket:
    """A marketplace in a dict. ``lose_next_answer``: the next bonus is paid, but the caller
    hears only a timeout. ``tokens_remembered``: a repeated token is refused as already done."""

    name = "fake"
    environment = "sandbox"

    def __init__(self) -> None:
        self.assignments = {"A1": Assignment("A1", "W1", "H1", "Submitted"),
                            "A2": Assignment("A2", "W2", "H1", "Submitted")}
        self.paid: list[Bonus] = []
        self.tokens: set[str] = set()
        self.calls: list[str] = []
        self.lose_next_answer = False
        self.tokens_remembered = True

    @property
    def where(self) -> str:
        return "memory"

    def get_assignment(self, assignment_id: str) -> Assignment:
        if assignment_id not in self.assignments:
            raise MarketError(MarketFailure(FailureKind.NOT_FOUND, "NoSuchAssignment", f"{assignment_id}?"))
        return self.assignments[assignment_id]

    def _set(self, assignment_id: str, status: str, *, allowed: Sequence[str]) -> None:
        a = self.get_assignment(assignment_id)
        if a.status not in allowed:
            raise MarketError(MarketFailure(FailureKind.WRONG_STATE, "WrongState", f"{assignment_id} is {a.status}"))
        self.assignments[assignment_id] = Assignment(a.assignment_id, a.worker_id, a.hit_id, status)

    def approve(self, assignment_id: str, *, feedback: str | None = None) -> None:
        self.calls.append(f"approve {assignment_id}")
        self._set(assignment_id, "Approved", allowed=["Submitted"])

    def unreject(self, assignment_id: str, *, feedback: str | None = None) -> None:
        self.calls.append(f"unreject {assignment_id}")
        self._set(assignment_id, "Approved", allowed=["Rejected"])

    def reject(self, assignment_id: str, *, feedback: str) -> None:
        self.calls.append(f"reject {assignment_id}")
        self._set(assignment_id, "Rejected", allowed=["Submitted"])

    def send_bonus(self, worker_id: str, assignment_id: str, amount: str, reason: str, *, token: str) -> None:
        self.calls.append(f"bonus {assignment_id} {amount}")
        if token in self.tokens and self.tokens_remembered:
            raise MarketError(MarketFailure(FailureKind.ALREADY_DONE, "Duplicate", "token already used"))
        self.tokens.add(token)
        self.paid.append(Bonus(worker_id, assignment_id, Decimal(amount), None))
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise MarketError(MarketFailure(FailureKind.UNKNOWN_OUTCOME, "Timeout", "no answer"))

    def bonuses(self, *, hit_id: str | None = None, assignment_id: str | None = None) -> Iterator[Bonus]:
        for b in self.paid:
            if (assignment_id is not None and b.assignment_id == assignment_id) or (
                    hit_id is not None and self.assignments[b.assignment_id].hit_id == hit_id):
                yield b

    def assignments_for_hit(self, hit_id: str, statuses: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        for a in self.assignments.values():
            if a.hit_id == hit_id and (not statuses or a.status in statuses):
                yield {"AssignmentId": a.assignment_id, "WorkerId": a.worker_id, "HITId": a.hit_id,
                       "AssignmentStatus": a.status}

    def fee_rate(self, *, assignments: int, qualifications: Any = None) -> Decimal:
        return Decimal("0.10")

    def bonus_fee_rate(self) -> Decimal:
        return Decimal("0.10")

    def __getattr__(self, name: str) -> Any:  # the rest of the port is not used on this path
        raise AttributeError(name)


@pytest.fixture
def fake(make_settings: Any, sqlite_url: str, clock: Any) -> Iterator[tuple[MarketContext, FakeMarket]]:
    settings = make_settings(sqlite_url)
    db = Database(settings.database_url, settings.tables)
    upgrade(db)
    market = FakeMarket()
    yield MarketContext(db=db, settings=settings, clock=clock, mode="sandbox", actor="unit", market=market), market
    db.dispose()


def _ledger(ctx: MarketContext) -> list[tuple[str, str, str, str | None]]:
    return sorted((e["kind"], e["assignment_id"], e["state"], e["amount"]) for e in payments.ledger_entries(ctx))


def test_the_fake_adapter_is_a_marketplace_and_no_mturk_client_is_involved(fake: Any) -> None:
    ctx, market = fake
    assert ctx.client is None and ctx.port is market and ctx.marketplace == "sandbox memory"


def test_approve_then_bonus_through_the_port_pays_each_once(fake: Any) -> None:
    ctx, market = fake
    first = payments.approve(ctx, ["A1", "A2"], allow_other_projects=True)
    assert [i.outcome for i in first.items] == ["ok", "ok"]
    again = payments.approve(ctx, ["A1"], allow_other_projects=True)
    assert [i.outcome for i in again.items] == ["already"]
    assert market.calls == ["approve A1", "approve A2"]

    paid = payments.bonus(ctx, ["A1"], amount="1.25", reason="thanks", allow_other_projects=True)
    assert [i.outcome for i in paid.items] == ["ok"] and paid.items[0].fee == "0.13"
    twice = payments.bonus(ctx, ["A1"], amount="1.25", reason="thanks", allow_other_projects=True)
    assert [i.outcome for i in twice.items] == ["skipped"]
    assert [b.amount for b in market.paid] == [Decimal("1.25")]
    assert _ledger(ctx) == [("approve", "A1", "succeeded", None), ("approve", "A2", "succeeded", None),
                            ("bonus", "A1", "succeeded", "1.25")]


def test_a_bonus_whose_answer_was_lost_is_found_not_paid_again(fake: Any) -> None:
    ctx, market = fake
    payments.approve(ctx, ["A1"], allow_other_projects=True)
    market.lose_next_answer = True
    lost = payments.bonus(ctx, ["A1"], amount="0.50", reason="r", allow_other_projects=True)
    assert [i.outcome for i in lost.items] == ["unknown"]
    market.tokens_remembered = False  # even a marketplace that forgot the token is not paid twice
    settled = payments.settle_all(ctx)
    assert [i.outcome for i in settled.items] == ["ok"]
    assert [b.amount for b in market.paid] == [Decimal("0.50")]
    assert market.calls.count("bonus A1 0.50") == 1
    assert ("bonus", "A1", "succeeded", "0.50") in _ledger(ctx)


def test_a_repeated_token_counts_as_paid(fake: Any) -> None:
    ctx, market = fake
    payments.approve(ctx, ["A2"], allow_other_projects=True)
    market.lose_next_answer = True
    payments.bonus(ctx, ["A2"], amount="0.75", reason="r", allow_other_projects=True)
    market.paid.clear()  # the listing cannot see it (yet); the token still can
    settled = payments.settle_all(ctx)
    assert [i.outcome for i in settled.items] == ["ok"] and "already applied" in settled.items[0].message
    assert market.calls.count("bonus A2 0.75") == 2 and market.paid == []


def test_wrong_state_is_checked_with_the_marketplace_not_its_text(fake: Any) -> None:
    ctx, market = fake
    market.assignments["A1"] = Assignment("A1", "W1", "H1", "Rejected")
    (item,) = payments.approve(ctx, ["A1"], allow_other_projects=True).items
    assert item.outcome == "failed" and "the assignment is Rejected" in item.message


def test_an_unknown_assignment_is_refused_by_kind(fake: Any) -> None:
    ctx, _ = fake
    (item,) = payments.approve(ctx, ["NOPE"], allow_other_projects=True).items
    assert item.outcome == "failed" and item.message == "the marketplace does not know this assignment"


def test_mturk_wording_never_reaches_the_rules() -> None:
    # The ledger module reads failure kinds only: none of MTurk's error text is in it.
    import inspect

    source = inspect.getsource(payments)
    for mturk_text in ("status of: Submitted", "does not exist", "UniqueRequestToken t", "TurkErrorCode",
                       "ctx.client", "botocore"):
        assert mturk_text not in source
