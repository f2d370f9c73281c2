"""Issue 13: money exactly once when the marketplace answers late, forgets, or is shared.

Each test reproduces one way the outside tester made turnout pay twice (or book a wrong
amount) against the offline marketplace, on SQLite, PostgreSQL and MariaDB, with the
marketplace's injected faults and manual clocks, and checks that the marketplace's own
records (ListBonusPayments, GetAssignment, the balance) and the ledger agree to the cent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from turnout.clock import ManualClock
from turnout.db.engine import Database
from turnout.db.migrate import upgrade
from turnout.errors import Forbidden, TurnoutError
from turnout.experiment.status import Status
from turnout.marketplace import make_client
from turnout.marketplace.local import ThreadedMarketplace
from turnout.services import hits, payments
from turnout.services.payments import ledger
from turnout.services.recruitment import MarketContext

from .conftest import Recruiting, local_client, never_delivered

pytestmark = pytest.mark.db

START = Decimal("10000.00")


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries sleep up to seconds between attempts; the tests need the attempts,
    not the waiting (no test depends on wall-clock speed)."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


def retrying(r: Recruiting, **kw: Any) -> MarketContext:
    """A context whose client retries like the CLI's (3 attempts, botocore standard mode)."""
    base = local_client(r.market)  # the credentials the test marketplace expects, whatever they are
    creds = base._request_signer._credentials
    client = make_client("local", endpoint_url=base.meta.endpoint_url, max_attempts=3,
                         aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)
    return r.context(client=client, **kw)


def approved(r: Recruiting, count: int, *, reward: str = "1.00", bonus: float | None = 0.25) -> list[Any]:
    hit_id = r.create_hit(assignments=max(count, 1), reward=reward)
    assignments = r.submitted_assignments(hit_id, count)
    for a in assignments:
        r.add_participant(a, bonus=bonus)
    assert payments.approve_all(r.ctx).counts() == {"ok": count}
    return assignments


def paid(r: Recruiting, assignment_id: str) -> list[str]:
    return sorted(str(b["BonusAmount"]) for b in r.bonus_payments(assignment_id))


def booked(r: Recruiting, assignment_id: str) -> list[str]:
    return sorted(e.amount for e in r.ledger(kind="bonus", assignment_id=assignment_id) if e.state == "succeeded")


def agree(r: Recruiting, assignment_ids: list[str], *, reward: str = "1.00") -> None:
    """The marketplace and the ledger say the same, to the cent: each assignment's bonuses,
    and the balance = start - (approvals + bonuses booked) * 1.2 (20% fee)."""
    total = Decimal("0")
    for a in assignment_ids:
        assert paid(r, a) == booked(r, a), a
    for e in r.ledger():
        if e.state == "succeeded" and e.kind in ("approve", "unreject", "bonus"):
            total += Decimal(e.amount) * Decimal("1.2")
    assert Decimal(r.balance()) == START - total


# --- 1. "failed" but paid -----------------------------------------------------------------


def _unclear_bonus(r: Recruiting) -> MarketContext:
    """The tester's case: SendBonus drop_response x1 then throttle x2 (botocore retries
    inside one call), and ListBonusPayments not answering yet; returns the context."""
    ctx = retrying(r)
    r.state.add_fault("SendBonus", "drop_response")
    r.state.add_fault("SendBonus", "throttle", 2)
    armed: list[int] = []

    def check_cannot_tell_yet(**_: Any) -> None:  # ListBonusPayments fails once SendBonus was sent
        if not armed:
            armed.append(1)
            r.state.add_fault("ListBonusPayments", "service_fault", 3)

    ctx.client.meta.events.register("before-send.mturk.SendBonus", check_cannot_tell_yet)
    first = payments.bonus_all(ctx, amount="auto", reason="R")
    assert [i.outcome for i in first.items] == ["unknown"], first.items[0].message
    return ctx


