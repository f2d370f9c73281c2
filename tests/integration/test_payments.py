"""The payments ledger against the offline marketplace over HTTP, on every database.

Each test provokes one way a payment goes wrong in practice (a double submit, a timeout,
a crash between MTurk's success and our bookkeeping, two processes at once) and checks
what matters: the marketplace paid exactly once (ListBonusPayments and the balance), and
the ledger, the participant's status and the audit trail say the same.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from turnout.errors import Forbidden, InvalidInput
from turnout.experiment.status import Status
from turnout.services import audit, payments
from turnout.services.payments import ledger

from .conftest import Recruiting, local_client, never_delivered, timeout_after_delivery

pytestmark = pytest.mark.db

START_BALANCE = Decimal("10000.00")


def approved(r: Recruiting, count: int, *, reward: str = "1.00", bonus: float | None = 0.75) -> list[Any]:
    """``count`` submitted assignments with local participant rows, approved through the ledger."""
    hit_id = r.create_hit(assignments=max(count, 1), reward=reward)
    assignments = r.submitted_assignments(hit_id, count)
    for a in assignments:
        r.add_participant(a, bonus=bonus)
    result = payments.approve_all(r.ctx)
    assert result.counts() == {"ok": count}
    return assignments


def debited(r: Recruiting) -> Decimal:
    return START_BALANCE - Decimal(r.balance())


def test_double_submit_bonus_pays_once(recruiting: Recruiting) -> None:
    r = recruiting
    (a,) = approved(r, 1)
    first = payments.bonus(r.ctx, [a.assignment_id], amount="2.00", reason="great work")
    second = payments.bonus(r.ctx, [a.assignment_id], amount="2.00", reason="great work")
    assert [i.outcome for i in first.items] == ["ok"]
    assert [i.outcome for i in second.items] == ["skipped"]
    assert "already bonused $2.00" in second.items[0].message
    assert len(r.bonus_payments(a.assignment_id)) == 1
    # reward 1.00 + 20% fee, bonus 2.00 + 20% fee
    assert debited(r) == Decimal("1.20") + Decimal("2.40")
    (entry,) = r.ledger(kind="bonus")
    assert (entry.state, entry.amount, entry.idempotency_key) == ("succeeded", "2.00", f"bonus:local:{a.assignment_id}")
    assert len(entry.request_token) <= 64
    assert r.participant_status(f"{a.worker_id}:{a.assignment_id}") == Status.BONUSED


def test_double_approve_approves_once_and_credits(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2)
    (a,) = r.submitted_assignments(hit_id, 1)
    uniqueid = r.add_participant(a)
    first = payments.approve(r.ctx, [a.assignment_id])
    second = payments.approve(r.ctx, [a.assignment_id])
    assert [i.outcome for i in first.items] == ["ok"]
    assert [i.outcome for i in second.items] == ["already"]
    assert debited(r) == Decimal("1.20")
    assert r.participant_status(uniqueid) == Status.CREDITED
    (entry,) = r.ledger(kind="approve")
    assert (entry.state, entry.amount, entry.attempts) == ("succeeded", "1.00", 1)


def test_bonus_retry_after_timeout_pays_once(recruiting: Recruiting) -> None:
    """The request reached MTurk and was applied, but the answer never came back."""
    r = recruiting
    (a,) = approved(r, 1)
    client = local_client(r.market)
    cut = timeout_after_delivery(client, "SendBonus")
    first = payments.bonus(r.context(client=client), [a.assignment_id], amount="1.50", reason="thanks")
    assert cut == [1]
    assert [i.outcome for i in first.items] == ["unknown"]
    assert len(r.bonus_payments(a.assignment_id)) == 1  # it did go through
    (entry,) = r.ledger(kind="bonus")
    assert entry.state == "unknown"
    assert r.participant_status(f"{a.worker_id}:{a.assignment_id}") == Status.CREDITED

    retry = payments.bonus(r.ctx, [a.assignment_id], amount="1.50", reason="thanks")
    assert [i.outcome for i in retry.items] == ["ok"]
    # A retry of a bonus that may have landed looks at ListBonusPayments before re-sending.
    assert "found in ListBonusPayments" in retry.items[0].message
    assert len(r.bonus_payments(a.assignment_id)) == 1
    assert debited(r) == Decimal("1.20") + Decimal("1.80")
    (entry,) = r.ledger(kind="bonus")
    assert (entry.state, entry.attempts) == ("succeeded", 2)
    assert r.participant_status(f"{a.worker_id}:{a.assignment_id}") == Status.BONUSED


def test_bonus_retry_after_timeout_before_delivery_pays_once(recruiting: Recruiting) -> None:
    """The request never reached MTurk: the retry is the one that pays."""
    r = recruiting
    (a,) = approved(r, 1)
    client = local_client(r.market)

    never_delivered(client, "SendBonus")
    first = payments.bonus(r.context(client=client), [a.assignment_id], amount="1.50", reason="thanks")
    assert [i.outcome for i in first.items] == ["unknown"]
    assert r.bonus_payments(a.assignment_id) == []
    settled = payments.settle_all(r.ctx)
    assert settled.counts() == {"ok": 1}
    assert len(r.bonus_payments(a.assignment_id)) == 1
    assert debited(r) == Decimal("1.20") + Decimal("1.80")


def test_bonus_crash_after_marketplace_commit_pays_once(recruiting: Recruiting) -> None:
    """MTurk commits the bonus, then the response is lost (fault injection)."""
    r = recruiting
    (a,) = approved(r, 1)
    r.state.add_fault("SendBonus", "drop_response")
    first = payments.bonus(r.ctx, [a.assignment_id], amount="3.00", reason="thanks")
    assert [i.outcome for i in first.items] == ["unknown"]
    assert len(r.bonus_payments(a.assignment_id)) == 1

    settled = payments.settle_all(r.ctx)
    assert settled.counts() == {"ok": 1}
    again = payments.bonus(r.ctx, [a.assignment_id], amount="3.00", reason="thanks")
    assert [i.outcome for i in again.items] == ["skipped"]
    assert len(r.bonus_payments(a.assignment_id)) == 1
    assert debited(r) == Decimal("1.20") + Decimal("3.60")


def test_process_dying_between_marketplace_success_and_local_write_pays_once(
        recruiting: Recruiting, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process is killed after MTurk paid and before the ledger recorded it: the row
    stays claimed; once the claim is stale, the next run settles it without paying again."""
    r = recruiting
    (a,) = approved(r, 1)

    class Killed(BaseException):
        pass

    real_finish = ledger._finish

    def die(*args: Any, **kwargs: Any) -> Any:
        raise Killed()

    monkeypatch.setattr(ledger, "_finish", die)
    with pytest.raises(Killed):
        payments.bonus(r.ctx, [a.assignment_id], amount="1.25", reason="thanks")
    monkeypatch.setattr(ledger, "_finish", real_finish)
    assert len(r.bonus_payments(a.assignment_id)) == 1
    (entry,) = r.ledger(kind="bonus")
    assert entry.state == "claimed"

    # Too early: the claim may still belong to a live process, so nobody touches it.
    busy = payments.bonus(r.ctx, [a.assignment_id], amount="1.25", reason="thanks")
    assert [i.outcome for i in busy.items] == ["busy"]
    assert payments.settle_all(r.ctx).items == []

    r.clock.advance(payments.STALE_CLAIM + timedelta(seconds=1))
    settled = payments.settle_all(r.ctx)
    assert settled.counts() == {"ok": 1}
    assert len(r.bonus_payments(a.assignment_id)) == 1
    assert debited(r) == Decimal("1.20") + Decimal("1.50")
    assert r.participant_status(f"{a.worker_id}:{a.assignment_id}") == Status.BONUSED


