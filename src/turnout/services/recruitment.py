"""What every recruitment service needs: the marketplace context, its client, its errors.

psiTurk kept the MTurk mode in a process-global that each request overwrote, so an
action could run in the wrong marketplace. Here a ``MarketContext`` names the mode, the
client for that mode, the clock and the actor, and every service takes one explicitly.
The web layer, the CLI and the scheduler each build their own and call the same services.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
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
from turnout.errors import Forbidden, InvalidInput

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


def parse_money(value: Any, *, what: str = "amount", allow_zero: bool = False) -> Decimal:
    """A dollar amount as Decimal with cents, from a string or Decimal; floats are refused,
    so no amount is ever rounded on its way to the marketplace."""
    if isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, float):
        raise InvalidInput(f"{what} must be given as a string like \"1.25\", not a float ({value!r})")
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip().lstrip("$")
    else:
        raise InvalidInput(f"{what} must be a dollar amount like 1.25, got {value!r}")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"{what} must be a dollar amount like 1.25, got {value!r}") from None
    if not amount.is_finite() or amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise InvalidInput(f"{what} must be a dollar amount with at most two decimals, got {value!r}")
    amount = amount.quantize(CENT)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidInput(f"{what} must be greater than 0, got {money_str(amount)}")
    return amount


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
    open_store(settings, clock).close()
    store = settings.marketplace_store
    if endpoint_url:
        yield make_client(mode, endpoint_url=endpoint_url, store=store, max_attempts=max_attempts)
        return
    with ThreadedMarketplace(store, clock=clock) as market:
        yield make_client("local", endpoint_url=market.endpoint_url, store=store, max_attempts=max_attempts)
