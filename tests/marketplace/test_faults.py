"""Fault injection: the failures a payments ledger must survive without paying twice."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from turnout.marketplace import describe_client_error, make_client
from turnout.marketplace.local import ThreadedMarketplace

pytestmark = pytest.mark.local_only


def test_service_fault_is_a_500_and_changes_nothing(market: ThreadedMarketplace, mturk: Any, make_hit: Any) -> None:
    market.state.add_fault("CreateHIT", "service_fault")
    with pytest.raises(mturk.exceptions.ServiceFault) as excinfo:
        make_hit()
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert mturk.list_hits()["NumResults"] == 0
    make_hit()  # the fault was used up
    assert mturk.list_hits()["NumResults"] == 1


def test_throttling_is_a_400_throttling_exception(market: ThreadedMarketplace, mturk: Any) -> None:
    market.state.add_fault("ListHITs", "throttle")
    with pytest.raises(ClientError) as excinfo:
        mturk.list_hits()
    assert excinfo.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_faults_hit_only_their_operation_and_the_wildcard_hits_any(market: ThreadedMarketplace, mturk: Any) -> None:
    market.state.add_fault("SendBonus", "service_fault")
    mturk.get_account_balance()
    assert market.state.pending_faults() == [{"operation": "SendBonus", "kind": "service_fault", "remaining": 1}]
    market.state.clear_faults()
    market.state.add_fault("*", "throttle", count=2)
    for call in (mturk.get_account_balance, mturk.list_hits):
        with pytest.raises(ClientError):
            call()
    mturk.get_account_balance()


def test_botocore_retries_service_faults_through(market: ThreadedMarketplace) -> None:
    market.state.add_fault("GetAccountBalance", "service_fault", count=1)
    client = make_client("local", endpoint_url=market.endpoint_url, store=market.store_path, max_attempts=2)
    response = client.get_account_balance()
    assert response["AvailableBalance"] == "10000.00"
    assert response["ResponseMetadata"]["RetryAttempts"] == 1


def test_dropped_create_hit_response_then_retry_with_token_finds_the_hit(market: ThreadedMarketplace, mturk: Any,
                                                                         make_hit: Any, token: Any) -> None:
    tok = token()
    market.state.add_fault("CreateHIT", "drop_response")
    with pytest.raises(mturk.exceptions.ServiceFault):
        make_hit(UniqueRequestToken=tok)
    hits = mturk.list_hits()["HITs"]
    assert len(hits) == 1  # the marketplace committed it
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        make_hit(UniqueRequestToken=tok)
    assert excinfo.value.response["TurkErrorCode"] == "AWS.MechanicalTurk.HitAlreadyExists"
    assert hits[0]["HITId"] in excinfo.value.response["Error"]["Message"]
    assert mturk.list_hits()["NumResults"] == 1


def test_dropped_bonus_response_retried_by_botocore_pays_once(market: ThreadedMarketplace, submitted: Any, worker: Any, token: Any) -> None:
    """The ledger scenario: MTurk paid, the caller saw a 500, botocore retried with the same token."""
    assignment = submitted()
    market.state.add_fault("SendBonus", "drop_response")
    client = make_client("local", endpoint_url=market.endpoint_url, store=market.store_path, max_attempts=2)
    with pytest.raises(client.exceptions.RequestError) as excinfo:
        client.send_bonus(WorkerId=worker.worker_id, AssignmentId=assignment.assignment_id, BonusAmount="1.00",
                          Reason="bonus", UniqueRequestToken=token())
    assert "already been processed" in describe_client_error(excinfo.value)
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    payments = client.list_bonus_payments(AssignmentId=assignment.assignment_id)["BonusPayments"]
    assert len(payments) == 1
    assert market.state.balance() == Decimal("10000.00") - Decimal("1.20")


def test_dropped_approval_response_retried_fails_as_already_approved_and_pays_once(market: ThreadedMarketplace, mturk: Any,
                                                                                   submitted: Any) -> None:
    assignment = submitted()
    market.state.add_fault("ApproveAssignment", "drop_response")
    with pytest.raises(mturk.exceptions.ServiceFault):
        mturk.approve_assignment(AssignmentId=assignment.assignment_id)
    with pytest.raises(mturk.exceptions.RequestError, match="status of: Submitted"):
        mturk.approve_assignment(AssignmentId=assignment.assignment_id)
    assert mturk.get_account_balance()["AvailableBalance"] == "9998.80"
    assert [t.kind for t in market.state.transactions()] == ["reward"]


def test_bad_fault_specs_are_refused(market: ThreadedMarketplace) -> None:
    with pytest.raises(ValueError, match="kind"):
        market.state.add_fault("SendBonus", "explode")
    with pytest.raises(ValueError, match="operation"):
        market.state.add_fault("SendBitcoin", "throttle")
    with pytest.raises(ValueError):
        market.state.add_fault("SendBonus", "throttle", count=0)
