"""Opening the caller's marketplace from a view, and the briefly cached account balance."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app

from turnout.dashboard.auth import current_principal, user_mode
from turnout.errors import TurnoutError
from turnout.services.recruitment import MarketContext

BALANCE_TTL = timedelta(seconds=60)


def state() -> Any:
    return current_app.extensions["turnout.dashboard"]


def actor() -> str:
    principal = current_principal()
    return f"dashboard:{principal.username}" if principal else "dashboard:?"


def market(mode: str | None = None) -> MarketContext:
    """The caller's marketplace context (their mode unless ``mode`` is given)."""
    return state().open_market(mode or user_mode(), actor())  # type: ignore[no-any-return]


def balance(mode: str) -> dict[str, Any]:
    """``{"balance": "10000.00" | None, "error": str | None}``, cached per mode for a minute, so
    no page render calls the marketplace (psiTurk called it on every render, login included)."""
    st = state()
    now = st.clock.now()
    cached = st.balances.get(mode)
    if cached is not None and now - cached[0] < BALANCE_TTL:
        return dict(cached[1])
    try:
        from turnout.services import hits

        answer = {"balance": hits.balance(market(mode))["available_balance"], "error": None}
    except TurnoutError as exc:
        answer = {"balance": None, "error": exc.message}
    st.balances[mode] = (now, answer)
    return dict(answer)


def accepted_count(mode: str, codeversion: str) -> int | None:
    """Assignments of this codeversion's HITs that workers accepted and did not return
    (MTurk's max − available, summed), cached a minute like the balance; None when the
    marketplace cannot be asked."""
    st = state()
    now = st.clock.now()
    key = f"accepted:{mode}:{codeversion}"
    cached = st.balances.get(key)
    if cached is not None and now - cached[0] < BALANCE_TTL:
        return cached[1]  # type: ignore[no-any-return]
    try:
        from turnout.services import hits, payments

        ctx = market(mode)
        mine = set(payments.scope_hit_ids(ctx, codeversion))
        value: int | None = sum(h["max_assignments"] - h["number_assignments_available"]
                                for h in hits.list_hits(ctx) if h["hitid"] in mine)
    except TurnoutError:
        value = None
    st.balances[key] = (now, value)
    return value
