"""Recruitment rules that need no marketplace: request building, money, error sorting, and
the ledger's error paths driven by botocore's Stubber (MTurk answers we cannot provoke
offline, such as a real 5xx or MTurk's own duplicate-token wording)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.stub import Stubber

from turnout.db.engine import Database
from turnout.db.migrate import upgrade
from turnout.errors import InvalidInput
from turnout.marketplace import make_client
from turnout.marketplace.mturk.errors import classify
from turnout.marketplace.port import FailureKind
from turnout.services import hits, payments
from turnout.services.recruitment import (
    MarketContext,
    parse_count,
    parse_hours,
    parse_money,
    request_token,
)

# psiTurk's tests/test_amt.py pins these defaults (items 1, 2 and 4 of its list).
PSITURK_STANDARD_QUALS = [
    {"QualificationTypeId": "000000000000000000L0", "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [95]},
    {"QualificationTypeId": "00000000000000000040", "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [0]},
    {"QualificationTypeId": "00000000000000000071", "Comparator": "EqualTo", "LocaleValues": [{"Country": "US"}]},
]


def test_default_qualifications_match_psiturk(make_settings: Any) -> None:
    assert hits.qualification_requirements(make_settings(), "sandbox") == PSITURK_STANDARD_QUALS


def test_qualification_order_and_mode_keys(make_settings: Any, project_dir: Path) -> None:
    (project_dir / "adv.json").write_text('[{"QualificationTypeId": "ADV", "Comparator": "Exists"}]')
    settings = make_settings(require_master_workers="true", require_quals_live="LIVEREQ", block_quals_live="B1, B2",
                             advanced_quals_path_live="adv.json", require_quals_sandbox="SBXREQ")
    quals = hits.qualification_requirements(settings, "live", require_ids=["CLI"], block_ids=["CLIB"])
    assert [q["QualificationTypeId"] for q in quals] == [
        "000000000000000000L0", "00000000000000000040", hits.MASTERS["live"], "00000000000000000071",
        "CLI", "LIVEREQ", "CLIB", "B1", "B2", "ADV"]
    sandbox = hits.qualification_requirements(settings, "sandbox")
    assert [q["QualificationTypeId"] for q in sandbox][2:] == [hits.MASTERS["sandbox"], "00000000000000000071",
                                                                "SBXREQ"]
    # The deprecated unsuffixed key overrides both suffixed ones (psiTurk's back-compat copy).
    config = project_dir / "config.txt"
    config.write_text(config.read_text().replace("[HIT Configuration]",
                                                 "[HIT Configuration]\nrequire_quals = OLD\nrequire_quals_live = X"))
    legacy = make_settings()
    assert [q["QualificationTypeId"] for q in hits.qualification_requirements(legacy, "live")][3:] == ["OLD"]
    assert [q["QualificationTypeId"] for q in hits.qualification_requirements(legacy, "local")][3:] == ["OLD"]


def test_too_many_qualifications_are_refused(make_settings: Any) -> None:
    with pytest.raises(InvalidInput, match="at most 10"):
        hits.qualification_requirements(make_settings(), "live", block_ids=[f"B{i}" for i in range(8)])


def test_external_question_escapes_the_url() -> None:
    xml = hits.external_question("https://x.org/pub?a=1&mode=live")
    assert "<ExternalURL>https://x.org/pub?a=1&amp;mode=live</ExternalURL>" in xml
    assert "<FrameHeight>600</FrameHeight>" in xml


def test_cost_estimate_uses_mturk_fees() -> None:
    assert hits.cost_estimate(9, Decimal("1.00")).as_dict()["total"] == "10.80"
    assert hits.cost_estimate(10, Decimal("1.00")).as_dict()["total"] == "14.00"
    assert hits.cost_estimate(1, Decimal("0.01")).as_dict()["fees"] == "0.01"  # minimum fee
    assert hits.cost_estimate(2, Decimal("1.00"), masters=True).as_dict()["fees"] == "0.50"


@pytest.mark.parametrize("value,expected", [("1.5", "1.50"), ("$2", "2.00"), (Decimal("0.10"), "0.10"), (3, "3.00")])
def test_parse_money_accepts(value: Any, expected: str) -> None:
    assert str(parse_money(value)) == expected


@pytest.mark.parametrize("value", ["0", "-1", "1.001", "x", "NaN", 0.5, None, True, "1e2", "1e999", "inf",
                                   "Infinity", "1E+2", "0x10", "1_000", "1000000000", Decimal("1e999")])
def test_parse_money_refuses(value: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_money(value)


def test_auto_amount_rounds_only_float_noise() -> None:
    assert payments.auto_amount(0.1 + 0.2) == Decimal("0.30")
    assert payments.auto_amount(0) is None and payments.auto_amount(None) is None
    with pytest.raises(InvalidInput):
        payments.auto_amount(0.125)
    for bad in (float("inf"), float("-inf"), float("nan"), 1e300, -0.5):
        with pytest.raises(InvalidInput):
            payments.auto_amount(bad)


@pytest.mark.parametrize("hours,seconds", [("1", 3600), ("0.5", 1800), (0.0084, 30), ("8760", 31_536_000)])
def test_parse_hours_accepts_mturk_durations(hours: Any, seconds: int) -> None:
    assert parse_hours(hours) == seconds


@pytest.mark.parametrize("hours", ["1e-9", "0", "-1", "inf", "nan", "0.008", "8761", float("inf"), "1e3", "", None])
def test_parse_hours_refuses_what_mturk_refuses(hours: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_hours(hours)


@pytest.mark.parametrize("count", ["0", "99999999999999999999", "-1", "1.5", "1e3", 0, True, 10**10])
def test_parse_count_refuses(count: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_count(count)


def test_request_tokens_are_deterministic_and_short() -> None:
    assert request_token("a", 1) == request_token("a", 1) != request_token("a", 2)
    assert len(request_token("x" * 500)) <= 64


def _client_error(code: str, message: str, status: int, turk: str | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message},
                                "ResponseMetadata": {"HTTPStatusCode": status}}
    if turk:
        response["TurkErrorCode"] = turk
    return ClientError(response, "SendBonus")


def test_classify_sorts_definite_from_unknown() -> None:
    assert classify(_client_error("ServiceFault", "boom", 500)).unknown
    assert classify(ReadTimeoutError(endpoint_url="https://x")).unknown
    assert classify(ConnectTimeoutError(endpoint_url="https://x")).unknown
    assert not classify(_client_error("RequestError", "no", 400)).unknown
    assert not classify(_client_error("ThrottlingException", "Rate exceeded", 400)).unknown
    assert classify(ValueError("a bug")) is None


@pytest.mark.parametrize("message,turk", [
    ("The request with UniqueRequestToken t has already been processed", None),
    ("Duplicate request (12345)", "AWS.MechanicalTurk.DuplicateRequest"),
    ("The HIT with UniqueRequestToken t already exists: HITId 3ABC", "AWS.MechanicalTurk.HitAlreadyExists"),
])
def test_duplicate_token_answers_count_as_success(message: str, turk: str | None) -> None:
    assert classify(_client_error("RequestError", message, 400, turk)).kind == FailureKind.ALREADY_DONE


def test_insufficient_funds_is_not_a_duplicate() -> None:
    failure = classify(_client_error("RequestError", "This Requester has insufficient funds in their account",
                                     400, "AWS.MechanicalTurk.InsufficientFunds"))
    assert failure.kind != FailureKind.ALREADY_DONE


@pytest.fixture
def stubbed(make_settings: Any, sqlite_url: str, clock: Any) -> Any:
    settings = make_settings(sqlite_url)
    db = Database(settings.database_url, settings.tables)
    upgrade(db)
    client = make_client("sandbox", aws_access_key_id="x", aws_secret_access_key="y", max_attempts=1)
    ctx = MarketContext(db=db, settings=settings, clock=clock, mode="sandbox", client=client, actor="unit")
    with Stubber(client) as stub:
        yield ctx, stub
    db.dispose()


def _assignment(stub: Any, status: str = "Submitted") -> None:
    stub.add_response("get_assignment", {"Assignment": {"AssignmentId": "A1", "WorkerId": "AW1", "HITId": "H1",
                                                        "AssignmentStatus": status}}, {"AssignmentId": "A1"})


def test_approve_refused_as_not_submitted_but_approved_counts_as_done(stubbed: Any) -> None:
    ctx, stub = stubbed
    _assignment(stub)
    stub.add_client_error("approve_assignment", "RequestError",
                          "This operation can be called with a status of: Submitted (1)", 400,
                          expected_params={"AssignmentId": "A1"})
    stub.add_response("get_assignment", {"Assignment": {"AssignmentId": "A1", "AssignmentStatus": "Approved"}},
                      {"AssignmentId": "A1"})
    result = payments.approve(ctx, ["A1"], allow_other_projects=True)
    assert [i.outcome for i in result.items] == ["ok"]
    assert result.items[0].message.startswith("approved (the assignment was already Approved")
    stub.assert_no_pending_responses()


def test_approve_of_a_rejected_assignment_fails_with_the_reason(stubbed: Any) -> None:
    ctx, stub = stubbed
    _assignment(stub)
    stub.add_client_error("approve_assignment", "RequestError",
                          "This operation can be called with a status of: Submitted (1)", 400)
    stub.add_response("get_assignment", {"Assignment": {"AssignmentId": "A1", "AssignmentStatus": "Rejected"}})
    (item,) = payments.approve(ctx, ["A1"], allow_other_projects=True).items
    assert item.outcome == "failed" and "the assignment is Rejected" in item.message


def test_bonus_unknown_then_duplicate_token_is_paid_once(stubbed: Any) -> None:
    ctx, stub = stubbed
    _assignment(stub, "Approved")
    stub.add_response("list_bonus_payments", {"BonusPayments": [], "NumResults": 0})
    stub.add_client_error("send_bonus", "ServiceFault", "Internal error", 503)
    (first,) = payments.bonus(ctx, ["A1"], amount="1.00", reason="r", allow_other_projects=True).items
    assert first.outcome == "unknown"
    (entry,) = payments.ledger_entries(ctx, kind="bonus")
    token = None
    with ctx.db.begin() as session:
        token = session.get(ctx.db.models.LedgerEntry, entry["id"]).request_token
    stub.add_response("list_bonus_payments", {"BonusPayments": [], "NumResults": 0})  # checked first
    stub.add_client_error("send_bonus", "RequestError", "The request with UniqueRequestToken has already been "
                          "processed", 400, expected_params={"WorkerId": "AW1", "AssignmentId": "A1",
                                                             "BonusAmount": "1.00", "Reason": "r",
                                                             "UniqueRequestToken": token})
    (settled,) = payments.settle_all(ctx).items
    assert settled.outcome == "ok" and "duplicate" in settled.message
    stub.assert_no_pending_responses()
