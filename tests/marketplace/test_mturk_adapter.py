"""The MTurk adapter sorts MTurk's answers into the port's failure kinds. Error paths only,
driven by botocore's Stubber: MTurk's own wording and 5xx cannot be provoked offline."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import Stubber

from turnout.marketplace import make_client
from turnout.marketplace.mturk import MTurkMarketplace
from turnout.marketplace.port import FailureKind, MarketError


@pytest.fixture
def stubbed() -> Any:
    client = make_client("sandbox", aws_access_key_id="x", aws_secret_access_key="y", max_attempts=1)
    with Stubber(client) as stub:
        yield MTurkMarketplace(client, "sandbox"), stub
        stub.assert_no_pending_responses()


def _failure(call: Any) -> Any:
    with pytest.raises(MarketError) as excinfo:
        call()
    return excinfo.value


@pytest.mark.parametrize("operation,code,message,status,turk,kind", [
    ("get_assignment", "RequestError", "Assignment A1 does not exist. (1)", 400,
     "AWS.MechanicalTurk.AssignmentDoesNotExist", FailureKind.NOT_FOUND),
    ("approve_assignment", "RequestError", "This operation can be called with a status of: Submitted (1)", 400,
     None, FailureKind.WRONG_STATE),
    ("send_bonus", "RequestError", "The request with UniqueRequestToken t has already been processed", 400,
     None, FailureKind.ALREADY_DONE),
    ("send_bonus", "RequestError", "Duplicate request (12345)", 400, "AWS.MechanicalTurk.DuplicateRequest",
     FailureKind.ALREADY_DONE),
    ("send_bonus", "ThrottlingException", "Rate exceeded", 400, None, FailureKind.THROTTLED),
    ("send_bonus", "ServiceFault", "boom", 500, None, FailureKind.UNKNOWN_OUTCOME),
    ("send_bonus", "UnrecognizedClientException", "The security token included in the request is invalid", 400,
     None, FailureKind.AUTH),
    ("send_bonus", "RequestError", "This Requester has insufficient funds in their account", 400,
     "AWS.MechanicalTurk.InsufficientFunds", FailureKind.REFUSED),
])
def test_mturk_errors_become_failure_kinds(stubbed: Any, operation: str, code: str, message: str, status: int,
                                           turk: str | None, kind: str) -> None:
    market, stub = stubbed
    response_meta = {"TurkErrorCode": turk} if turk else None
    stub.add_client_error(operation, code, message, status, modeled_fields=response_meta)
    calls = {"get_assignment": lambda: market.get_assignment("A1"),
             "approve_assignment": lambda: market.approve("A1"),
             "send_bonus": lambda: market.send_bonus("W1", "A1", "1.00", "thanks", token="t")}
    error = _failure(calls[operation])
    assert error.failure.kind == kind
    assert error.failure.code == code and error.failure.message == message and error.failure.detail == turk
    assert error.failure.unknown is (kind == FailureKind.UNKNOWN_OUTCOME)
    assert error.description.startswith("MTurk ") and message in error.description


def test_invalid_parameters_are_refused_before_sending() -> None:
    # botocore validates parameters before anything is sent (no network, no stub needed).
    market = MTurkMarketplace(make_client("sandbox", aws_access_key_id="x", aws_secret_access_key="y"), "sandbox")
    error = _failure(lambda: market.send_bonus("W1", "A1", 1.0, "thanks", token="t"))  # type: ignore[arg-type]
    assert error.failure.kind == FailureKind.INVALID and "not sent" in error.failure.message


def test_a_duplicate_create_answers_with_the_first_hits_id(stubbed: Any) -> None:
    market, stub = stubbed
    stub.add_client_error("create_hit", "RequestError",
                          "The HIT with UniqueRequestToken t already exists: HITId 3ABCDEFGHIJKLMNOPQRSTU.", 400,
                          modeled_fields={"TurkErrorCode": "AWS.MechanicalTurk.HitAlreadyExists"})
    request = type("R", (), {"max_assignments": 1, "lifetime_seconds": 60, "duration_seconds": 60,
                             "reward": Decimal("0.10"), "title": "t", "keywords": "", "description": "d",
                             "question": "<q/>", "qualifications": [], "annotation": "a"})()
    assert market.post_hit(request, token="t") == "3ABCDEFGHIJKLMNOPQRSTU"


def test_mturk_fee_rules_live_in_the_adapter() -> None:
    market = MTurkMarketplace(None, "live")
    assert market.fee_rate(assignments=9) == Decimal("0.20")
    assert market.fee_rate(assignments=10) == Decimal("0.40")
    assert market.fee_rate(assignments=1, qualifications='[{"QualificationTypeId": '
                                                         '"2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"}]') == Decimal("0.25")
    assert market.bonus_fee_rate() == Decimal("0.20")
