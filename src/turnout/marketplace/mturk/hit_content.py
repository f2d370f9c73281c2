"""What an MTurk HIT is made of that no other marketplace shares: the ExternalQuestion
XML, MTurk's system qualification type ids, and MTurk's fee rules.

MTurk's commission is 20% of every reward and bonus (at least $0.01 each), 40% of the
reward for a HIT of 10 or more assignments, plus 5% when Masters are required. A HIT
created with fewer than 10 assignments can never grow to 10 or more
(InvalidMaximumAssignmentsIncrease).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

PERCENT_APPROVED = "000000000000000000L0"
NUMBER_APPROVED = "00000000000000000040"
LOCALE = "00000000000000000071"
# The Masters qualification differs between sandbox and live; the offline marketplace
# plays the sandbox.
MASTERS = {"sandbox": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6", "live": "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH",
           "local": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"}
EXTERNAL_QUESTION_NS = ("http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/"
                        "2006-07-14/ExternalQuestion.xsd")
FRAME_HEIGHT = 600
MAX_QUALIFICATIONS = 10  # CreateHIT accepts 0-10 QualificationRequirements
LARGE_HIT = 10  # 10+ assignments: +20% fee, and a <10 HIT can never grow to 10+
BONUS_FEE_RATE = Decimal("0.20")


def external_question(url: str) -> str:
    """psiTurk's ExternalQuestion, with the URL XML-escaped (psiTurk's was not, so an ``&``
    in ad_url made MTurk refuse the HIT with XMLParseError)."""
    return (f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_NS}"><ExternalURL>{escape(url)}</ExternalURL>'
            f"<FrameHeight>{FRAME_HEIGHT}</FrameHeight></ExternalQuestion>")


def requirements(environment: str, *, approve_requirement: int, number_hits_approved: int, masters: bool,
                 us_only: bool, require_ids: Sequence[str] = (), block_ids: Sequence[str] = (),
                 advanced: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """psiTurk's QualificationRequirements, in psiTurk's order: percent approved, number
    approved, Masters, Locale US, each required id Exists, each blocked id DoesNotExist,
    then the advanced requirements verbatim."""
    quals: list[dict[str, Any]] = [
        {"QualificationTypeId": PERCENT_APPROVED, "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [approve_requirement]},
        {"QualificationTypeId": NUMBER_APPROVED, "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [number_hits_approved]},
    ]
    if masters:
        quals.append({"QualificationTypeId": MASTERS[environment], "Comparator": "Exists"})
    if us_only:
        quals.append({"QualificationTypeId": LOCALE, "Comparator": "EqualTo", "LocaleValues": [{"Country": "US"}]})
    quals.extend({"QualificationTypeId": qid, "Comparator": "Exists"} for qid in require_ids)
    quals.extend({"QualificationTypeId": qid, "Comparator": "DoesNotExist"} for qid in block_ids)
    quals.extend(advanced)
    return quals


def requires_masters(qualifications: Sequence[dict[str, Any]] | str | None) -> bool:
    """Whether a HIT's requirements (the list, or as stored: JSON text) ask for Masters."""
    if isinstance(qualifications, str) or qualifications is None:
        return any(m in (qualifications or "") for m in MASTERS.values())
    return any(q.get("QualificationTypeId") in MASTERS.values() for q in qualifications)


def fee_rate(*, assignments: int, masters: bool) -> Decimal:
    """MTurk's commission on a reward: 20%, +20% for 10+ assignments, +5% for Masters."""
    return (Decimal("0.20") + (Decimal("0.20") if assignments >= LARGE_HIT else 0)
            + (Decimal("0.05") if masters else 0))
