"""Reconciliation against the offline marketplace over HTTP, on every database.

Each test makes one kind of difference the way it happens in a lab (approved behind the
lab's back, submitted without finishing, a deleted or duplicated row, a bonus skipped or
paid twice by hand), checks that it is found with the right kind while agreeing
assignments are not listed, and that its remedy removes it, moving money only where it
should, once (the marketplace's balance and ListBonusPayments say so).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from servers import turnout_cli as run
from turnout.errors import Conflict, InvalidInput, NotFound, TurnoutError
from turnout.experiment.status import Status
from turnout.services import payments, reconciliation

from .conftest import Recruiting, local_client

pytestmark = pytest.mark.db


def kinds(report: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for d in report.differences:
        found.setdefault(d.kind, []).append(d.assignment_id)
    return found


def balance(r: Recruiting) -> Decimal:
    return Decimal(r.balance())


def test_agreeing_assignments_are_not_listed(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=3)
    done = r.submitted_assignments(hit_id, 2)
    for a in done:
        r.add_participant(a, bonus=0.5)
    assert payments.approve_all(r.ctx).counts() == {"ok": 2}
    assert payments.bonus_all(r.ctx, amount="auto", reason="thanks").counts() == {"ok": 2}
    submitted = r.submitted_assignments(hit_id, 1)[0]
    r.add_participant(submitted, status=Status.SUBMITTED)
    report = reconciliation.check(r.ctx)
    assert (report.checked, report.hits, report.differences) == (3, 1, [])
    assert reconciliation.last_run(r.ctx)["differences"] == 0


def test_approved_behind_the_labs_back_is_found_and_synced_without_paying_again(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2, reward="1.00")
    (a,) = r.submitted_assignments(hit_id, 1)
    uniqueid = r.add_participant(a)
    local_client(r.market).approve_assignment(AssignmentId=a.assignment_id)  # auto-approval, or by hand
    before = balance(r)

    (d,) = reconciliation.check(r.ctx).differences
    assert (d.kind, d.local_status, d.marketplace_status, d.remedies) == (
        "approved_remotely", "Completed", "Approved", ["sync_local"])
    with pytest.raises(Conflict, match="does not fit"):
        reconciliation.fix(r.ctx, a.assignment_id, "approve")

    result = reconciliation.fix(r.ctx, a.assignment_id, "sync_local")
    assert result.ok and result.remaining == []
    assert balance(r) == before  # nothing paid: the marketplace had already paid
    assert r.participant_status(uniqueid) == Status.CREDITED
    (entry,) = r.ledger(kind="approve")
    assert entry.state == "succeeded"
    assert reconciliation.check(r.ctx).differences == []


def test_submitted_without_finishing_offers_approve_reject_exclude_and_approve_pays_once(
        recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2, reward="1.00")
    (a,) = r.submitted_assignments(hit_id, 1)
    uniqueid = r.add_participant(a, status=Status.STARTED)
    (d,) = reconciliation.check(r.ctx).differences
    assert (d.kind, d.local_status, d.remedies) == ("submitted_remotely", "Started", ["approve", "reject", "exclude"])
    before = balance(r)
    first = reconciliation.fix(r.ctx, a.assignment_id, "approve")
    assert first.outcome == "ok" and first.remaining == []
    assert before - balance(r) == Decimal("1.20")  # reward + 20% fee, once
    assert r.participant_status(uniqueid) == Status.CREDITED
    with pytest.raises(Conflict, match="records agree"):
        reconciliation.fix(r.ctx, a.assignment_id, "approve")
    assert before - balance(r) == Decimal("1.20")


def test_rejected_remotely_is_recorded_by_sync_local(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2)
    (a,) = r.submitted_assignments(hit_id, 1)
    r.add_participant(a)
    local_client(r.market).reject_assignment(AssignmentId=a.assignment_id, RequesterFeedback="no")
    (d,) = reconciliation.check(r.ctx).differences
    assert (d.kind, d.marketplace_status, d.remedies) == ("rejected_remotely", "Rejected", ["sync_local", "approve"])
    before = balance(r)
    assert reconciliation.fix(r.ctx, a.assignment_id, "sync_local").ok
    assert balance(r) == before
    assert [e.state for e in r.ledger(kind="reject")] == ["succeeded"]
    assert reconciliation.check(r.ctx).differences == []


def test_finished_row_the_marketplace_does_not_have_is_unknown_remotely_once_it_cannot_still_submit(
        recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=3)
    (a,) = r.submitted_assignments(hit_id, 1)
    r.add_participant(a, status=Status.SUBMITTED)
    P = r.db.models.Participant
    with r.db.begin() as session:  # finished locally; on MTurk never submitted (or returned)
        session.add(P(uniqueid="W9:A9", workerid="W9", assignmentid="A9", hitid=hit_id, mode="local",
                      codeversion=r.ctx.codeversion, status=Status.COMPLETED, beginhit=r.clock.now()))
        session.add(P(uniqueid="W8:A8", workerid="W8", assignmentid="A8", hitid=hit_id, mode="local",
                      codeversion=r.ctx.codeversion, status=Status.CREDITED, beginhit=r.clock.now()))
    # A8 says paid but the marketplace never saw it; A9 may still press Submit for an hour.
    assert kinds(reconciliation.check(r.ctx)) == {"unknown_remotely": ["A8"]}
    r.clock.advance(timedelta(hours=2))
    assert kinds(reconciliation.check(r.ctx)) == {"unknown_remotely": ["A8", "A9"]}

    result = reconciliation.fix(r.ctx, "A9", "exclude", reason="never submitted")
    assert result.ok and result.remaining == []
    assert kinds(reconciliation.check(r.ctx)) == {"unknown_remotely": ["A8"]}
    X = r.db.models.Exclusion
    with r.db.begin() as session:
        (row,) = session.query(X).all()
    assert (row.uniqueid, row.reason) == ("W9:A9", "never submitted")


def test_assignment_without_local_row_is_unknown_locally(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2)
    (a,) = r.submitted_assignments(hit_id, 1)  # the local row was deleted, or never written
    (d,) = reconciliation.check(r.ctx).differences
    assert (d.kind, d.local_status, d.marketplace_status, d.remedies) == (
        "unknown_locally", None, "Submitted", ["approve", "reject"])
    with pytest.raises(Conflict, match="exclude does not fit"):
        reconciliation.fix(r.ctx, a.assignment_id, "exclude")
    assert reconciliation.fix(r.ctx, a.assignment_id, "reject", reason="no data").ok
    (d,) = reconciliation.check(r.ctx).differences
    assert (d.kind, d.marketplace_status, d.remedies) == ("unknown_locally", "Rejected", [])


def test_duplicate_rows_exclude_the_extra_ones(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2)
    (a,) = r.submitted_assignments(hit_id, 1)
    keep = r.add_participant(a, status=Status.SUBMITTED)
    P = r.db.models.Participant
    with r.db.begin() as session:
        session.add(P(uniqueid=f"OTHER:{a.assignment_id}", workerid="OTHER", assignmentid=a.assignment_id,
                      hitid=hit_id, mode="local", codeversion=r.ctx.codeversion, status=Status.STARTED,
                      beginhit=r.clock.now()))
    (d,) = reconciliation.check(r.ctx).differences
    assert (d.kind, d.remedies, d.uniqueids) == ("duplicate_rows", ["exclude"], [f"OTHER:{a.assignment_id}"])
    assert keep in d.detail
    assert reconciliation.fix(r.ctx, a.assignment_id, "exclude").ok
    assert reconciliation.check(r.ctx).differences == []


def test_bonus_owed_and_not_paid_is_paid_once(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2)
    (a,) = r.submitted_assignments(hit_id, 1)
    r.add_participant(a, bonus=0.75)
    assert payments.approve_all(r.ctx).counts() == {"ok": 1}
    (d,) = reconciliation.check(r.ctx).differences
    assert (d.kind, d.remedies) == ("bonus_missing", ["pay_bonus"])
    assert "$0.75" in d.detail
    before = balance(r)
    result = reconciliation.fix(r.ctx, a.assignment_id, "pay_bonus")
    assert result.outcome == "ok" and result.paid == "0.75"
    with pytest.raises(Conflict):
        reconciliation.fix(r.ctx, a.assignment_id, "pay_bonus")
    assert [b["BonusAmount"] for b in r.bonus_payments(a.assignment_id)] == ["0.75"]
    assert before - balance(r) == Decimal("0.90")  # 0.75 + 20% fee, once
    assert reconciliation.check(r.ctx).differences == []


def test_bonus_paid_twice_by_hand_or_a_wrong_amount_is_bonus_differs(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=3)
    twice, wrong = r.submitted_assignments(hit_id, 2)
    r.add_participant(twice, bonus=0.5)
    r.add_participant(wrong, bonus=0.5)
    assert payments.approve_all(r.ctx).counts() == {"ok": 2}
    client = local_client(r.market)
    for token in ("t1", "t2"):
        client.send_bonus(WorkerId=twice.worker_id, AssignmentId=twice.assignment_id, BonusAmount="0.50",
                          Reason="thanks", UniqueRequestToken=token)
    client.send_bonus(WorkerId=wrong.worker_id, AssignmentId=wrong.assignment_id, BonusAmount="0.40",
                      Reason="thanks", UniqueRequestToken="t3")
    report = reconciliation.check(r.ctx)
    assert kinds(report) == {"bonus_differs": sorted([twice.assignment_id, wrong.assignment_id])}
    by_id = {d.assignment_id: d for d in report.differences}
    assert "paid 2 bonuses" in by_id[twice.assignment_id].detail
    assert by_id[twice.assignment_id].remedies == []
    with pytest.raises(Conflict, match="no remedy applies"):
        reconciliation.fix(r.ctx, twice.assignment_id, "pay_bonus")
    assert len(r.bonus_payments(twice.assignment_id)) == 2


def test_scope_is_one_mode_and_optionally_one_codeversion(recruiting: Recruiting) -> None:
    r = recruiting
    hit_id = r.create_hit(assignments=2)
    (a,) = r.submitted_assignments(hit_id, 1)
    r.add_participant(a, status=Status.STARTED)
    assert len(reconciliation.check(r.ctx, codeversion=r.ctx.codeversion).differences) == 1
    assert reconciliation.check(r.ctx, codeversion="other-version").hits == 0


def test_bad_remedy_and_unknown_assignment_are_clear_errors(recruiting: Recruiting) -> None:
    r = recruiting
    with pytest.raises(InvalidInput, match="unknown remedy"):
        reconciliation.fix(r.ctx, "A1", "refund")
    with pytest.raises(NotFound, match="neither on the marketplace nor"):
        reconciliation.fix(r.ctx, "ZZZNOSUCHASSIGNMENT", "approve")
    with pytest.raises(TurnoutError, match="cannot read assignment"):
        reconciliation.fix(r.ctx, "not-an-id", "approve")


# --- the command ---------------------------------------------------------------------------------



@pytest.fixture
def cli_project(project_dir: Path) -> Path:
    assert run(project_dir, "db", "upgrade").exit_code == 0
    return project_dir


def test_reconcile_command_exits_1_on_differences_and_fix_clears_them(cli_project: Path) -> None:
    import json

    from turnout.config import load_settings
    from turnout.marketplace.local import MarketplaceState

    clean = run(cli_project, "reconcile")
    assert clean.exit_code == 0, clean.output
    assert "no differences" in clean.stdout

    created = run(cli_project, "hit", "create", "2", "1.00", "1", "--yes", "--json")
    hit_id = json.loads(created.stdout)["hit_id"]
    side = MarketplaceState(load_settings(cli_project).marketplace_store).workers
    worker = side.register()
    assignment = side.submit(side.accept(worker.worker_id, hit_id).assignment_id, {"x": "1"}).assignment_id

    found = run(cli_project, "reconcile", "--json")
    assert found.exit_code == 1, found.output
    body = json.loads(found.stdout)
    assert body["checked"] == 1
    (d,) = body["differences"]
    assert {k: d[k] for k in ("assignment_id", "worker_id", "hit_id", "kind", "local_status",
                              "marketplace_status", "remedies")} == {
        "assignment_id": assignment, "worker_id": worker.worker_id, "hit_id": hit_id, "kind": "unknown_locally",
        "local_status": None, "marketplace_status": "Submitted", "remedies": ["approve", "reject"]}
    text = run(cli_project, "reconcile")
    assert text.exit_code == 1 and "unknown_locally (1)" in text.stdout

    wrong = run(cli_project, "reconcile", "fix", assignment, "exclude")
    assert wrong.exit_code == 1
    assert len(wrong.stderr.strip().splitlines()) == 1 and "does not fit" in wrong.stderr
    fixed = run(cli_project, "reconcile", "fix", assignment, "approve")
    assert fixed.exit_code == 0, fixed.output
    assert f"{assignment}: approve: ok" in fixed.stdout
    after = run(cli_project, "reconcile", "--json")
    assert json.loads(after.stdout)["differences"][0]["remedies"] == []  # approved, still no local row
