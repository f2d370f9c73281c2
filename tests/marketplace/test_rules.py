"""Pure rules, table-driven: HIT status derivation, commission, qualification comparators,
pagination tokens, request and response validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from turnout.marketplace.local import errors, money, pagination, quals
from turnout.marketplace.local.records import Worker
from turnout.marketplace.local.state import derive_hit_status, parse_question
from turnout.marketplace.local.validation import OutputDrift, validate_input, validate_output


@pytest.mark.parametrize(
    ("counts", "expired", "expected"),
    [
        # (max, accepted, submitted, approved, rejected, previewing)
        ((3, 0, 0, 0, 0, 0), False, ("Assignable", 0, 3, 0)),
        ((3, 1, 0, 0, 0, 1), False, ("Assignable", 2, 1, 0)),
        ((1, 0, 0, 0, 0, 1), False, ("Unassignable", 1, 0, 0)),   # a preview fills the counters
        ((2, 1, 1, 0, 0, 0), False, ("Unassignable", 1, 0, 0)),
        ((2, 0, 1, 1, 0, 0), False, ("Reviewable", 0, 0, 1)),
        ((5, 1, 0, 0, 0, 0), True, ("Unassignable", 1, 4, 0)),    # expired, someone still working
        ((5, 0, 0, 1, 1, 3), True, ("Reviewable", 0, 3, 2)),      # previews stop counting at expiry
        ((1, 0, 0, 0, 0, 0), True, ("Reviewable", 0, 1, 0)),
    ],
)
def test_hit_status_is_derived_from_counters_and_time(counts: tuple[int, ...], expired: bool, expected: tuple[Any, ...]) -> None:
    max_a, accepted, submitted, approved, rejected, previewing = counts
    assert derive_hit_status(max_assignments=max_a, accepted=accepted, submitted=submitted, approved=approved,
                             rejected=rejected, previewing=previewing, expired=expired, reviewing=False) == expected


def test_reviewing_flag_turns_reviewable_into_reviewing_only() -> None:
    kw = {"max_assignments": 1, "accepted": 0, "submitted": 0, "approved": 1, "rejected": 0, "previewing": 0, "reviewing": True}
    assert derive_hit_status(**kw, expired=True)[0] == "Reviewing"
    assert derive_hit_status(**{**kw, "approved": 0}, expired=False)[0] == "Assignable"


@pytest.mark.parametrize(
    ("amount", "rate", "fee"),
    [("1.00", "0.20", "0.20"), ("0.01", "0.20", "0.01"), ("0.04", "0.20", "0.01"), ("0.10", "0.40", "0.04"),
     ("2.33", "0.20", "0.47"), ("0.00", "0.20", "0.00"), ("123.45", "0.45", "55.55")],
)
def test_commission_is_rounded_to_the_cent_with_a_one_cent_minimum(amount: str, rate: str, fee: str) -> None:
    assert money.commission(Decimal(amount), Decimal(rate)) == Decimal(fee)


def test_money_strings_keep_two_decimals() -> None:
    assert money.fmt(money.parse("5")) == "5.00"
    assert money.fmt(money.parse("101.4")) == "101.40"
    assert money.reward_fee_rate(9, False) == Decimal("0.20")
    assert money.reward_fee_rate(10, True) == Decimal("0.45")


US_CA = Worker("A1", country="US", subdivision="CA")
ANY = Worker("A2", country="DE", percent_approved=97, number_approved=50)


@pytest.mark.parametrize(
    ("req", "worker", "met"),
    [
        ({"QualificationTypeId": quals.LOCALE, "Comparator": "EqualTo", "LocaleValues": [{"Country": "US"}]}, US_CA, True),
        ({"QualificationTypeId": quals.LOCALE, "Comparator": "EqualTo", "LocaleValues": [{"Country": "US", "Subdivision": "NY"}]}, US_CA, False),
        ({"QualificationTypeId": quals.LOCALE, "Comparator": "NotIn", "LocaleValues": [{"Country": "US"}, {"Country": "CA"}]}, ANY, True),
        ({"QualificationTypeId": quals.LOCALE, "Comparator": "NotEqualTo", "LocaleValues": [{"Country": "DE"}]}, ANY, False),
        ({"QualificationTypeId": quals.PERCENT_APPROVED, "Comparator": "GreaterThan", "IntegerValues": [97]}, ANY, False),
        ({"QualificationTypeId": quals.PERCENT_APPROVED, "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [97]}, ANY, True),
        ({"QualificationTypeId": quals.NUMBER_APPROVED, "Comparator": "LessThan", "IntegerValues": [51]}, ANY, True),
        ({"QualificationTypeId": quals.NUMBER_APPROVED, "Comparator": "In", "IntegerValues": [1, 50]}, ANY, True),
        ({"QualificationTypeId": quals.MASTERS_LIVE, "Comparator": "Exists"}, ANY, False),
        ({"QualificationTypeId": quals.MASTERS_LIVE, "Comparator": "DoesNotExist"}, ANY, True),
        ({"QualificationTypeId": quals.ADULT, "Comparator": "EqualTo", "IntegerValues": [1]}, ANY, True),
        ({"QualificationTypeId": "3OWN", "Comparator": "NotEqualTo", "IntegerValues": [1]}, ANY, False),  # lacks it
    ],
)
def test_requirement_comparators(req: dict[str, Any], worker: Worker, met: bool) -> None:
    assert quals.requirement_met(req, quals.held_value(worker, req["QualificationTypeId"], {})) is met


def test_actions_guarded_defaults_to_accept_and_required_to_preview_means_preview() -> None:
    base = {"QualificationTypeId": quals.ADULT, "Comparator": "Exists"}
    assert quals.guarded_actions(base) == {quals.ACCEPT}
    assert quals.guarded_actions({**base, "RequiredToPreview": True}) == {quals.PREVIEW, quals.ACCEPT}
    assert quals.guarded_actions({**base, "ActionsGuarded": "DiscoverPreviewAndAccept"}) == {quals.DISCOVER, quals.PREVIEW, quals.ACCEPT}


@pytest.mark.parametrize(
    "req",
    [
        {"QualificationTypeId": quals.LOCALE, "Comparator": "GreaterThan", "LocaleValues": [{"Country": "US"}]},
        {"QualificationTypeId": quals.PERCENT_APPROVED, "Comparator": "GreaterThan", "IntegerValues": [1, 2]},
        {"QualificationTypeId": quals.PERCENT_APPROVED, "Comparator": "EqualTo", "LocaleValues": [{"Country": "US"}]},
        {"QualificationTypeId": quals.PERCENT_APPROVED, "Comparator": "In"},
    ],
)
def test_requirements_that_cannot_be_evaluated_are_refused(req: dict[str, Any]) -> None:
    with pytest.raises(errors.ParameterValidationError):
        quals.check_requirement(req, known_type=True)


def test_next_tokens_are_bound_to_their_arguments() -> None:
    token = pagination.encode("ListHITs", {"a": 1}, [42])
    assert len(token) <= 255
    assert pagination.decode(token, "ListHITs", {"a": 1}) == [42]
    for op, filters, bad in [("ListHITs", {"a": 2}, token), ("ListBonusPayments", {"a": 1}, token), ("ListHITs", {"a": 1}, "garbage!")]:
        with pytest.raises(errors.ParameterValidationError):
            pagination.decode(bad, op, filters)


def test_question_documents_are_checked() -> None:
    ns = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
    doc = f'<ExternalQuestion xmlns="{ns}"><ExternalURL>https://x.org/a?b=1&amp;c=2</ExternalURL><FrameHeight>0</FrameHeight></ExternalQuestion>'
    assert parse_question(doc, allow_http=False) == "https://x.org/a?b=1&c=2"
    assert parse_question("<HTMLQuestion/>", allow_http=False) is None
    with pytest.raises(errors.RequestError):
        parse_question("<Survey/>", allow_http=True)
    with pytest.raises(errors.ParameterValidationError):
        parse_question(doc.replace("https://x.org", "http://localhost:5000"), allow_http=False)
    assert parse_question(doc.replace("https://x.org", "http://localhost:5000"), allow_http=True).startswith("http://localhost")


def test_validate_input_reports_every_violation_with_coral_paths() -> None:
    with pytest.raises(errors.ValidationException) as excinfo:
        validate_input("CreateHIT", {"Title": "t", "Description": "d", "Reward": "1.001", "AssignmentDurationInSeconds": 60,
                                     "QualificationRequirements": [{"QualificationTypeId": "x", "Comparator": "Exists",
                                                                    "LocaleValues": [{"Country": "USA"}]}]})
    message = excinfo.value.message
    assert message.startswith("3 validation errors detected: ")
    assert "Value null at 'lifetimeInSeconds'" in message
    assert "Value '1.001' at 'reward'" in message
    assert "Value 'USA' at 'qualificationRequirements.1.member.localeValues.1.member.country' failed to satisfy constraint: " \
           "Member must have length less than or equal to 2" in message


@pytest.mark.parametrize(
    ("operation", "payload"),
    [
        ("GetAccountBalance", {"AvailableBalance": 5}),
        ("GetAccountBalance", {"AvailableBalance": "10000.001"}),
        ("GetAccountBalance", {"AvailableBalance": "1.00", "Currency": "USD"}),
        ("GetHIT", {"HIT": {"HITId": "3A", "HITStatus": "Expired"}}),
        ("GetHIT", {"HIT": {"HITId": "3a-lowercase"}}),
        ("ListHITs", {"NumResults": "1", "HITs": []}),
    ],
)
def test_validate_output_catches_drift(operation: str, payload: dict[str, Any]) -> None:
    with pytest.raises(OutputDrift):
        validate_output(operation, payload)


def test_validate_output_accepts_model_shaped_payloads() -> None:
    validate_output("GetAccountBalance", {"AvailableBalance": "10000.00", "OnHoldBalance": "0.00"})
    validate_output("DeleteHIT", {})
    validate_output("ListHITs", {"NumResults": 0, "HITs": [], "NextToken": "abc"})
