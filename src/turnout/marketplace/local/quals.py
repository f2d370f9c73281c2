"""Which workers a qualification requirement lets through, and for which actions.

System qualification type IDs (MTurk documentation; the Masters IDs differ between
sandbox and live, psiTurk#505):
  000000000000000000L0  Worker_PercentAssignmentsApproved (integer 0-100)
  00000000000000000040  Worker_NumberHITsApproved (integer)
  00000000000000000071  Worker_Locale (Country, optional Subdivision)
  00000000000000000060  Worker_Adult (integer 1 when the worker is an adult)
  2ARFPLSP75KLA8M8DH1HTEQVJT3SY6  Masters (sandbox)
  2F1QJWKUDD8XADTFD2Q0G6UTO95ALH  Masters (live)
The offline marketplace accepts both Masters IDs, so a study configured for either
environment can rehearse offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ParameterValidationError
from .records import Worker

PERCENT_APPROVED = "000000000000000000L0"
NUMBER_APPROVED = "00000000000000000040"
LOCALE = "00000000000000000071"
ADULT = "00000000000000000060"
MASTERS_SANDBOX = "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"
MASTERS_LIVE = "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"
MASTERS_IDS = frozenset({MASTERS_SANDBOX, MASTERS_LIVE})

SYSTEM_TYPES: dict[str, tuple[str, str]] = {
    PERCENT_APPROVED: ("Worker_PercentAssignmentsApproved", "Percentage of assignments the worker has submitted that were approved."),
    NUMBER_APPROVED: ("Worker_NumberHITsApproved", "Total number of HITs submitted by the worker that were approved."),
    LOCALE: ("Worker_Locale", "The location of the worker, as specified in the worker's mailing address."),
    ADULT: ("Worker_Adult", "The worker has agreed to work on content that may be offensive."),
    MASTERS_SANDBOX: ("Masters", "Masters qualification (sandbox ID)."),
    MASTERS_LIVE: ("Masters", "Masters qualification (live ID)."),
}

NUMERIC_COMPARATORS = {
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
}

# Action levels guarded by a requirement. model doc (QualificationRequirement.ActionsGuarded):
# Accept (default), PreviewAndAccept, DiscoverPreviewAndAccept; the deprecated
# RequiredToPreview=true means PreviewAndAccept.
DISCOVER, PREVIEW, ACCEPT = "discover", "preview", "accept"
_GUARDS = {
    "Accept": {ACCEPT},
    "PreviewAndAccept": {PREVIEW, ACCEPT},
    "DiscoverPreviewAndAccept": {DISCOVER, PREVIEW, ACCEPT},
}


@dataclass(frozen=True)
class HeldValue:
    """A worker's value for one qualification type (None: the worker lacks it)."""

    integer: int | None = None
    country: str | None = None
    subdivision: str | None = None


def requires_masters(requirements: list[Mapping[str, Any]]) -> bool:
    """Masters fee applies when a requirement demands Masters (GUESS: any comparator but DoesNotExist)."""
    return any(r["QualificationTypeId"] in MASTERS_IDS and r["Comparator"] != "DoesNotExist" for r in requirements)


def check_requirement(req: Mapping[str, Any], known_type: bool) -> None:
    """Refuse requirements MTurk could never evaluate. Wording: GUESS, in MTurk's style."""
    qtid = req["QualificationTypeId"]
    comparator = req["Comparator"]
    ints = req.get("IntegerValues") or []
    locales = req.get("LocaleValues") or []

    def bad(why: str) -> ParameterValidationError:
        return ParameterValidationError(f"QualificationRequirement for {qtid} with Comparator {comparator} is invalid: {why}")

    if not known_type:
        return  # the caller raises "does not exist" for unknown types
    if ints and locales:
        raise bad("specify IntegerValues or LocaleValues, not both.")
    if qtid == LOCALE:
        if comparator in NUMERIC_COMPARATORS:
            raise bad("the locale qualification supports EqualTo, NotEqualTo, In, NotIn, Exists and DoesNotExist.")
        if ints:
            raise bad("the locale qualification takes LocaleValues.")
    elif locales:
        raise bad("LocaleValues are only valid for the locale qualification 00000000000000000071.")
    if comparator in ("Exists", "DoesNotExist"):
        return  # GUESS: values given with Exists are ignored, not refused
    if comparator in NUMERIC_COMPARATORS and len(ints) != 1:
        raise bad("exactly one IntegerValue is required.")
    if comparator in ("EqualTo", "NotEqualTo") and len(ints) + len(locales) != 1:
        raise bad("exactly one IntegerValue or LocaleValue is required.")
    if comparator in ("In", "NotIn") and not (ints or locales):
        raise bad("at least one IntegerValue or LocaleValue is required.")


def guarded_actions(req: Mapping[str, Any]) -> set[str]:
    if "ActionsGuarded" in req:
        return _GUARDS[req["ActionsGuarded"]]
    if req.get("RequiredToPreview"):
        return _GUARDS["PreviewAndAccept"]
    return _GUARDS["Accept"]


def held_value(worker: Worker, qtid: str, custom: Mapping[str, int | None]) -> HeldValue | None:
    """The worker's value for ``qtid``; ``custom`` maps the requester's granted types to values."""
    if qtid == PERCENT_APPROVED:
        return HeldValue(integer=worker.percent_approved)
    if qtid == NUMBER_APPROVED:
        return HeldValue(integer=worker.number_approved)
    if qtid == LOCALE:
        return HeldValue(country=worker.country, subdivision=worker.subdivision)
    if qtid == ADULT:
        return HeldValue(integer=1) if worker.adult else None
    if qtid in MASTERS_IDS:
        return HeldValue(integer=1) if worker.masters else None
    if qtid in custom:
        return HeldValue(integer=custom[qtid])
    return None


def _locale_matches(value: HeldValue, locale: Mapping[str, str]) -> bool:
    if value.country != locale["Country"]:
        return False
    return "Subdivision" not in locale or value.subdivision == locale["Subdivision"]


def requirement_met(req: Mapping[str, Any], value: HeldValue | None) -> bool:
    """Does a worker holding ``value`` satisfy ``req``?

    A worker who lacks the qualification fails every comparator except DoesNotExist
    (GUESS for NotEqualTo and NotIn: MTurk documents "must have the qualification" only
    loosely).
    """
    comparator = req["Comparator"]
    if comparator == "DoesNotExist":
        return value is None
    if value is None:
        return False
    if comparator == "Exists":
        return True
    ints = req.get("IntegerValues") or []
    locales = req.get("LocaleValues") or []
    if locales:
        hit = any(_locale_matches(value, loc) for loc in locales)
        return hit if comparator in ("EqualTo", "In") else not hit
    held = value.integer
    if held is None:
        return False  # GUESS: a valueless grant never satisfies a numeric comparison
    if comparator in NUMERIC_COMPARATORS:
        return NUMERIC_COMPARATORS[comparator](held, ints[0])
    if comparator in ("EqualTo", "In"):
        return held in ints
    if comparator in ("NotEqualTo", "NotIn"):
        return held not in ints
    return False  # pragma: no cover - enum checked by validation


def allowed(requirements: list[Mapping[str, Any]], worker: Worker, custom: Mapping[str, int | None], action: str) -> tuple[bool, str | None]:
    """Whether ``worker`` may perform ``action`` (discover/preview/accept); else the failing type."""
    for req in requirements:
        if action not in guarded_actions(req):
            continue
        if not requirement_met(req, held_value(worker, req["QualificationTypeId"], custom)):
            return False, req["QualificationTypeId"]
    return True, None
