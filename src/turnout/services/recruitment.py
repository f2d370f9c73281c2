"""What every recruitment service needs: the marketplace context, its client, its errors.

psiTurk kept the MTurk mode in a process-global that each request overwrote, so an
action could run in the wrong marketplace. Here a ``MarketContext`` names the mode, the
client for that mode, the clock and the actor, and every service takes one explicitly.
The web layer, the CLI and the scheduler each build their own and call the same services.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
)

from turnout.clock import Clock
from turnout.config import MODES, Settings
from turnout.db.engine import Database
from turnout.errors import Forbidden, InvalidInput, Unavailable

CENT = Decimal("0.01")
# MTurk's money pattern (botocore model): ^[0-9]+(\.)?[0-9]{0,2}$
_MONEY = re.compile(r"^[0-9]+(\.[0-9]{0,2})?$")
# Codes that mean "the marketplace did not process it, try again later".
_THROTTLED = {"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException"}
_SERVER_SIDE = {"ServiceFault", "InternalFailure", "InternalError", "ServiceUnavailable", "InternalServerError"}


@dataclass(frozen=True)
class MarketContext:
    """One marketplace, one mode, one actor: passed to every recruitment service."""

    db: Database
    settings: Settings
    clock: Clock
    mode: str
    client: Any  # an unmodified boto3 "mturk" client for ``mode``
    actor: str = "cli"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"unknown marketplace mode {self.mode!r}; use one of {', '.join(MODES)}")

    @property
    def study(self) -> str:
        """The project's key in turnout's shared tables: its participant table name."""
        return self.db.tables.participants

    @property
    def codeversion(self) -> str:
        return self.settings.codeversion

    @property
    def marketplace(self) -> str:
        """Where calls go, for the audit trail (e.g. ``mturk-sandbox https://...``)."""
        url = getattr(getattr(self.client, "meta", None), "endpoint_url", None) or "?"
        return f"{self.mode} {url}"[:255]


def require_live_confirmation(ctx: MarketContext, confirmed: bool, what: str) -> None:
    """Money in live mode is real: the caller must have asked a person (or got ``--yes``)."""
    if ctx.mode == "live" and not confirmed:
        raise Forbidden(f"{what} in live mode pays real money; confirm it explicitly "
                        "(CLI: answer the prompt or pass --yes)")


# --- money --------------------------------------------------------------------------


# Money on the command line, the dashboard and the API: plain decimals only ("1.25",
# "$1.25", "3"), never exponents ("1e2" is not $100) or more than two decimals.
_PLAIN_MONEY = re.compile(r"^[0-9]{1,9}(\.[0-9]{0,2})?$")
_PLAIN_DECIMAL = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,12})?$")
_PLAIN_COUNT = re.compile(r"^[0-9]{1,100}$")
# GUESS (MTURK_FACTS lists only the pattern): MTurk pays at least one cent per assignment.
MIN_REWARD = Decimal("0.01")
# MTURK_FACTS, CreateHIT ranges: AssignmentDurationInSeconds and LifetimeInSeconds are
# 30 s .. 31,536,000 s (one year); MaxAssignments 1 .. 1,000,000,000 (GUESS, the offline
# marketplace's bound).
DURATION_SECONDS = (30, 31_536_000)
LIFETIME_SECONDS = (30, 31_536_000)
MAX_ASSIGNMENTS = 1_000_000_000


def parse_money(value: Any, *, what: str = "amount", allow_zero: bool = False,
                minimum: Decimal | None = None) -> Decimal:
    """A dollar amount as Decimal with cents, from a plain decimal string ("1.25", "$3").

    The one parser for every money amount a person types (CLI, dashboard, API). Floats
    are refused, so no amount is ever rounded on its way to the marketplace; so are
    exponents ("1e2" is not $100, "1e999" is not a number anyone meant), more than two
    decimals, and amounts of a billion dollars or more.
    """
    if isinstance(value, Decimal):
        text = format(value, "f") if value.is_finite() else str(value)
    elif isinstance(value, float):
        raise InvalidInput(f"{what} must be given as a string like \"1.25\", not a float ({value!r})")
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip().removeprefix("$")
    else:
        raise InvalidInput(f"{what} must be a dollar amount like 1.25, got {value!r}")
    if not _PLAIN_MONEY.match(text):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise InvalidInput(f"{what} must be a plain dollar amount with at most two decimals, like 1.25 "
                           f"(got {shown!r})")
    amount = Decimal(text).quantize(CENT)
    if amount == 0 and not allow_zero:
        raise InvalidInput(f"{what} must be greater than 0, got {money_str(amount)}")
    if minimum is not None and amount < minimum:
        raise InvalidInput(f"{what} must be at least ${money_str(minimum)}, got {money_str(amount)}")
    return amount


