"""Errors the offline marketplace raises, and the wire shape each one takes.

The state and the operations raise these; only ``protocol.py`` turns them into HTTP
responses (moto's ``exceptions.py`` idea). Keeping the wire details here means a rule in
``state.py`` reads as ``raise not_found_hit(hit_id)``, not as JSON plumbing.

Shapes, and where each comes from:

* ``RequestError`` / ``ServiceFault``: the two exceptions botocore's model declares for
  MTurk (members ``Message`` and ``TurkErrorCode``). A real body, observed in
  NRGI/resourcecontracts.org#1384::

      {"__type":"RequestError",
       "Message":"This operation can be called with a status of: Submitted (1624047673908)",
       "TurkErrorCode":"AWS.MechanicalTurk.InvalidAssignmentState"}   (HTTP 400)

* ``ValidationException``: what MTurk answers when a request breaks the service model
  (required member, pattern, ...), in AWS's "coral" wording and *without* the millisecond
  stamp. Observed: boto/boto3#1222, #1223 (missing member) and Dallinger#1052 (pattern).
* ``ParameterValidationError``: a semantic "this value is not valid for parameter X"
  error, observed as the error code in aws/aws-sdk-java#2055 and boto/boto3#2355, with
  the millisecond stamp. botocore does not model it, so callers see it only as a generic
  ``ClientError`` with ``Error.Code == "ParameterValidationError"``.
* ``SerializationException``: a body that is not JSON or has wrongly typed members.
  GUESS: the AWS JSON protocol's usual code; MTurk-specific behaviour not verified.
* ``ThrottlingException``: "Rate exceeded" on HTTP 400 (allenai/amti PR #12; botocore
  retries it in standard mode).
"""

from __future__ import annotations

from typing import Any

# TurkErrorCodes used by the marketplace. Source noted beside each.
HIT_DOES_NOT_EXIST = "AWS.MechanicalTurk.HITDoesNotExist"  # NRGI#1384 (observed body)
ASSIGNMENT_DOES_NOT_EXIST = "AWS.MechanicalTurk.AssignmentDoesNotExist"  # cloudyr/MTurkR#18
INVALID_ASSIGNMENT_STATE = "AWS.MechanicalTurk.InvalidAssignmentState"  # NRGI#1384
HIT_ALREADY_EXISTS = "AWS.MechanicalTurk.HitAlreadyExists"  # botocore model doc, CreateHIT
INVALID_MAX_ASSIGNMENTS_INCREASE = "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease"  # model doc
INSUFFICIENT_FUNDS = "AWS.MechanicalTurk.InsufficientFunds"  # NRGI/resourcecontracts.org#538
QUALIFICATION_TYPE_ALREADY_EXISTS = "AWS.MechanicalTurk.QualificationTypeAlreadyExists"  # legacy XML sample
XML_PARSE_ERROR = "AWS.MechanicalTurk.XMLParseError"  # MTurk's TurkErrorCode for a malformed Question
# GUESS: the following codes follow MTurk's naming but were not seen in a real response.
INVALID_HIT_STATE = "AWS.MechanicalTurk.InvalidHITState"
QUALIFICATION_TYPE_DOES_NOT_EXIST = "AWS.MechanicalTurk.QualificationTypeDoesNotExist"
QUALIFICATION_DOES_NOT_EXIST = "AWS.MechanicalTurk.QualificationDoesNotExist"
HIT_TYPE_DOES_NOT_EXIST = "AWS.MechanicalTurk.HITTypeDoesNotExist"
DUPLICATE_REQUEST = "AWS.MechanicalTurk.DuplicateRequest"
INVALID_EXPIRATION = "AWS.MechanicalTurk.InvalidExpirationIncrease"
OVERRIDE_WINDOW_PASSED = "AWS.MechanicalTurk.AssignmentOverrideWindowPassed"
WORKER_MISMATCH = "AWS.MechanicalTurk.WorkerDoesNotMatchAssignment"
INTERNAL_ERROR = "AWS.MechanicalTurk.InternalError"