def test_dropped_then_throttled_bonus_is_never_failed_and_keeps_its_amount(recruiting: Recruiting) -> None:
    r = recruiting
    (a,) = approved(r, 1)
    ctx = _unclear_bonus(r)
    assert paid(r, a.assignment_id) == ["0.25"]
    (entry,) = r.ledger(kind="bonus")
    assert (entry.state, entry.amount) == ("unknown", "0.25")

    again = payments.bonus(ctx, [a.assignment_id], amount="0.40", reason="R2")
    (item,) = again.items
    assert item.outcome == "ok" and item.amount == "0.25", item.message
    assert "$0.40 not sent" in item.message
    assert paid(r, a.assignment_id) == ["0.25"]
    assert [(e.state, e.amount, e.reason) for e in r.ledger(kind="bonus")] == [("succeeded", "0.25", "R")]
    assert r.ledger(kind="bonus")[0].request_token == entry.request_token
    agree(r, [a.assignment_id])


def test_dropped_then_throttled_bonus_found_at_once(recruiting: Recruiting) -> None:
    r = recruiting
    (a,) = approved(r, 1)
    r.state.add_fault("SendBonus", "drop_response")
    r.state.add_fault("SendBonus", "throttle", 2)
    result = payments.bonus_all(retrying(r), amount="auto", reason="R")
    assert [i.outcome for i in result.items] == ["ok"]
    assert "ListBonusPayments" in result.items[0].message
    agree(r, [a.assignment_id])


def test_dropped_then_throttled_approve_is_unknown_then_settled_by_approve_all(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=3)
    (a,) = r.submitted_assignments(hit_id, 1)
    uniqueid = r.add_participant(a)
    r.state.add_fault("ApproveAssignment", "drop_response")
    r.state.add_fault("ApproveAssignment", "throttle", 2)
    first = payments.approve_all(retrying(r))
    assert [i.outcome for i in first.items] == ["unknown"], first.items[0].message
    assert r.state.workers.assignment(a.assignment_id).status == "Approved"
    second = payments.approve_all(r.ctx)  # lists only Submitted work, and settles the unknown row
    assert [i.outcome for i in second.items] == ["ok"]
    assert [e.state for e in r.ledger(kind="approve")] == ["succeeded"]
    assert r.participant_status(uniqueid) == Status.CREDITED
    agree(r, [a.assignment_id])


# --- 2. after 24 hours the token is forgotten ----------------------------------------------------


def test_unknown_bonus_retried_after_25_hours_with_a_new_amount_pays_nothing_more(recruiting: Recruiting) -> None:
    r = recruiting
    (a,) = approved(r, 1)
    ctx = _unclear_bonus(r)
    r.clock.advance(timedelta(hours=25))  # the marketplace has forgotten the token
    result = payments.bonus(ctx, [a.assignment_id], amount="0.30", reason="R3")
    assert [i.outcome for i in result.items] == ["ok"]
    assert paid(r, a.assignment_id) == ["0.25"]
    agree(r, [a.assignment_id])


def test_unknown_bonus_is_held_when_the_marketplace_shows_another_amount(recruiting: Recruiting) -> None:
    """Any bonus to that worker and assignment since the intent counts, not only the same amount."""
    r = recruiting
    (a,) = approved(r, 1)
    client = local_client(r.market)

    never_delivered(client, "SendBonus")
    assert payments.bonus_all(r.context(client=client), amount="auto", reason="R").items[0].outcome == "unknown"
    # Someone else (another tool on the account) pays 0.30 meanwhile.
    local_client(r.market).send_bonus(WorkerId=a.worker_id, AssignmentId=a.assignment_id, BonusAmount="0.30",
                                      Reason="by hand")
    r.clock.advance(timedelta(hours=25))
    settled = payments.settle_all(r.ctx)
    assert [i.outcome for i in settled.items] == ["unknown"]
    assert "$0.30" in settled.items[0].message
    assert paid(r, a.assignment_id) == ["0.30"]  # nothing re-sent


