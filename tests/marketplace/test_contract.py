"""The MTurk contract: behaviour callers rely on, pinned over real HTTP with plain boto3.

Tests without ``local_only`` run unchanged against the real MTurk sandbox when
``TURNOUT_MTURK_SANDBOX_CONTRACT=1`` (see conftest.py), which is how the offline
marketplace's GUESSes get checked. ``local_only`` tests need simulated workers, the
control API or a ManualClock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from turnout.marketplace.local import WorkerActionRefused
from turnout.marketplace.local.quals import LOCALE, MASTERS_SANDBOX, PERCENT_APPROVED
from turnout.marketplace.local.testing import START, external_question, sandbox_contract_requested

SANDBOX = sandbox_contract_requested()
URL = "https://example.org/turnout-contract-test"
local_only = pytest.mark.local_only

STAMP = re.compile(r" \(\d{13}\)$")


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, str | None]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response.get("TurkErrorCode")


# --------------------------------------------------------------------------- shapes and errors


def test_account_balance_is_a_two_decimal_money_string(mturk: Any) -> None:
    balance = mturk.get_account_balance()["AvailableBalance"]
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", balance)
    if not SANDBOX:
        assert balance == "10000.00"


def test_create_hit_returns_thirty_character_ids_and_an_assignable_hit(make_hit: Any) -> None:
    hit = make_hit(MaxAssignments=3)
    assert re.fullmatch(r"[A-Z0-9]{30}", hit["HITId"])
    assert re.fullmatch(r"[A-Z0-9]{30}", hit["HITTypeId"])
    assert hit["HITStatus"] == "Assignable"
    assert (hit["NumberOfAssignmentsAvailable"], hit["NumberOfAssignmentsPending"], hit["NumberOfAssignmentsCompleted"]) == (3, 0, 0)
    assert hit["Reward"] == "1.00"
    assert hit["Expiration"] - hit["CreationTime"] == timedelta(seconds=3600)


def test_unknown_hit_is_a_request_error_naming_the_hit_with_a_millisecond_stamp(mturk: Any) -> None:
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.get_hit(HITId="3ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ")
    code, message, turk = error_of(excinfo)
    assert code == "RequestError"
    assert message.startswith("Hit 3ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ does not exist.")
    assert STAMP.search(message)
    assert turk == "AWS.MechanicalTurk.HITDoesNotExist"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_reward_breaking_the_money_pattern_is_a_validation_exception(mturk: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        mturk.create_hit(Title="t", Description="d", Reward="0.975", AssignmentDurationInSeconds=600,
                         LifetimeInSeconds=3600, Question=external_question(URL))
    code, message, _ = error_of(excinfo)
    assert code == "ValidationException"
    assert "Value '0.975' at 'reward' failed to satisfy constraint: Member must satisfy regular expression pattern" in message


def test_max_results_above_100_is_refused(mturk: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        mturk.list_hits(MaxResults=101)
    code, message, _ = error_of(excinfo)
    assert code == "ValidationException"
    assert "'maxResults'" in message and "less than or equal to 100" in message


def test_comparator_outside_the_enum_is_refused(mturk: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        mturk.create_hit(Title="t", Description="d", Reward="1.00", AssignmentDurationInSeconds=600, LifetimeInSeconds=3600,
                         Question=external_question(URL),
                         QualificationRequirements=[{"QualificationTypeId": PERCENT_APPROVED, "Comparator": "AtLeast", "IntegerValues": [90]}])
    code, message, _ = error_of(excinfo)
    assert code == "ValidationException"
    assert "qualificationRequirements.1.member.comparator" in message and "enum value set" in message


def test_create_hit_needs_a_question_or_a_layout(mturk: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        mturk.create_hit(Title="t", Description="d", Reward="1.00", AssignmentDurationInSeconds=600, LifetimeInSeconds=3600)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_malformed_question_xml_is_an_xml_parse_error(mturk: Any) -> None:
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.create_hit(Title="t", Description="d", Reward="1.00", AssignmentDurationInSeconds=600, LifetimeInSeconds=3600,
                         Question="<ExternalQuestion><ExternalURL>")
    assert error_of(excinfo)[2] == "AWS.MechanicalTurk.XMLParseError"


@local_only
def test_http_external_url_is_refused_unless_it_is_loopback(mturk: Any, make_hit: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        make_hit(Question=external_question("http://example.org/task"))
    assert error_of(excinfo)[0] == "ParameterValidationError"
    assert "https" in error_of(excinfo)[1]
    hit = make_hit(Question=external_question("http://127.0.0.1:22362/ad"))  # allow_http_external_url is on by default
    assert hit["HITStatus"] == "Assignable"


def test_list_bonus_payments_needs_a_hit_or_an_assignment(mturk: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        mturk.list_bonus_payments()
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# --------------------------------------------------------------------------- pagination


def test_list_hits_walks_next_token_to_the_end(mturk: Any, make_hit: Any) -> None:
    if SANDBOX:
        pytest.skip("the sandbox account may hold other HITs; walking them is slow")
    made = {make_hit(RequesterAnnotation=f"hit-{i}")["HITId"] for i in range(12)}
    seen: list[str] = []
    kwargs: dict[str, Any] = {"MaxResults": 5}
    for _ in range(10):  # loop guard: 12 HITs in pages of 5 need 3 calls
        page = mturk.list_hits(**kwargs)
        assert page["NumResults"] == len(page["HITs"]) <= 5
        seen += [h["HITId"] for h in page["HITs"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    else:
        pytest.fail("NextToken never ran out")
    assert len(seen) == len(set(seen)) == 12
    assert set(seen) == made


@local_only
def test_list_hits_without_max_results_returns_a_page_of_ten(mturk: Any, make_hit: Any) -> None:
    for _ in range(11):
        make_hit()
    page = mturk.list_hits()
    assert page["NumResults"] == 10 and "NextToken" in page


@local_only
def test_next_token_reused_with_other_filters_is_refused(mturk: Any, make_hit: Any) -> None:
    hit = make_hit(MaxAssignments=1)
    other = make_hit(MaxAssignments=1)
    mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=datetime(2015, 1, 1, tzinfo=UTC))
    mturk.update_expiration_for_hit(HITId=other["HITId"], ExpireAt=datetime(2015, 1, 1, tzinfo=UTC))
    first = mturk.list_reviewable_hits(MaxResults=1)
    assert first["NumResults"] == 1 and "NextToken" in first
    with pytest.raises(ClientError) as excinfo:
        mturk.list_reviewable_hits(MaxResults=1, NextToken=first["NextToken"], Status="Reviewing")
    assert "NextToken" in error_of(excinfo)[1]
    second = mturk.list_reviewable_hits(MaxResults=1, NextToken=first["NextToken"])
    assert {first["HITs"][0]["HITId"], second["HITs"][0]["HITId"]} == {hit["HITId"], other["HITId"]}


@local_only
def test_paginator_collects_every_assignment(mturk: Any, market: Any, make_hit: Any) -> None:
    hit = make_hit(MaxAssignments=9)
    side = market.state.workers
    for worker in side.seed(7):
        side.submit(side.accept(worker.worker_id, hit["HITId"]).assignment_id, {"q": "a"})
    pages = mturk.get_paginator("list_assignments_for_hit").paginate(HITId=hit["HITId"], PaginationConfig={"PageSize": 3})
    assignments = [a for page in pages for a in page["Assignments"]]
    assert len({a["AssignmentId"] for a in assignments}) == 7
    assert all(a["AssignmentStatus"] == "Submitted" for a in assignments)


# --------------------------------------------------------------------------- idempotency tokens


def test_repeated_create_hit_token_is_hit_already_exists_naming_the_first_hit(make_hit: Any, token: Any) -> None:
    tok = token()
    first = make_hit(UniqueRequestToken=tok)
    with pytest.raises(ClientError) as excinfo:
        make_hit(UniqueRequestToken=tok)
    code, message, turk = error_of(excinfo)
    assert code == "RequestError"
    assert turk == "AWS.MechanicalTurk.HitAlreadyExists"
    assert first["HITId"] in message


@local_only
def test_create_hit_token_can_be_reused_after_24_hours(make_hit: Any, token: Any, clock: Any) -> None:
    tok = token()
    first = make_hit(UniqueRequestToken=tok, LifetimeInSeconds=3 * 86400)
    clock.advance(timedelta(hours=24, seconds=1))
    second = make_hit(UniqueRequestToken=tok)
    assert second["HITId"] != first["HITId"]


@local_only
def test_repeated_bonus_token_is_refused_with_the_original_request_id(mturk: Any, market: Any, submitted: Any, worker: Any, token: Any) -> None:
    assignment = submitted()
    tok = token()
    first = mturk.send_bonus(WorkerId=worker.worker_id, AssignmentId=assignment.assignment_id, BonusAmount="0.50",
                             Reason="thanks", UniqueRequestToken=tok)
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.send_bonus(WorkerId=worker.worker_id, AssignmentId=assignment.assignment_id, BonusAmount="0.50",
                         Reason="thanks", UniqueRequestToken=tok)
    assert first["ResponseMetadata"]["RequestId"] in error_of(excinfo)[1]
    payments = mturk.list_bonus_payments(AssignmentId=assignment.assignment_id)["BonusPayments"]
    assert [p["BonusAmount"] for p in payments] == ["0.50"]
    assert market.state.balance() == Decimal("10000.00") - Decimal("0.60")


# --------------------------------------------------------------------------- assignments: the 9-cap, extension


def test_extending_a_hit_from_below_ten_to_ten_is_refused(make_hit: Any, mturk: Any) -> None:
    hit = make_hit(MaxAssignments=9)
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.create_additional_assignments_for_hit(HITId=hit["HITId"], NumberOfAdditionalAssignments=1)
    assert error_of(excinfo)[2] == "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease"
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["MaxAssignments"] == 9


def test_extending_within_the_same_side_of_ten_is_allowed(make_hit: Any, mturk: Any) -> None:
    small = make_hit(MaxAssignments=3)
    mturk.create_additional_assignments_for_hit(HITId=small["HITId"], NumberOfAdditionalAssignments=6)
    assert mturk.get_hit(HITId=small["HITId"])["HIT"]["MaxAssignments"] == 9
    large = make_hit(MaxAssignments=10)
    mturk.create_additional_assignments_for_hit(HITId=large["HITId"], NumberOfAdditionalAssignments=5)
    assert mturk.get_hit(HITId=large["HITId"])["HIT"]["NumberOfAssignmentsAvailable"] == 15


@local_only
def test_repeated_extension_token_extends_once(make_hit: Any, mturk: Any, token: Any) -> None:
    hit = make_hit(MaxAssignments=2)
    tok = token()
    mturk.create_additional_assignments_for_hit(HITId=hit["HITId"], NumberOfAdditionalAssignments=2, UniqueRequestToken=tok)
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.create_additional_assignments_for_hit(HITId=hit["HITId"], NumberOfAdditionalAssignments=2, UniqueRequestToken=tok)
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["MaxAssignments"] == 4


# --------------------------------------------------------------------------- expiry and deletion


def test_expire_at_in_the_past_expires_the_hit_now(make_hit: Any, mturk: Any) -> None:
    hit = make_hit()
    mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=datetime(2015, 1, 1, tzinfo=UTC))
    after = mturk.get_hit(HITId=hit["HITId"])["HIT"]
    assert after["HITStatus"] == "Reviewable"
    assert after["Expiration"] <= datetime.now(UTC) if SANDBOX else after["Expiration"] == START


def test_shortening_expiry_to_a_future_time_is_refused(make_hit: Any, mturk: Any) -> None:
    hit = make_hit(LifetimeInSeconds=7200)
    with pytest.raises(ClientError):
        mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=hit["CreationTime"] + timedelta(seconds=3600))


@local_only
def test_expire_at_later_extends_and_reopens_an_expired_hit(make_hit: Any, mturk: Any, clock: Any) -> None:
    hit = make_hit(LifetimeInSeconds=60)
    clock.advance(120)
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Reviewable"
    mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=START + timedelta(hours=2))
    again = mturk.get_hit(HITId=hit["HITId"])["HIT"]
    assert again["HITStatus"] == "Assignable" and again["Expiration"] == START + timedelta(hours=2)


def test_deleting_an_assignable_hit_is_refused(make_hit: Any, mturk: Any) -> None:
    hit = make_hit()
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.delete_hit(HITId=hit["HITId"])
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Assignable"


def test_an_expired_hit_without_assignments_can_be_deleted_and_then_does_not_exist(make_hit: Any, mturk: Any) -> None:
    hit = make_hit()
    mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=datetime(2015, 1, 1, tzinfo=UTC))
    mturk.delete_hit(HITId=hit["HITId"])
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.get_hit(HITId=hit["HITId"])
    if not SANDBOX:
        assert hit["HITId"] not in {h["HITId"] for h in mturk.list_hits(MaxResults=100)["HITs"]}


@local_only
def test_deleting_a_hit_with_unreviewed_submissions_is_refused_until_reviewed(submitted: Any, mturk: Any) -> None:
    assignment = submitted()
    mturk.update_expiration_for_hit(HITId=assignment.hit_id, ExpireAt=datetime(2015, 1, 1, tzinfo=UTC))
    assert mturk.get_hit(HITId=assignment.hit_id)["HIT"]["HITStatus"] == "Reviewable"
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.delete_hit(HITId=assignment.hit_id)
    assert "submitted" in error_of(excinfo)[1]
    mturk.reject_assignment(AssignmentId=assignment.assignment_id, RequesterFeedback="incomplete")
    mturk.delete_hit(HITId=assignment.hit_id)
    with pytest.raises(mturk.exceptions.RequestError):  # docs: rejected work of a deleted HIT can no longer be approved
        mturk.approve_assignment(AssignmentId=assignment.assignment_id, OverrideRejection=True)


@local_only
def test_a_hit_with_a_worker_still_working_is_unassignable_then_reviewable(make_hit: Any, mturk: Any, market: Any, worker: Any) -> None:
    hit = make_hit(MaxAssignments=1)
    assignment = market.state.workers.accept(worker.worker_id, hit["HITId"])
    state = mturk.get_hit(HITId=hit["HITId"])["HIT"]
    assert (state["HITStatus"], state["NumberOfAssignmentsPending"], state["NumberOfAssignmentsAvailable"]) == ("Unassignable", 1, 0)
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.delete_hit(HITId=hit["HITId"])
    market.state.workers.submit(assignment.assignment_id)
    state = mturk.get_hit(HITId=hit["HITId"])["HIT"]
    assert (state["HITStatus"], state["NumberOfAssignmentsPending"], state["NumberOfAssignmentsCompleted"]) == ("Reviewable", 0, 0)
    assert [h["HITId"] for h in mturk.list_reviewable_hits()["HITs"]] == [hit["HITId"]]


# --------------------------------------------------------------------------- time


@local_only
def test_hit_stops_being_assignable_when_its_lifetime_ends(make_hit: Any, mturk: Any, clock: Any) -> None:
    hit = make_hit(LifetimeInSeconds=3600)
    clock.advance(3599)
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Assignable"
    clock.advance(1)
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Reviewable"


@local_only
def test_assignment_past_its_deadline_is_abandoned_and_its_slot_returns(make_hit: Any, mturk: Any, market: Any, worker: Any, clock: Any) -> None:
    hit = make_hit(MaxAssignments=1, AssignmentDurationInSeconds=600)
    assignment = market.state.workers.accept(worker.worker_id, hit["HITId"])
    assert assignment.deadline == START + timedelta(seconds=600)
    clock.advance(600)
    state = mturk.get_hit(HITId=hit["HITId"])["HIT"]
    assert (state["HITStatus"], state["NumberOfAssignmentsPending"], state["NumberOfAssignmentsAvailable"]) == ("Assignable", 0, 1)
    assert market.state.workers.assignment(assignment.assignment_id).status == "Abandoned"
    events = [e.event_type for e in market.state.events()]
    assert events[-1] == "AssignmentAbandoned"


@local_only
def test_submitted_work_is_auto_approved_and_paid_after_the_delay(submitted: Any, mturk: Any, clock: Any, market: Any) -> None:
    assignment = submitted(AutoApprovalDelayInSeconds=3600)
    clock.advance(3599)
    assert mturk.get_assignment(AssignmentId=assignment.assignment_id)["Assignment"]["AssignmentStatus"] == "Submitted"
    clock.advance(7200)
    got = mturk.get_assignment(AssignmentId=assignment.assignment_id)["Assignment"]
    assert got["AssignmentStatus"] == "Approved"
    assert got["ApprovalTime"] == START + timedelta(seconds=3600)  # stamped when due, not when noticed
    assert mturk.get_account_balance()["AvailableBalance"] == "9998.80"


@local_only
def test_preview_counts_as_pending_for_five_minutes(make_hit: Any, mturk: Any, market: Any, worker: Any, clock: Any) -> None:
    hit = make_hit(MaxAssignments=2)
    market.state.workers.preview(worker.worker_id, hit["HITId"])
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["NumberOfAssignmentsPending"] == 1
    clock.advance(300)
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["NumberOfAssignmentsPending"] == 0


# --------------------------------------------------------------------------- review


@local_only
def test_approving_twice_fails_with_the_status_message_clients_match(submitted: Any, mturk: Any) -> None:
    assignment = submitted()
    mturk.approve_assignment(AssignmentId=assignment.assignment_id, RequesterFeedback="thanks")
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.approve_assignment(AssignmentId=assignment.assignment_id)
    code, message, turk = error_of(excinfo)
    assert "This operation can be called with a status of: Submitted" in message
    assert STAMP.search(message)
    assert turk == "AWS.MechanicalTurk.InvalidAssignmentState"
    got = mturk.get_assignment(AssignmentId=assignment.assignment_id)["Assignment"]
    assert got["RequesterFeedback"] == "thanks" and got["AssignmentStatus"] == "Approved"


@local_only
def test_get_assignment_before_submission_names_the_reviewable_statuses(make_hit: Any, mturk: Any, market: Any, worker: Any) -> None:
    hit = make_hit()
    assignment = market.state.workers.accept(worker.worker_id, hit["HITId"])
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.get_assignment(AssignmentId=assignment.assignment_id)
    assert error_of(excinfo)[1].startswith("This operation can be called with a status of: Reviewable,Approved,Rejected")
    assert mturk.list_assignments_for_hit(HITId=hit["HITId"])["NumResults"] == 0


@local_only
def test_submitted_assignment_carries_answers_and_review_times(submitted: Any, mturk: Any) -> None:
    assignment = submitted(AutoApprovalDelayInSeconds=7200)
    got = mturk.get_assignment(AssignmentId=assignment.assignment_id)
    a = got["Assignment"]
    assert "<QuestionIdentifier>answer</QuestionIdentifier><FreeText>42</FreeText>" in a["Answer"]
    assert a["AutoApprovalTime"] == START + timedelta(hours=2)
    assert a["Deadline"] == START + timedelta(seconds=600)
    assert got["HIT"]["HITId"] == assignment.hit_id


@local_only
def test_rejection_can_be_overridden_within_30_days_only(submitted: Any, mturk: Any, clock: Any) -> None:
    early, late = submitted(), submitted()
    for a in (early, late):
        mturk.reject_assignment(AssignmentId=a.assignment_id, RequesterFeedback="no")
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.approve_assignment(AssignmentId=early.assignment_id)  # without OverrideRejection
    clock.advance(timedelta(days=29))
    mturk.approve_assignment(AssignmentId=early.assignment_id, OverrideRejection=True)
    assert mturk.get_assignment(AssignmentId=early.assignment_id)["Assignment"]["AssignmentStatus"] == "Approved"
    clock.advance(timedelta(days=2))
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.approve_assignment(AssignmentId=late.assignment_id, OverrideRejection=True)


@local_only
def test_rejecting_anything_but_submitted_work_fails(submitted: Any, mturk: Any) -> None:
    assignment = submitted()
    mturk.approve_assignment(AssignmentId=assignment.assignment_id)
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.reject_assignment(AssignmentId=assignment.assignment_id, RequesterFeedback="late change of mind")
    assert error_of(excinfo)[2] == "AWS.MechanicalTurk.InvalidAssignmentState"


# --------------------------------------------------------------------------- money


@local_only
@pytest.mark.parametrize(
    ("reward", "max_assignments", "masters", "charged"),
    [
        ("1.00", 1, False, "1.20"),    # 20%
        ("1.00", 10, False, "1.40"),   # +20% for 10 or more assignments
        ("1.00", 9, True, "1.25"),     # +5% Masters
        ("1.00", 10, True, "1.45"),
        ("0.01", 1, False, "0.02"),    # minimum fee one cent
        ("0.05", 1, False, "0.06"),
        ("2.33", 1, False, "2.80"),    # 0.466 rounds to 0.47
    ],
)
def test_approval_debits_reward_plus_commission(submitted: Any, mturk: Any, market: Any, worker: Any,
                                                reward: str, max_assignments: int, masters: bool, charged: str) -> None:
    if masters:
        market.state.workers.register(worker.worker_id, masters=True)
    reqs = [{"QualificationTypeId": MASTERS_SANDBOX, "Comparator": "Exists"}] if masters else None
    assignment = submitted(Reward=reward, MaxAssignments=max_assignments, QualificationRequirements=reqs)
    mturk.approve_assignment(AssignmentId=assignment.assignment_id)
    assert Decimal(mturk.get_account_balance()["AvailableBalance"]) == Decimal("10000.00") - Decimal(charged)


@local_only
def test_bonus_costs_twenty_percent_even_on_large_hits(submitted: Any, mturk: Any, worker: Any) -> None:
    assignment = submitted(MaxAssignments=20)
    mturk.send_bonus(WorkerId=worker.worker_id, AssignmentId=assignment.assignment_id, BonusAmount="2.50", Reason="great work")
    assert mturk.get_account_balance()["AvailableBalance"] == "9997.00"
    payments = mturk.list_bonus_payments(HITId=assignment.hit_id)["BonusPayments"]
    assert payments[0]["BonusAmount"] == "2.50" and payments[0]["WorkerId"] == worker.worker_id
    assert payments[0]["GrantTime"] == START


@local_only
def test_insufficient_funds_refuse_approval_and_bonus_without_charging(submitted: Any, mturk: Any, market: Any, worker: Any) -> None:
    assignment = submitted(Reward="5.00")
    with market.state.transaction() as tx:
        tx.run("UPDATE meta SET value = '5.50' WHERE key = 'balance'")
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.approve_assignment(AssignmentId=assignment.assignment_id)
    assert error_of(excinfo)[2] == "AWS.MechanicalTurk.InsufficientFunds"
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.send_bonus(WorkerId=worker.worker_id, AssignmentId=assignment.assignment_id, BonusAmount="5.00", Reason="x")
    assert mturk.get_account_balance()["AvailableBalance"] == "5.50"
    assert mturk.get_assignment(AssignmentId=assignment.assignment_id)["Assignment"]["AssignmentStatus"] == "Submitted"


@local_only
def test_creating_a_hit_the_balance_cannot_cover_is_refused(mturk: Any, market: Any, make_hit: Any) -> None:
    market.state.reset(balance=Decimal("11.99"))
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        make_hit(Reward="1.00", MaxAssignments=10)  # 10 x (1.00 + 0.40) = 14.00
    assert error_of(excinfo)[2] == "AWS.MechanicalTurk.InsufficientFunds"
    make_hit(Reward="1.00", MaxAssignments=9)  # 9 x 1.20 = 10.80


@local_only
def test_bonus_for_work_in_progress_or_for_another_worker_is_refused(make_hit: Any, mturk: Any, market: Any, worker: Any) -> None:
    hit = make_hit()
    assignment = market.state.workers.accept(worker.worker_id, hit["HITId"])
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.send_bonus(WorkerId=worker.worker_id, AssignmentId=assignment.assignment_id, BonusAmount="1.00", Reason="early")
    assert "does not exist" in error_of(excinfo)[1]
    market.state.workers.submit(assignment.assignment_id)
    other = market.state.workers.register()
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.send_bonus(WorkerId=other.worker_id, AssignmentId=assignment.assignment_id, BonusAmount="1.00", Reason="wrong person")
    assert mturk.get_account_balance()["AvailableBalance"] == "10000.00"


# --------------------------------------------------------------------------- qualifications


def test_qualification_type_names_are_unique(mturk: Any, token: Any) -> None:
    name = token()
    created = mturk.create_qualification_type(Name=name, Description="d", QualificationTypeStatus="Active")["QualificationType"]
    try:
        assert created["Name"] == name and created["QualificationTypeStatus"] == "Active"
        with pytest.raises(mturk.exceptions.RequestError) as excinfo:
            mturk.create_qualification_type(Name=name, Description="d", QualificationTypeStatus="Active")
        assert "already created a QualificationType with this name" in error_of(excinfo)[1]
    finally:
        if SANDBOX:
            mturk.delete_qualification_type(QualificationTypeId=created["QualificationTypeId"])


def test_qualification_type_with_a_test_cannot_be_auto_granted(mturk: Any, token: Any) -> None:
    with pytest.raises(ClientError):
        mturk.create_qualification_type(Name=token(), Description="d", QualificationTypeStatus="Active",
                                        Test="<QuestionForm/>", TestDurationInSeconds=60, AutoGranted=True)


@local_only
def test_granting_revoking_and_listing_workers_with_a_qualification(mturk: Any, market: Any) -> None:
    qtid = mturk.create_qualification_type(Name="done-before", Description="d", QualificationTypeStatus="Active")["QualificationType"]["QualificationTypeId"]
    workers = market.state.workers.seed(5)
    for i, w in enumerate(workers):
        mturk.associate_qualification_with_worker(QualificationTypeId=qtid, WorkerId=w.worker_id, IntegerValue=i, SendNotification=False)
    mturk.disassociate_qualification_from_worker(QualificationTypeId=qtid, WorkerId=workers[0].worker_id, Reason="reset")
    granted = list(mturk.get_paginator("list_workers_with_qualification_type").paginate(
        QualificationTypeId=qtid, PaginationConfig={"PageSize": 2}))
    ids = [q["WorkerId"] for page in granted for q in page["Qualifications"]]
    assert ids == [w.worker_id for w in workers[1:]]
    revoked = mturk.list_workers_with_qualification_type(QualificationTypeId=qtid, Status="Revoked")["Qualifications"]
    assert [q["WorkerId"] for q in revoked] == [workers[0].worker_id]
    with pytest.raises(ClientError) as excinfo:
        mturk.associate_qualification_with_worker(QualificationTypeId=qtid, WorkerId="ANOSUCHWORKER1")
    assert error_of(excinfo)[0] == "ParameterValidationError"


@local_only
def test_system_qualifications_decide_who_may_accept(make_hit: Any, market: Any) -> None:
    side = market.state.workers
    reqs = [
        {"QualificationTypeId": PERCENT_APPROVED, "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [95]},
        {"QualificationTypeId": LOCALE, "Comparator": "In", "LocaleValues": [{"Country": "US"}, {"Country": "CA"}]},
    ]
    hit = make_hit(MaxAssignments=5, QualificationRequirements=reqs)
    good = side.register(percent_approved=95, country="CA")
    sloppy = side.register(percent_approved=94, country="US")
    abroad = side.register(percent_approved=99, country="GB")
    side.accept(good.worker_id, hit["HITId"])
    for w in (sloppy, abroad):
        with pytest.raises(WorkerActionRefused) as excinfo:
            side.accept(w.worker_id, hit["HITId"])
        assert excinfo.value.code == "NotQualified"
    # Guarding only Accept leaves the HIT discoverable (model doc, ActionsGuarded).
    assert hit["HITId"] in {h.hit_id for h in side.assignable_hits(sloppy.worker_id)}


@local_only
def test_own_qualification_exists_does_not_exist_and_discover_guard(mturk: Any, make_hit: Any, market: Any) -> None:
    side = market.state.workers
    qtid = mturk.create_qualification_type(Name="took-part", Description="d", QualificationTypeStatus="Active")["QualificationType"]["QualificationTypeId"]
    veteran, newcomer = side.register(), side.register()
    mturk.associate_qualification_with_worker(QualificationTypeId=qtid, WorkerId=veteran.worker_id, IntegerValue=1)
    exclude = make_hit(QualificationRequirements=[{"QualificationTypeId": qtid, "Comparator": "DoesNotExist",
                                                   "ActionsGuarded": "DiscoverPreviewAndAccept"}])
    assert exclude["HITId"] not in {h.hit_id for h in side.assignable_hits(veteran.worker_id)}
    assert exclude["HITId"] in {h.hit_id for h in side.assignable_hits(newcomer.worker_id)}
    with pytest.raises(WorkerActionRefused) as excinfo:
        side.preview(veteran.worker_id, exclude["HITId"])
    assert excinfo.value.code == "NotQualified"
    follow_up = make_hit(MaxAssignments=2, QualificationRequirements=[{"QualificationTypeId": qtid, "Comparator": "Exists"}])
    side.accept(veteran.worker_id, follow_up["HITId"])
    with pytest.raises(WorkerActionRefused, match="does not meet qualification"):
        side.accept(newcomer.worker_id, follow_up["HITId"])


@local_only
def test_masters_hits_accept_only_masters(make_hit: Any, market: Any) -> None:
    side = market.state.workers
    hit = make_hit(MaxAssignments=2, QualificationRequirements=[{"QualificationTypeId": MASTERS_SANDBOX, "Comparator": "Exists"}])
    side.accept(side.register(masters=True).worker_id, hit["HITId"])
    with pytest.raises(WorkerActionRefused, match="does not meet qualification"):
        side.accept(side.register(masters=False).worker_id, hit["HITId"])


def test_requirement_on_an_unknown_qualification_type_is_refused(mturk: Any) -> None:
    with pytest.raises(ClientError):
        mturk.create_hit(Title="t", Description="d", Reward="1.00", AssignmentDurationInSeconds=600, LifetimeInSeconds=3600,
                         Question=external_question(URL),
                         QualificationRequirements=[{"QualificationTypeId": "3NOSUCHTYPEAAAAAAAAAAAAAAAAAAA", "Comparator": "Exists"}])


@local_only
def test_list_qualification_types_searches_own_types(mturk: Any) -> None:
    for name in ("alpha study", "beta study", "gamma"):
        mturk.create_qualification_type(Name=name, Description="d", QualificationTypeStatus="Active")
    found = mturk.list_qualification_types(MustBeRequestable=False, MustBeOwnedByCaller=True, Query="study")["QualificationTypes"]
    assert sorted(q["Name"] for q in found) == ["alpha study", "beta study"]
    everything = mturk.list_qualification_types(MustBeRequestable=False, MaxResults=100)["QualificationTypes"]
    assert any(q["QualificationTypeId"] == LOCALE and q["IsRequestable"] is False for q in everything)


@local_only
def test_notify_workers_reports_workers_it_cannot_mail(submitted: Any, mturk: Any, market: Any, worker: Any) -> None:
    assignment = submitted()
    mturk.approve_assignment(AssignmentId=assignment.assignment_id)
    stranger = market.state.workers.register()
    result = mturk.notify_workers(Subject="Follow-up", MessageText="Part 2 is up.", WorkerIds=[worker.worker_id, stranger.worker_id])
    failures = result["NotifyWorkersFailureStatuses"]
    assert [(f["WorkerId"], f["NotifyWorkersFailureCode"]) for f in failures] == [(stranger.worker_id, "HardFailure")]
    assert [n["worker_id"] for n in market.state.notifications()] == [worker.worker_id]


@local_only
def test_create_hit_type_reuses_identical_types_and_feeds_create_hit_with_hit_type(mturk: Any) -> None:
    spec = {"Title": "t", "Description": "d", "Reward": "0.50", "AssignmentDurationInSeconds": 600}
    first = mturk.create_hit_type(**spec)["HITTypeId"]
    assert mturk.create_hit_type(**spec)["HITTypeId"] == first
    assert mturk.create_hit_type(**{**spec, "Reward": "0.51"})["HITTypeId"] != first
    hit = mturk.create_hit_with_hit_type(HITTypeId=first, LifetimeInSeconds=600, Question=external_question(URL))["HIT"]
    assert (hit["HITTypeId"], hit["Reward"], hit["MaxAssignments"]) == (first, "0.50", 1)


@local_only
def test_qualification_score_follows_grants_and_revocations(mturk: Any, market: Any) -> None:
    qtid = mturk.create_qualification_type(Name="score", Description="d", QualificationTypeStatus="Active")["QualificationType"]["QualificationTypeId"]
    worker = market.state.workers.register()
    with pytest.raises(mturk.exceptions.RequestError, match="does not exist"):
        mturk.get_qualification_score(QualificationTypeId=qtid, WorkerId=worker.worker_id)
    mturk.associate_qualification_with_worker(QualificationTypeId=qtid, WorkerId=worker.worker_id, IntegerValue=7)
    score = mturk.get_qualification_score(QualificationTypeId=qtid, WorkerId=worker.worker_id)["Qualification"]
    assert (score["IntegerValue"], score["Status"], score["GrantTime"]) == (7, "Granted", START)
    mturk.disassociate_qualification_from_worker(QualificationTypeId=qtid, WorkerId=worker.worker_id)
    with pytest.raises(mturk.exceptions.RequestError, match="status of: Granted"):
        mturk.get_qualification_score(QualificationTypeId=qtid, WorkerId=worker.worker_id)
    mturk.delete_qualification_type(QualificationTypeId=qtid)
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.get_qualification_type(QualificationTypeId=qtid)


@local_only
def test_list_hits_for_qualification_type(mturk: Any, make_hit: Any) -> None:
    qtid = mturk.create_qualification_type(Name="gate", Description="d", QualificationTypeStatus="Active")["QualificationType"]["QualificationTypeId"]
    gated = make_hit(QualificationRequirements=[{"QualificationTypeId": qtid, "Comparator": "DoesNotExist"}])
    make_hit()
    listed = mturk.list_hits_for_qualification_type(QualificationTypeId=qtid, MaxResults=10)["HITs"]
    assert [h["HITId"] for h in listed] == [gated["HITId"]]


@local_only
def test_blocked_workers_cannot_find_or_accept_hits(mturk: Any, make_hit: Any, market: Any, worker: Any) -> None:
    hit = make_hit()
    mturk.create_worker_block(WorkerId=worker.worker_id, Reason="spam")
    assert mturk.list_worker_blocks()["WorkerBlocks"] == [{"WorkerId": worker.worker_id, "Reason": "spam"}]
    assert market.state.workers.assignable_hits(worker.worker_id) == []
    with pytest.raises(WorkerActionRefused) as excinfo:
        market.state.workers.accept(worker.worker_id, hit["HITId"])
    assert excinfo.value.code == "Blocked"
    mturk.delete_worker_block(WorkerId=worker.worker_id, Reason="ok now")
    market.state.workers.accept(worker.worker_id, hit["HITId"])