class MarketplaceError(Exception):
    """An error the marketplace answers with instead of a result.

    ``message`` is stored without the `` (<epoch ms>)`` stamp: the protocol layer adds it
    from the marketplace's clock, so error bodies are deterministic under a ManualClock.
    """

    error_type: str = "RequestError"
    http_status: int = 400
    stamped: bool = True

    def __init__(self, message: str, turk_error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.turk_error_code = turk_error_code

    def body(self, epoch_ms: int) -> dict[str, Any]:
        """The JSON body, as MTurk shapes it."""
        message = f"{self.message} ({epoch_ms})" if self.stamped else self.message
        out: dict[str, Any] = {"__type": self.error_type, "Message": message}
        if self.turk_error_code:
            out["TurkErrorCode"] = self.turk_error_code
        return out


class RequestError(MarketplaceError):
    """The caller asked for something the marketplace refuses (HTTP 400)."""

    error_type = "RequestError"


class ServiceFault(MarketplaceError):
    """The marketplace itself failed (HTTP 500; botocore retries it)."""

    error_type = "ServiceFault"
    http_status = 500

    def __init__(self, message: str = "An internal error occurred.", turk_error_code: str | None = INTERNAL_ERROR) -> None:
        super().__init__(message, turk_error_code)


class ValidationException(MarketplaceError):
    """The request breaks botocore's service model (wording observed, see module doc)."""

    error_type = "ValidationException"
    stamped = False


class ParameterValidationError(MarketplaceError):
    """A member is well-formed but its value is not acceptable (observed code, see module doc)."""

    error_type = "ParameterValidationError"


class SerializationException(MarketplaceError):
    """The body is not JSON, or a member has the wrong JSON type. GUESS (see module doc)."""

    error_type = "SerializationException"
    stamped = False


class ThrottlingException(MarketplaceError):
    """Injected throttling; botocore's standard retry mode retries it."""

    error_type = "ThrottlingException"
    stamped = False

    def __init__(self, message: str = "Rate exceeded", turk_error_code: str | None = None) -> None:
        super().__init__(message, turk_error_code)


class NotImplementedOperation(RequestError):
    """An MTurk operation turnout's stand-in does not provide: fail loudly, never silently."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"operation {operation} is not implemented by turnout's offline marketplace; "
            "see docs/marketplace-coverage.md",
            "AWS.MechanicalTurk.NotImplemented",
        )


class WorkerActionRefused(Exception):
    """A simulated (or human) worker tried something MTurk's worker site would refuse.

    Not an MTurk API error: workers act through the worker site, which the Requester API
    never exposes. The control API maps ``code`` to an HTTP status.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Errors several operations raise, with MTurk's observed wording and codes.

def hit_not_found(hit_id: str) -> RequestError:
    # Observed wording and code: aws/aws-cli#6116, NRGI/resourcecontracts.org#1384.
    return RequestError(f"Hit {hit_id} does not exist.", HIT_DOES_NOT_EXIST)


def assignment_not_found(assignment_id: str) -> RequestError:
    # Observed wording: cloudyr/MTurkR#18, facebookresearch/Mephisto#1081.
    return RequestError(f"Assignment {assignment_id} does not exist.", ASSIGNMENT_DOES_NOT_EXIST)


def wrong_state(allowed: str) -> RequestError:
    # Observed: "This operation can be called with a status of: Submitted" (NRGI#1384).
    return RequestError(f"This operation can be called with a status of: {allowed}", INVALID_ASSIGNMENT_STATE)


def insufficient_funds() -> RequestError:
    # Observed wording and code: NRGI/resourcecontracts.org#538.
    return RequestError(
        "This Requester has insufficient funds in their account to complete this transaction.",
        INSUFFICIENT_FUNDS,
    )