# --- 3. clock skew -----------------------------------------------------------------------------


@pytest.fixture
def skewed(make_settings: Callable[..., Any], shared_database_url: str, tmp_path: Any) -> Iterator[Recruiting]:
    """The ledger on one ManualClock, the marketplace on another, moved separately."""
    local, market_clock = ManualClock(), ManualClock()
    settings = make_settings(shared_database_url)
    db = Database(settings.database_url, settings.tables)
    upgrade(db)
    with ThreadedMarketplace(tmp_path / "skew.db", clock=market_clock, self_check=True) as market:
        ctx = MarketContext(db=db, settings=settings, clock=local, mode="local", client=local_client(market),
                            actor="test")
        r = Recruiting(ctx, market, local)
        r.market_clock = market_clock  # type: ignore[attr-defined]
        yield r
    db.dispose()


def test_unknown_bonus_under_clock_skew_is_not_paid_again(skewed: Recruiting) -> None:
    """First the marketplace's clock 25 h ahead of ours, then ours 25 h ahead of it."""
    r = skewed
    first, second = approved(r, 2)
    for a, clock in ((first, r.market_clock), (second, r.clock)):  # type: ignore[attr-defined]
        r.state.add_fault("SendBonus", "drop_response")
        assert payments.bonus(r.ctx, [a.assignment_id], amount="auto", reason="R").items[0].outcome == "unknown"
        clock.advance(timedelta(hours=25))
        again = payments.bonus(r.ctx, [a.assignment_id], amount="auto", reason="R")
        assert [i.outcome for i in again.items] == ["ok"]
        assert "ListBonusPayments" in again.items[0].message
        assert paid(r, a.assignment_id) == ["0.25"]
    agree(r, [first.assignment_id, second.assignment_id])


# --- 4. --override-bonused-status races ------------------------------------------------------------


def _at_once(r: Recruiting, n: int, call: Callable[[MarketContext], Any]) -> list[Any]:
    databases = [r.new_database() for _ in range(n)]
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(ctx: MarketContext) -> None:
        try:
            barrier.wait(timeout=20)
            results.append(call(ctx))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r.context(db=db, actor=f"p{i}"),)) for i, db in enumerate(databases)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for db in databases:
        db.dispose()
    assert not errors, errors
    return results


def test_two_override_runs_of_one_hit_at_once_pay_each_assignment_once(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=4)
    assignments = r.submitted_assignments(hit_id, 3)
    payments.approve_all(r.ctx)
    _at_once(r, 2, lambda ctx: payments.bonus_hit(ctx, hit_id, amount="0.50", reason="extra", override=True))
    assert sum(len(paid(r, a.assignment_id)) for a in assignments) == 3
    again = payments.bonus_hit(r.ctx, hit_id, amount="0.50", reason="extra", override=True)
    assert {i.outcome for i in again.items} == {"already"}
    agree(r, [a.assignment_id for a in assignments])


def test_five_override_runs_on_one_id_pay_one_extra(recruiting: Recruiting) -> None:
    r = recruiting
    (a,) = approved(r, 1)
    assert payments.bonus(r.ctx, [a.assignment_id], amount="0.50", reason="first").items[0].outcome == "ok"
    _at_once(r, 5, lambda ctx: payments.bonus(ctx, [a.assignment_id], amount="0.50", reason="sorry, again",
                                              override=True))
    assert paid(r, a.assignment_id) == ["0.50", "0.50"]
    override = [e for e in r.ledger(kind="bonus") if ":override:" in e.idempotency_key]
    assert [(e.state, e.reason, e.actor[:1]) for e in override] == [("succeeded", "sorry, again", "p")]
    assert "AGAIN" in (payments.preview_bonus(r.ctx, override=True) or "")
    agree(r, [a.assignment_id])


# --- 5. two projects on one marketplace account --------------------------------------------------