def parse_hours(value: Any, *, what: str = "duration",
                bounds: tuple[int, int] = DURATION_SECONDS) -> int:
    """A number of hours (plain decimal, or a finite number from code) as whole seconds,
    refused outside ``bounds`` (MTurk's 30 s .. one year), never silently clamped."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a number of hours, got {value!r}")
    if isinstance(value, (int, float, Decimal)):
        try:
            hours = Decimal(str(value)) if not isinstance(value, Decimal) else value
        except InvalidOperation:
            raise InvalidInput(f"{what} must be a number of hours, got {value!r}") from None
    elif isinstance(value, str) and _PLAIN_DECIMAL.match(value.strip()):
        hours = Decimal(value.strip())
    else:
        shown = value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "..."
        raise InvalidInput(f"{what} must be a plain number of hours like 1.5, got {shown!r}")
    low, high = bounds
    if not hours.is_finite() or hours <= 0 or hours * 3600 > high:
        raise InvalidInput(f"{what} must be more than 0 hours and at most {high // 3600} hours "
                           f"(MTurk allows {low} s to one year), got {value!r}")
    seconds = int((hours * 3600).to_integral_value(rounding=ROUND_HALF_UP))
    if seconds < low:
        least = (Decimal(low) / 3600).quantize(Decimal("0.0001"), rounding=ROUND_CEILING)
        raise InvalidInput(f"{what} must be at least {low} seconds ({least} hours; MTurk refuses less), "
                           f"got {value!r} hours = {hours * 3600:.6g} s")
    return seconds


def parse_count(value: Any, *, what: str = "the number of assignments", maximum: int = MAX_ASSIGNMENTS) -> int:
    """A whole number from 1 to ``maximum`` (digits only when typed)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a whole number of at least 1, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not _PLAIN_COUNT.match(text):
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise InvalidInput(f"{what} must be a whole number of at least 1, got {shown!r}")
        number = int(text)
    elif isinstance(value, int):
        number = value
    else:
        raise InvalidInput(f"{what} must be a whole number of at least 1, got {value!r}")
    if not 1 <= number <= maximum:
        digits = len(str(abs(number)))
        raise InvalidInput(f"{what} must be from 1 to {maximum:,}, got "
                           + (str(number) if digits <= 30 else f"a {digits}-digit number"))
    return number


def money_str(amount: Decimal) -> str:
    """MTurk's wire form: ``"1.50"``."""
    return f"{amount.quantize(CENT, rounding=ROUND_HALF_UP):.2f}"


def request_token(*parts: object) -> str:
    """A deterministic UniqueRequestToken (MTurk: at most 64 characters) for ``parts``."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
    return f"turnout-{digest[:48]}"


# --- errors from the marketplace -------------------------------------------------------


@dataclass(frozen=True)
class CallFailure:
    """What a failed marketplace call tells us, sorted into *definite* and *unknown*.

    ``unknown`` means the request may have been applied (timeout, dropped connection,
    5xx): retrying must be safe, and is, because every money call carries a token or is
    checked against the marketplace before it counts as failed.
    """

    unknown: bool
    code: str
    message: str
    turk_code: str | None = None

    @property
    def text(self) -> str:
        return f"{self.message} [{self.turk_code}]" if self.turk_code else self.message


def classify(exc: BaseException) -> CallFailure | None:
    """Sort an exception from a boto3 call; None for exceptions that are not the marketplace's."""
    from turnout.marketplace.client import describe_client_error

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Error")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        message = str(error.get("Message") or exc.response.get("Message") or exc)
        turk = exc.response.get("TurkErrorCode")
        unknown = status >= 500 or code in _SERVER_SIDE
        return CallFailure(unknown=unknown and code not in _THROTTLED, code=code, message=message,
                           turk_code=str(turk) if turk else None)
    if isinstance(exc, (NoCredentialsError, ParamValidationError)):
        return CallFailure(unknown=False, code=type(exc).__name__, message=describe_client_error(exc))
    if isinstance(exc, BotoCoreError):  # timeouts, dropped connections: it may have happened
        return CallFailure(unknown=True, code=type(exc).__name__, message=describe_client_error(exc))
    return None


