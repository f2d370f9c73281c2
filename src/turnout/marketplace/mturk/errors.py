"""MTurk's errors, sorted into the port's failure kinds, and every attempt of a call watched.

This is the only place that reads MTurk's error codes and text. The wording of some
answers is not documented (the duplicate-UniqueRequestToken error of SendBonus and
CreateHIT, for one), so several forms count; the ledger also checks ListBonusPayments
when in doubt, so a misread answer costs a check, never a second payment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

from turnout.marketplace.port import FailureKind, MarketFailure

# Codes that mean "the marketplace did not process it, try again later".
THROTTLED = {"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException"}
SERVER_SIDE = {"ServiceFault", "InternalFailure", "InternalError", "ServiceUnavailable", "InternalServerError"}
AUTH = {"UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch",
        "AccessDeniedException", "AccessDenied", "InvalidClientTokenId", "MissingAuthenticationToken"}


def is_wrong_assignment_state(message: str, turk_code: str | None) -> bool:
    """MTurk's answer to approving/rejecting an assignment that is no longer Submitted."""
    return "status of: Submitted" in message or (turk_code or "").endswith("InvalidAssignmentState")


def is_duplicate_token(message: str, turk_code: str | None) -> bool:
    """MTurk refuses a repeated UniqueRequestToken with an error ("A repeat returns an
    error containing the original request ID"); for the caller that is success."""
    turk = (turk_code or "").lower()
    text = message.lower()
    return ("duplicate" in turk or "alreadyexists" in turk or "uniquerequesttoken" in text
            or "already been processed" in text or "already exists" in text)


def _kind(code: str, message: str, turk: str | None, unknown: bool) -> str:
    if unknown:
        return FailureKind.UNKNOWN_OUTCOME
    if code in THROTTLED:
        return FailureKind.THROTTLED
    if is_duplicate_token(message, turk):
        return FailureKind.ALREADY_DONE
    if is_wrong_assignment_state(message, turk):
        return FailureKind.WRONG_STATE
    if "does not exist" in message:
        return FailureKind.NOT_FOUND
    if code in AUTH:
        return FailureKind.AUTH
    if code in ("ValidationException", "ParamValidationError"):
        return FailureKind.INVALID
    return FailureKind.REFUSED


def classify(exc: BaseException) -> MarketFailure | None:
    """Sort an exception from a boto3 call; None for exceptions that are not the marketplace's."""
    from turnout.marketplace.client import describe_client_error

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Error")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        message = str(error.get("Message") or exc.response.get("Message") or exc)
        turk = exc.response.get("TurkErrorCode")
        turk = str(turk) if turk else None
        unknown = (status >= 500 or code in SERVER_SIDE) and code not in THROTTLED
        return MarketFailure(kind=_kind(code, message, turk, unknown), code=code, message=message, detail=turk)
    if isinstance(exc, NoCredentialsError):
        return MarketFailure(kind=FailureKind.AUTH, code=type(exc).__name__, message=describe_client_error(exc))
    if isinstance(exc, ParamValidationError):
        return MarketFailure(kind=FailureKind.INVALID, code=type(exc).__name__, message=describe_client_error(exc))
    if isinstance(exc, BotoCoreError):  # timeouts, dropped connections: it may have happened
        return MarketFailure(kind=FailureKind.UNKNOWN_OUTCOME, code=type(exc).__name__,
                             message=describe_client_error(exc))
    return None


# --- seeing every attempt of a call ------------------------------------------------------

# botocore retries a ServiceFault (HTTP 500) and a throttle inside one client call, and
# the caller sees only the last answer: a dropped response (which MTurk may have applied)
# followed by two throttles surfaces as "Rate exceeded", a definite refusal. A money call
# must not be called "failed" when any of its attempts may have reached the marketplace,
# so every attempt is watched through botocore's ``needs-retry`` event, which is emitted
# once per attempt (with the response, or the exception when there was none).
_ATTEMPTS: ContextVar[list[str] | None] = ContextVar("turnout_call_attempts", default=None)
_OBSERVER_ID = "turnout-attempt-observer"


def _note_attempt(response: Any = None, caught_exception: BaseException | None = None, **_: Any) -> None:
    seen = _ATTEMPTS.get()
    if seen is None:
        return None
    if caught_exception is not None:
        seen.append(f"no answer ({type(caught_exception).__name__})")
    elif response is not None:
        http, parsed = response
        status = int(getattr(http, "status_code", 0) or 0)
        code = str((parsed or {}).get("Error", {}).get("Code") or "")
        if status >= 500 or (status >= 300 and not code):
            seen.append(f"no clear answer (HTTP {status} {code})".rstrip())
        else:
            seen.append("answered")
    return None  # never changes botocore's retry decision


@dataclass
class Attempts:
    """What the attempts of one client call (botocore's retries included) looked like."""

    seen: list[str]

    @property
    def count(self) -> int:
        return len(self.seen)

    @property
    def ambiguous(self) -> str | None:
        """The first attempt that may have been applied without our knowing, if any."""
        return next((s for s in self.seen if s != "answered"), None)


@contextmanager
def watch_attempts(client: Any) -> Iterator[Attempts]:
    """Record every attempt of the calls made on ``client`` inside the block."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is not None:
        events.register("needs-retry.mturk", _note_attempt, unique_id=_OBSERVER_ID)
    record = Attempts([])
    token = _ATTEMPTS.set(record.seen)
    try:
        yield record
    finally:
        _ATTEMPTS.reset(token)