@pytest.fixture
def second_project(recruiting: Recruiting, make_settings: Callable[..., Any], tmp_path: Any) -> Iterator[MarketContext]:
    """Another study's database on the same marketplace account."""
    settings = make_settings(f"sqlite:///{tmp_path / 'second.db'}")
    db = Database(settings.database_url, settings.tables)
    upgrade(db)
    yield MarketContext(db=db, settings=settings, clock=recruiting.clock, mode="local",
                        client=local_client(recruiting.market), actor="second")
    db.dispose()


def test_another_projects_assignments_and_hits_are_refused_and_its_bonuses_count(
        recruiting: Recruiting, second_project: MarketContext) -> None:
    r, other = recruiting, second_project
    theirs = str(hits.create_hit(other, max_assignments=3, reward="1.00", duration_hours=1)["hit_id"])
    their_assignments = r.submitted_assignments(theirs, 3)
    payments.approve_all(other)
    payments.bonus_all(other, amount="0.25", reason="theirs")
    mine = approved(r, 2)

    by_id = payments.bonus(r.ctx, [their_assignments[0].assignment_id], amount="0.25", reason="x")
    assert [i.outcome for i in by_id.items] == ["refused"]
    assert payments.OTHER_PROJECTS_FLAG in by_id.items[0].message
    assert not by_id.ok
    with pytest.raises(Forbidden, match="--allow-other-projects"):
        payments.bonus_hit(r.ctx, theirs, amount="0.25", reason="x")
    with pytest.raises(Forbidden):
        payments.approve_hit(r.ctx, theirs)
    # Said so: still not paid twice, because the marketplace shows their bonuses.
    meant = payments.bonus_hit(r.ctx, theirs, amount="0.25", reason="x", allow_other_projects=True)
    assert {i.outcome for i in meant.items} == {"skipped"}
    assert "not by this project's ledger" in meant.items[0].message
    # The other project bonuses one of ours (it said it meant it); our --all skips it.
    payments.bonus(other, [mine[0].assignment_id], amount="0.25", reason="theirs", allow_other_projects=True)
    ours = payments.bonus_all(r.ctx, amount="auto", reason="ours")
    assert {i.assignment_id: i.outcome for i in ours.items} == {mine[0].assignment_id: "skipped",
                                                                 mine[1].assignment_id: "ok"}
    assert all(paid(r, a.assignment_id) == ["0.25"] for a in [*their_assignments, *mine])
    # worker list: what the marketplace says, where it differs from the ledger.
    rows = {row["assignmentId"]: row for row in hits.list_assignments(r.ctx)}
    row = rows[mine[0].assignment_id]
    assert (row["bonuses_paid"], row["bonuses_marketplace"], row["bonus_mismatch"]) == ([], ["0.25"], True)
    from turnout.cli.worker import _bonus_paid

    assert _bonus_paid(row) == "0.25 (ledger: none)"
    assert rows[mine[1].assignment_id]["bonus_mismatch"] is False


# --- 6. the ledger overstates ------------------------------------------------------------------------


def test_approve_then_unreject_books_one_payment(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2, reward="0.50")
    (a,) = r.submitted_assignments(hit_id, 1)
    r.add_participant(a)
    assert [i.outcome for i in payments.approve(r.ctx, [a.assignment_id]).items] == ["ok"]
    second = payments.unreject(r.ctx, [a.assignment_id])
    assert [i.outcome for i in second.items] == ["already"]
    assert second.paid == 0
    assert [(e.kind, e.state, e.amount) for e in r.ledger() if e.state == "succeeded"] == [("approve", "succeeded",
                                                                                           "0.50")]
    assert Decimal(r.balance()) == START - Decimal("0.60")


