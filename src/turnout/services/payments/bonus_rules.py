"""The bonus rules: the auto amount from the participant's ``bonus`` column, "already
bonused" (this ledger, psiTurk's status 7 and the marketplace's own ListBonusPayments),
and the override that pays one further, deterministically keyed bonus."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from turnout.errors import InvalidInput
from turnout.experiment.status import Status
from turnout.marketplace.port import MarketError
from turnout.services.payments.ledger import (
    UNSETTLED,
    _audit_quietly,
    _execute,
    _fee,
    _summary_outcome,
)
from turnout.services.payments.results import BatchResult, ItemResult, Target
from turnout.services.payments.selections import (
    _in_scope,
)
from turnout.services.recruitment import (
    CENT,
    CallFailure,
    MarketContext,
    is_database_trouble,
    money_str,
    parse_money,
    request_token,
)

AUTO = "auto"


OVERRIDE_FLAG = "--override-bonused-status"


def default_bonus_reason(settings: Any, reason: str | None) -> str:
    """The reason shown to the worker: the one given, else ``[Shell Parameters]
    bonus_message`` (psiTurk's default); "" when neither is set (MTurk refuses a bonus
    without one, so callers ask for it)."""
    return reason or (settings.get("Shell Parameters", "bonus_message", fallback="") or "")


def auto_amount(value: Any) -> Decimal | None:
    """The participant's ``bonus`` column as dollars, or None when it is 0 or unset.

    The column is a float (psiTurk's schema) written by custom code, so 0.1 + 0.2 can
    arrive as 0.30000000000000004: float noise below a millionth of a cent is rounded
    away, anything else that is not whole cents is refused rather than guessed, and so
    are infinities, NaN, negative and absurd values (each is reported for its own
    participant; the batch goes on).
    """
    if value is None:
        return None
    try:
        amount = Decimal(repr(float(value))) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"bonus column holds {value!r}, which is not a dollar amount") from None
    if not amount.is_finite() or abs(amount) >= Decimal("1000000000"):
        raise InvalidInput(f"bonus column holds {value!r}, which is not a dollar amount that can be paid")
    rounded = amount.quantize(CENT)
    if abs(amount - rounded) > Decimal("0.00000001"):
        raise InvalidInput(f"bonus column holds {value!r}, which is not a whole number of cents")
    if rounded < 0:
        raise InvalidInput(f"bonus column holds {value!r}, which is negative")
    return rounded if rounded > 0 else None


def _free_key(entries: Sequence[Any], stem: str) -> str:
    """``stem``, or ``stem:2``, ``stem:3``... past the intents settled as not paid (failed).

    Deterministic from the ledger, so two processes making the same request meet on the
    same key. A failed intent is never re-sent under its token: a new try (any amount) is
    a new intent with a new token.
    """
    by_key = {e.idempotency_key: e for e in entries}
    n = 1
    key = stem
    while key in by_key and by_key[key].state == "failed":
        n += 1
        key = f"{stem}:{n}"
    return key


def override_stem(ctx: MarketContext, assignment_id: str, amount: Decimal, reason: str) -> str:
    """The key of one deliberate extra payment: this assignment, this amount, this reason.
    The same request made again (or by five processes at once) is the same intent."""
    digest = request_token("override", ctx.mode, assignment_id, money_str(amount), reason.strip())[-16:]
    return f"bonus:{ctx.mode}:{assignment_id}:override:{digest}"


def _bonus_key(ctx: MarketContext, target: Target, override: bool, amount: Decimal, reason: str,
               market_paid: list[Decimal] | None) -> tuple[str | None, str]:
    """The idempotency key for this bonus request of ``target``, or (None, why not).

    Order: an intent of this assignment not yet settled (pending, claimed, unknown) is
    finished first, with its own amount; then an override is its own deterministic intent;
    then anything paid (ledger, psiTurk's status 7, or the marketplace's own
    ListBonusPayments) refuses a plain bonus.
    """
    L = ctx.db.models.LedgerEntry
    with ctx.db.begin() as session:
        entries = list(session.scalars(select(L).where(
            L.mode == ctx.mode, L.kind == "bonus", L.assignment_id == target.assignment_id).order_by(L.id)))
    unsettled = [e for e in entries if e.state in UNSETTLED]
    if unsettled:
        return unsettled[0].idempotency_key, ""
    if override:
        return _free_key(entries, override_stem(ctx, target.assignment_id, amount, reason)), ""
    succeeded = [e for e in entries if e.state == "succeeded"]
    if succeeded:
        paid = ", ".join(f"${e.amount}" for e in succeeded)
        return None, f"already bonused {paid} (ledger #{succeeded[-1].id}); pass {OVERRIDE_FLAG} to pay another bonus"
    if target.participant is not None and target.participant.status == Status.BONUSED:
        return None, f"already bonused before turnout kept a ledger (status 7); pass {OVERRIDE_FLAG} to pay again"
    if market_paid:
        paid = ", ".join(f"${money_str(a)}" for a in market_paid)
        return None, (f"the marketplace shows a bonus of {paid} already paid for this assignment, not by this "
                      f"project's ledger (another project or tool on the same account?); pass {OVERRIDE_FLAG} "
                      "to pay again")
    return _free_key(entries, f"bonus:{ctx.mode}:{target.assignment_id}"), ""


def _market_bonuses(ctx: MarketContext, targets: Sequence[Target]) -> dict[str, list[Decimal]] | CallFailure:
    """What the marketplace itself paid in bonuses, per assignment (ListBonusPayments, one
    paginated call per HIT): the "already bonused" check must not trust this project's
    ledger alone."""
    found: dict[str, list[Decimal]] = {}
    try:
        for hit_id in dict.fromkeys(t.hit_id for t in targets if t.hit_id):
            for b in ctx.port.bonuses(hit_id=hit_id):
                found.setdefault(b.assignment_id, []).append(b.amount)
        for t in targets:
            if not t.hit_id:
                for b in ctx.port.bonuses(assignment_id=t.assignment_id):
                    found.setdefault(t.assignment_id, []).append(b.amount)
    except MarketError as exc:
        return exc.failure
    return found


def _bonus_targets(ctx: MarketContext, targets: Sequence[Target], amount: Any, reason: str, *,
                   override: bool, action: str, version: str | None = None,
                   refused: Sequence[ItemResult] = ()) -> BatchResult:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("a bonus needs a reason; MTurk shows it to the worker")
    fixed = None if amount == AUTO else parse_money(amount, what="bonus amount")
    result = BatchResult(action, ctx.mode)
    result.items.extend(refused)
    market = _market_bonuses(ctx, targets) if targets else {}
    for target in targets:
        common = {"worker_id": target.worker_id, "uniqueid": target.uniqueid}
        if version is not None and not _in_scope(target, version):
            result.items.append(ItemResult("bonus", target.assignment_id, "skipped",
                                           f"participant is of codeversion {target.participant.codeversion}, "
                                           f"not {version}", **common))
            continue
        if target.status == "Submitted":
            result.items.append(ItemResult("bonus", target.assignment_id, "refused",
                                           "this assignment is Submitted, not yet approved: bonuses are for "
                                           "approved work, so approve it first (turnout worker approve "
                                           f"{target.assignment_id})", **common))
            continue
        value = fixed
        if value is None:
            if target.participant is None:
                result.items.append(ItemResult("bonus", target.assignment_id, "skipped",
                                               "no participant row in this study's database, so no auto "
                                               "bonus amount; pay it with an explicit amount", **common))
                continue
            try:
                value = auto_amount(target.participant.bonus)
            except InvalidInput as exc:
                result.items.append(ItemResult("bonus", target.assignment_id, "skipped", exc.message, **common))
                continue
            if value is None:
                result.items.append(ItemResult("bonus", target.assignment_id, "skipped",
                                               f"auto bonus is {target.participant.bonus or 0} for "
                                               f"{target.uniqueid}: nothing to pay", **common))
                continue
        worker_id = target.worker_id
        if worker_id is None:
            worker_id = _worker_of(ctx, target.assignment_id)
            if worker_id is None:
                result.items.append(ItemResult("bonus", target.assignment_id, "failed",
                                               "the marketplace does not know this assignment", **common))
                continue
            target = Target(target.assignment_id, worker_id, target.hit_id, target.participant, target.status)
        result.items.append(_bonus_one(ctx, target, value, text, override, market, common))
    _audit_quietly(ctx, action, outcome=_summary_outcome(result), counts=result.counts(),
                   paid=money_str(result.paid), fees=money_str(result.fees),
                   amount=amount if amount == AUTO else money_str(fixed) if fixed is not None else None,
                   override=override or None)
    return result


def _bonus_one(ctx: MarketContext, target: Target, value: Decimal, text: str, override: bool,
               market: dict[str, list[Decimal]] | CallFailure, common: dict[str, Any]) -> ItemResult:
    """One assignment's bonus request: finish an unsettled earlier intent first (with its
    own amount); if that one is settled as not paid, this request's amount is a new intent."""
    earlier: ItemResult | None = None
    for _ in range(3):
        try:
            paid = None if isinstance(market, CallFailure) else market.get(target.assignment_id, [])
            key, why = _bonus_key(ctx, target, override, value, text, paid)
            existing = None
            if key is not None:
                L = ctx.db.models.LedgerEntry
                with ctx.db.begin() as session:
                    existing = session.scalar(select(L).where(L.idempotency_key == key))
        except Exception as exc:
            if not is_database_trouble(exc):
                raise
            return ItemResult("bonus", target.assignment_id, "failed",
                              f"the database failed before anything was sent: {exc}"[:300], **common)
        if key is None:
            if earlier is not None:
                earlier.message += f"; ${money_str(value)} not sent: {why}"
                return earlier
            return ItemResult("bonus", target.assignment_id, "skipped", why, **common)
        if existing is None and isinstance(market, CallFailure) and not override:
            return ItemResult("bonus", target.assignment_id, "failed",
                              f"could not check ListBonusPayments ({market.text}); nothing sent", **common)
        item = _execute(ctx, key, "bonus", target, amount=value, reason=text)
        if item.outcome == "ok":
            item.fee = _fee(item.amount, ctx.port.bonus_fee_rate())
        if existing is None or existing.state not in UNSETTLED:
            if override and item.outcome == "ok":
                item.message += " (paid again: --override-bonused-status)"
            return item
        # That was an earlier request, finished now with its own amount.
        if existing.amount != money_str(value) or (existing.reason or "") != text:
            item.message = f"earlier request for ${existing.amount} (ledger #{existing.id}): {item.message}"
        if item.outcome != "failed":
            if item.outcome == "ok" and existing.amount != money_str(value):
                item.message += f"; ${money_str(value)} not sent (already bonused; {OVERRIDE_FLAG} pays again)"
            return item
        earlier = item  # settled as not paid: go on with this request as a new intent
    return earlier if earlier is not None else ItemResult("bonus", target.assignment_id, "failed",
                                                          "could not settle earlier requests", **common)


def _worker_of(ctx: MarketContext, assignment_id: str) -> str | None:
    try:
        return ctx.port.get_assignment(assignment_id).worker_id
    except MarketError:
        return None


def preview_bonus(ctx: MarketContext, *, override: bool) -> str | None:
    """What a person must read before confirming a bonus run (the CLI and dashboard show it)."""
    if override:
        return (f"{OVERRIDE_FLAG}: assignments already bonused are paid AGAIN, one further bonus per "
                "assignment for this amount and reason (re-running the same request does not pay a third time)")
    return None