def test_unknown_bonus_past_token_lifetime_is_found_not_repaid(recruiting: Recruiting) -> None:
    """MTurk forgets a token after 24 h; the retry checks ListBonusPayments first."""
    r = recruiting
    (a,) = approved(r, 1)
    r.state.add_fault("SendBonus", "drop_response")
    assert payments.bonus(r.ctx, [a.assignment_id], amount="1.00", reason="thanks").items[0].outcome == "unknown"
    r.clock.advance(timedelta(hours=25))
    settled = payments.settle_all(r.ctx)
    assert settled.counts() == {"ok": 1}
    assert "ListBonusPayments" in settled.items[0].message
    assert len(r.bonus_payments(a.assignment_id)) == 1


def test_approve_lost_response_counts_as_approved(recruiting: Recruiting) -> None:
    """ApproveAssignment has no token: a retry gets "status of: Submitted", and
    GetAssignment shows it is Approved, so it counts as done and is not paid twice."""
    r = recruiting
    hit_id = r.create_hit(assignments=3)
    assignments = r.submitted_assignments(hit_id, 2)
    uniqueids = [r.add_participant(a) for a in assignments]
    r.state.add_fault("ApproveAssignment", "drop_response")
    first = payments.approve_all(r.ctx)
    assert sorted(i.outcome for i in first.items) == ["ok", "unknown"]
    second = payments.approve_all(r.ctx)  # the unknown one is still Submitted? no: it was applied
    third = payments.settle_all(r.ctx)
    outcomes = [i.outcome for i in second.items] + [i.outcome for i in third.items]
    assert outcomes.count("ok") == 1
    assert debited(r) == Decimal("2.40")
    assert [r.participant_status(u) for u in uniqueids] == [Status.CREDITED, Status.CREDITED]
    assert {e.state for e in r.ledger(kind="approve")} == {"succeeded"}


