"""What every recruitment service needs: the marketplace context, its client, its errors.

psiTurk kept the MTurk mode in a process-global that each request overwrote, so an
action could run in the wrong marketplace. Here a ``MarketContext`` names the mode, the
client for that mode, the clock and the actor, and every service takes one explicitly.
Every door (web, API, CLI, scheduler) gets one from ``services.context.open_market``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from turnout.clock import Clock
from turnout.config import MODES, Settings
from turnout.db.engine import Database
from turnout.errors import Conflict, Forbidden, InvalidInput, NotFound, TurnoutError, Unavailable
from turnout.marketplace.port import FailureKind, MarketFailure, Marketplace

CENT = Decimal("0.01")
# MTurk's money pattern (botocore model): ^[0-9]+(\.)?[0-9]{0,2}$
_MONEY = re.compile(r"^[0-9]+(\.[0-9]{0,2})?$")


@dataclass(frozen=True)
class MarketContext:
    """One marketplace, one mode, one actor: passed to every recruitment service.

    Services call the marketplace only through ``market`` (the port). ``client`` is the
    MTurk adapter's boto3 client when there is one (tests and the psiTurk wrapper reach
    it); given only a ``client``, the MTurk adapter is wrapped around it here.
    """

    db: Database
    settings: Settings
    clock: Clock
    mode: str
    client: Any = None  # an unmodified boto3 "mturk" client for ``mode``, or None
    actor: str = "cli"
    market: Marketplace | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"unknown marketplace mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.market is None and self.client is not None:
            from turnout.marketplace.mturk import MTurkMarketplace

            object.__setattr__(self, "market", MTurkMarketplace(self.client, self.mode))

    @property
    def port(self) -> Marketplace:
        """The marketplace; a context built for reading stored records only has none."""
        if self.market is None:
            raise Unavailable(f"no marketplace is open for {self.mode} mode here")
        return self.market

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
        url = self.market.where if self.market is not None else "?"
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

# A failed marketplace call, as the port's adapters sort it (kind, code, text); the
# services read its ``kind``, never a marketplace's error text.
CallFailure = MarketFailure


def market_error(failure: MarketFailure, what: str) -> TurnoutError:
    """A failed marketplace call as a turnout error value (unknown, not found, conflict)."""
    if failure.unknown:
        return TurnoutError(f"{what}: the marketplace did not answer clearly ({failure.text}); "
                            "it may or may not have happened, check before retrying")
    if failure.kind == FailureKind.NOT_FOUND:
        return NotFound(f"{what}: {failure.text}")
    return Conflict(f"{what}: {failure.text}")


def is_database_trouble(exc: BaseException) -> bool:
    """A locked, busy or unreachable database (SQLite "database is locked", a lock wait
    timeout, a dropped connection): report the item and go on with the batch."""
    from sqlalchemy.exc import DBAPIError

    from turnout.errors import Unavailable

    return isinstance(exc, (DBAPIError, Unavailable))