def test_unreject_of_work_approved_elsewhere_adds_no_second_row(recruiting: Recruiting) -> None:
    """The approval row exists but is unsettled; the unreject call finds it Approved: noop."""
    r = recruiting
    hit_id = r.create_hit(assignments=2, reward="0.50")
    (a,) = r.submitted_assignments(hit_id, 1)
    r.add_participant(a)
    r.state.add_fault("ApproveAssignment", "drop_response")
    assert payments.approve(r.ctx, [a.assignment_id]).items[0].outcome == "unknown"
    result = payments.unreject(r.ctx, [a.assignment_id])
    assert [i.outcome for i in result.items] == ["already"]
    assert payments.settle_all(r.ctx).counts() == {"ok": 1}
    assert [(e.kind, e.state) for e in r.ledger()] == [("approve", "succeeded"), ("unreject", "noop")]
    assert Decimal(r.balance()) == START - Decimal("0.60")


# --- 7. hit extend retried ---------------------------------------------------------------------


def test_extend_retried_after_an_unclear_answer_adds_once(recruiting: Recruiting) -> None:
    r = recruiting
    ctx = retrying(r)
    for then in ("service_fault", "throttle"):  # a dropped response, then botocore's retries
        hit_id = r.create_hit(assignments=3)
        r.state.add_fault("CreateAdditionalAssignmentsForHIT", "drop_response")
        r.state.add_fault("CreateAdditionalAssignmentsForHIT", then, 2)
        with pytest.raises(TurnoutError, match="may or may not"):
            hits.extend_hit(ctx, hit_id, assignments=2)
        assert r.state.get_hit(hit_id).max_assignments == 5
        again = hits.extend_hit(ctx, hit_id, assignments=2)
        assert again["max_assignments"] == 5
        assert r.state.get_hit(hit_id).max_assignments == 5, then
        # A later, deliberate request adds again.
        assert hits.extend_hit(ctx, hit_id, assignments=2)["max_assignments"] == 7
    # An unclear answer that did not land: the next run sends the same request once.
    hit_id = r.create_hit(assignments=3)
    r.state.add_fault("CreateAdditionalAssignmentsForHIT", "service_fault", 3)
    with pytest.raises(TurnoutError, match="may or may not"):
        hits.extend_hit(ctx, hit_id, assignments=2)
    assert r.state.get_hit(hit_id).max_assignments == 3
    assert hits.extend_hit(r.ctx, hit_id, assignments=2)["max_assignments"] == 5
    assert r.state.get_hit(hit_id).max_assignments == 5


def test_create_hit_dropped_then_throttled_is_unknown_and_settled_by_its_key(recruiting: Recruiting) -> None:
    """The same rule for CreateHIT: a dropped response then throttles may have posted it."""
    r = recruiting
    ctx = retrying(r)
    r.state.add_fault("CreateHIT", "drop_response")
    r.state.add_fault("CreateHIT", "throttle", 2)
    with pytest.raises(TurnoutError, match="it may exist") as raised:
        hits.create_hit(ctx, max_assignments=3, reward="1.00", duration_hours=1)
    key = raised.value.detail["request_key"]
    again = hits.create_hit(ctx, max_assignments=3, reward="1.00", duration_hours=1, request_key=key)
    assert len(r.state.list_hits().items) == 1
    assert again["hit_id"] == r.state.list_hits().items[0].hit_id