def test_two_processes_at_once_pay_once(recruiting: Recruiting) -> None:
    """Two workers (threads with their own engines and clients, as two processes have)
    approve all and bonus all the same study at the same moment."""
    r = recruiting
    hit_id = r.create_hit(assignments=4)
    assignments = r.submitted_assignments(hit_id, 4)
    for a in assignments:
        r.add_participant(a, bonus=0.5)
    databases = [r.new_database(), r.new_database()]
    contexts = [r.context(db=db, actor=f"process-{n}") for n, db in enumerate(databases)]
    results: dict[str, list[Any]] = {"approve": [], "bonus": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(ctx: Any) -> None:
        try:
            barrier.wait(timeout=10)
            results["approve"].append(payments.approve_all(ctx))
            barrier.wait(timeout=30)
            results["bonus"].append(payments.bonus_all(ctx, amount="auto", reason="performance bonus"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(ctx,)) for ctx in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for db in databases:
        db.dispose()
    assert not errors, errors

    for action in ("approve", "bonus"):
        done = [i.outcome for batch in results[action] for i in batch.items]
        # Each assignment: one payer. The other process saw it busy or done, or (when its
        # listing came after the first approval) did not list it as Submitted at all.
        assert 4 <= len(done) <= 8 and done.count("ok") == 4, (action, done)
        assert set(done) <= {"ok", "already", "busy", "skipped"}, (action, done)
    for a in assignments:
        assert len(r.bonus_payments(a.assignment_id)) == 1
    assert debited(r) == 4 * (Decimal("1.20") + Decimal("0.60"))
    assert len(r.ledger(kind="approve")) == 4
    assert [e.state for e in r.ledger(kind="bonus")] == ["succeeded"] * 4


def test_auto_bonus_of_zero_or_missing_is_reported_per_participant(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=3)
    a1, a2, a3 = r.submitted_assignments(hit_id, 3)
    r.add_participant(a1, bonus=0.0)
    r.add_participant(a2, bonus=None)
    r.add_participant(a3, bonus=0.1 + 0.2)  # float noise in psiTurk's column
    payments.approve_all(r.ctx)
    result = payments.bonus_all(r.ctx, amount="auto", reason="bonus")
    by_id = {i.assignment_id: i for i in result.items}
    assert by_id[a1.assignment_id].outcome == "skipped"
    assert "nothing to pay" in by_id[a1.assignment_id].message
    assert by_id[a2.assignment_id].outcome == "skipped"
    assert (by_id[a3.assignment_id].outcome, by_id[a3.assignment_id].amount) == ("ok", "0.30")
    assert result.ok


def test_override_pays_a_second_bonus_under_a_new_key(recruiting: Recruiting) -> None:
    r = recruiting
    (a,) = approved(r, 1)
    payments.bonus(r.ctx, [a.assignment_id], amount="1.00", reason="first")
    second = payments.bonus(r.ctx, [a.assignment_id], amount="0.50", reason="second", override=True)
    assert [i.outcome for i in second.items] == ["ok"]
    keys = [e.idempotency_key for e in r.ledger(kind="bonus")]
    assert keys == [f"bonus:local:{a.assignment_id}",
                    payments.override_stem(r.ctx, a.assignment_id, Decimal("0.50"), "second")]
    assert len(r.bonus_payments(a.assignment_id)) == 2


def test_reject_records_feedback_and_unreject_reports_failure_honestly(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=3)
    a1, a2 = r.submitted_assignments(hit_id, 2)
    u1 = r.add_participant(a1)
    rejected = payments.reject(r.ctx, [a1.assignment_id, a2.assignment_id], feedback="answers were random")
    assert [i.outcome for i in rejected.items] == ["ok", "ok"]
    assert {e.reason for e in r.ledger(kind="reject")} == {"answers were random"}
    assert r.participant_status(u1) == Status.COMPLETED  # psiTurk leaves the status alone too
    assert r.state.workers.assignment(a1.assignment_id).requester_feedback == "answers were random"

    ok = payments.unreject(r.ctx, [a1.assignment_id])
    assert [i.outcome for i in ok.items] == ["ok"]
    assert r.participant_status(u1) == Status.CREDITED

    r.clock.advance(timedelta(days=31))  # past MTurk's 30-day override window
    late = payments.unreject(r.ctx, [a2.assignment_id])
    assert [i.outcome for i in late.items] == ["failed"]
    assert "30 days" in late.items[0].message
    assert r.ledger(kind="unreject")[-1].state == "failed"


def test_approve_all_is_scoped_to_one_codeversion(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=3)
    a1, a2 = r.submitted_assignments(hit_id, 2)
    r.add_participant(a1)
    r.add_participant(a2, codeversion="0.9-old")
    result = payments.approve_all(r.ctx)
    assert {i.assignment_id: i.outcome for i in result.items} == {a1.assignment_id: "ok", a2.assignment_id: "skipped"}


def test_live_money_needs_confirmation_before_any_call(recruiting: Recruiting) -> None:
    from botocore.stub import Stubber

    from turnout.marketplace import make_client
    from turnout.services.recruitment import MarketContext

    client = make_client("live", aws_access_key_id="x", aws_secret_access_key="y")
    ctx = MarketContext(db=recruiting.db, settings=recruiting.ctx.settings, clock=recruiting.clock,
                        mode="live", client=client)
    with Stubber(client):  # no responses queued: any call would fail the test
        for call in (lambda: payments.approve_all(ctx), lambda: payments.bonus_all(ctx, amount="1", reason="x"),
                     lambda: payments.reject(ctx, ["A1"]), lambda: payments.unreject(ctx, ["A1"])):
            with pytest.raises(Forbidden, match="live mode pays real money"):
                call()


def test_bad_amounts_are_refused(recruiting: Recruiting) -> None:
    for amount in ("0", "-1", "1.005", "abc", 1.5):
        with pytest.raises(InvalidInput):
            payments.bonus(recruiting.ctx, ["A1"], amount=amount, reason="x")
    with pytest.raises(InvalidInput, match="reason"):
        payments.bonus(recruiting.ctx, ["A1"], amount="1.00", reason=" ")


def test_every_money_action_is_audited(recruiting: Recruiting) -> None:
    r = recruiting
    (a,) = approved(r, 1)
    payments.bonus(r.ctx, [a.assignment_id], amount="1.00", reason="thanks")
    events = audit.list_events(r.ctx)
    actions = [(e.action, e.outcome, e.target) for e in reversed(events)]
    assert ("approve", "ok", a.assignment_id) in actions
    assert ("bonus", "ok", a.assignment_id) in actions
    assert all(e.mode == "local" and e.actor == "test" and e.marketplace.startswith("local http") for e in events)