# --- seeing every attempt of a call ------------------------------------------------------

# botocore retries a ServiceFault (HTTP 500) and a throttle inside one client call, and
# the caller sees only the last answer: a dropped response (which MTurk may have applied)
# followed by two throttles surfaces as "Rate exceeded", a definite refusal. A money call
# must not be called "failed" when any of its attempts may have reached the marketplace,
# so the ledger watches every attempt through botocore's ``needs-retry`` event, which is
# emitted once per attempt (with the response, or the exception when there was none).
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


def is_database_trouble(exc: BaseException) -> bool:
    """A locked, busy or unreachable database (SQLite "database is locked", a lock wait
    timeout, a dropped connection): report the item and go on with the batch."""
    from sqlalchemy.exc import DBAPIError

    from turnout.errors import Unavailable

    return isinstance(exc, (DBAPIError, Unavailable))


def is_wrong_assignment_state(failure: CallFailure) -> bool:
    """MTurk's answer to approving/rejecting an assignment that is no longer Submitted."""
    return ("status of: Submitted" in failure.message
            or (failure.turk_code or "").endswith("InvalidAssignmentState"))


def is_duplicate_token(failure: CallFailure) -> bool:
    """MTurk refuses a repeated UniqueRequestToken with an error: for us that is success.

    MTURK_FACTS: "A repeat returns an error containing the original request ID". The exact
    code and wording for SendBonus are not documented (GUESS), so several forms count; the
    bonus path also reconciles with ListBonusPayments when in doubt.
    """
    turk = (failure.turk_code or "").lower()
    message = failure.message.lower()
    return ("duplicate" in turk or "alreadyexists" in turk or "uniquerequesttoken" in message
            or "already been processed" in message or "already exists" in message)


def paginate(client: Any, operation: str, result_key: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item of a paginated List* call (pages of 100, MTurk's maximum)."""
    paginator = client.get_paginator(operation)
    for page in paginator.paginate(**params, PaginationConfig={"PageSize": 100}):
        yield from page.get(result_key, [])


# --- building a client ----------------------------------------------------------------


@contextmanager
def open_marketplace(settings: Settings, mode: str, *, clock: Clock | None = None,
                     endpoint_url: str | None = None, max_attempts: int = 3) -> Iterator[Any]:
    """Yield a boto3 MTurk client for ``mode``; in local mode, for the project's own store.

    ``local`` without ``endpoint_url`` serves the offline marketplace from a thread over
    ``settings.marketplace_store``, the same SQLite store ``turnout serve`` mounts at
    ``/_mturk/``. So the CLI works whether or not the server runs, and both see one state.
    The client is always an unmodified boto3 client speaking MTurk's wire protocol.
    """
    from turnout.marketplace.client import make_client

    if mode not in MODES:
        raise InvalidInput(f"unknown marketplace mode {mode!r}; use one of {', '.join(MODES)}")
    if mode != "local":
        key = settings.raw.text("AWS Access", "aws_access_key_id")
        secret = settings.raw.text("AWS Access", "aws_secret_access_key")
        yield make_client(mode, endpoint_url=endpoint_url, aws_access_key_id=key or None,
                          aws_secret_access_key=secret or None, max_attempts=max_attempts)
        return
    from turnout.marketplace.local import ThreadedMarketplace
    from turnout.marketplace.project import open_store

    # Local calls are signed with the store's key pair (the offline marketplace refuses
    # unsigned ones); open_store also stops on an unusable [Marketplace] local_store.
    store = settings.marketplace_store
    try:
        open_store(settings, clock).close()
        running = None if endpoint_url else ThreadedMarketplace(store, clock=clock)
    except (sqlite3.Error, OSError) as exc:
        # A store another process holds locked (past SQLite's busy timeout), or one that is
        # not a SQLite file: one line naming it, not a traceback.
        raise Unavailable(f"cannot open the offline marketplace's store {store} ([Marketplace] local_store): "
                          f"{exc}; if another turnout command is using it, try again") from None
    if running is None:
        yield make_client(mode, endpoint_url=endpoint_url, store=store, max_attempts=max_attempts)
        return
    with running as market:
        yield make_client("local", endpoint_url=market.endpoint_url, store=store, max_attempts=max_attempts)