# --- 8. crash leftovers and bad values ---------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_claim_of_a_dead_process_on_this_host_is_taken_at_once(recruiting: Recruiting,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    r = recruiting
    (a,) = approved(r, 1)

    class Killed(BaseException):
        pass

    dead = f"{socket.gethostname()[:24]}:{_dead_pid()}:1:deadbeef"
    real_finish = ledger._finish
    monkeypatch.setattr(ledger, "_claimant", lambda: dead)
    monkeypatch.setattr(ledger, "_finish", lambda *a, **k: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        payments.bonus(r.ctx, [a.assignment_id], amount="1.25", reason="thanks")
    monkeypatch.undo()
    assert ledger._finish is real_finish
    assert r.ledger(kind="bonus")[0].state == "claimed"
    assert os.getpid() != int(dead.split(":")[1])
    settled = payments.settle_all(r.ctx)  # no 10-minute wait: the claimant is gone
    assert settled.counts() == {"ok": 1}
    assert paid(r, a.assignment_id) == ["1.25"]
    agree(r, [a.assignment_id])


def test_bad_bonus_column_values_are_reported_and_the_batch_goes_on(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=5)
    assignments = r.submitted_assignments(hit_id, 4)
    # MariaDB's FLOAT holds neither inf nor NaN (nor 1e300); there, other values no one can pay.
    mariadb = r.ctx.settings.database_url.startswith("mysql")
    odd = (1e30, -1.0, 0.001) if mariadb else (float("inf"), float("nan"), 1e300)
    for a, value in zip(assignments, (*odd, 0.5), strict=True):
        r.add_participant(a, bonus=value)
    payments.approve_all(r.ctx)
    result = payments.bonus_all(r.ctx, amount="auto", reason="R")
    outcomes = {i.assignment_id: (i.outcome, i.message) for i in result.items}
    assert [outcomes[a.assignment_id][0] for a in assignments] == ["skipped", "skipped", "skipped", "ok"]
    assert ("1e+30" if mariadb else "inf") in outcomes[assignments[0].assignment_id][1]
    agree(r, [a.assignment_id for a in assignments])


def test_a_locked_database_ends_one_item_not_the_batch(recruiting: Recruiting, monkeypatch: pytest.MonkeyPatch) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=4)
    assignments = r.submitted_assignments(hit_id, 3)
    for a in assignments:
        r.add_participant(a, bonus=0.25)
    payments.approve_all(r.ctx)
    locked = OperationalError("INSERT", {}, Exception("database is locked"))
    real_intent, real_finish = ledger._intent, ledger._finish

    def intent(ctx: Any, key: str, *args: Any, **kw: Any) -> Any:
        if assignments[0].assignment_id in key:
            raise locked
        return real_intent(ctx, key, *args, **kw)

    def finish(ctx: Any, entry: Any, *args: Any, **kw: Any) -> Any:
        if entry.assignment_id == assignments[1].assignment_id:
            raise locked
        return real_finish(ctx, entry, *args, **kw)

    monkeypatch.setattr(ledger, "_intent", intent)
    monkeypatch.setattr(ledger, "_finish", finish)
    result = payments.bonus_all(r.ctx, amount="auto", reason="R")
    monkeypatch.undo()
    by_id = {i.assignment_id: i for i in result.items}
    first, second, third = (by_id[a.assignment_id] for a in assignments)
    assert first.outcome == "failed" and "Nothing was sent" in first.message
    assert second.outcome == "unknown" and "ledger settle" in second.message
    assert third.outcome == "ok"
    assert paid(r, assignments[0].assignment_id) == []
    # The row of the second stays claimed by this (live) process until the claim is stale.
    r.clock.advance(payments.STALE_CLAIM + timedelta(seconds=1))
    assert payments.settle_all(r.ctx).counts() == {"ok": 1}
    agree(r, [a.assignment_id for a in assignments])


# --- issue 6 item 7: a bonus for work not yet approved ------------------------------------------------


def test_bonus_of_a_submitted_assignment_is_refused_until_approved(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2)
    (a,) = r.submitted_assignments(hit_id, 1)
    r.add_participant(a)
    refused = payments.bonus(r.ctx, [a.assignment_id], amount="0.50", reason="R")
    assert [i.outcome for i in refused.items] == ["refused"]
    assert "approve it first" in refused.items[0].message
    assert paid(r, a.assignment_id) == [] and r.ledger(kind="bonus") == []
    payments.approve(r.ctx, [a.assignment_id])
    assert payments.bonus(r.ctx, [a.assignment_id], amount="0.50", reason="R").items[0].outcome == "ok"
    agree(r, [a.assignment_id])
