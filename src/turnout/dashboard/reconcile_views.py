"""The dashboard page "Check against the marketplace" (issue 10) and its navigation badge.

The page renders from the last stored check (services/reconcile_jobs.py); it never calls
the marketplace itself. Its "Check now" button starts a background check through the API
and shows its progress; remedies go through ``POST /api/reconciliation/fix``, money ones
after a preview. The badge comes from ``reconciliation.last_run``: one small query per page.
"""

from __future__ import annotations

from typing import Any

from flask import render_template

from turnout.dashboard.auth import current_principal, require_role, user_mode
from turnout.dashboard.blueprint import bp
from turnout.dashboard.market import actor, state
from turnout.services import reconcile_jobs, reconciliation
from turnout.services.recruitment import MarketContext

MONEY = set(reconcile_jobs.MONEY_REMEDIES)
PER_KIND = 500  # rows shown per kind: the page stays light; the API lists them all


def _records() -> MarketContext:
    """A context for reading stored checks: no marketplace client is built."""
    st = state()
    return MarketContext(db=st.db, settings=st.settings, clock=st.clock, mode=user_mode(), client=None,
                         actor=actor())


@bp.context_processor
def _reconcile_badge() -> dict[str, Any]:
    """``reconcile_badge``: differences the last check of the caller's mode found (0: none,
    None: never checked or not signed in)."""
    if current_principal() is None:
        return {"reconcile_badge": None}
    last = reconciliation.last_run(_records())
    return {"reconcile_badge": last["differences"] if last else None}


@bp.get("/reconciliation")
@require_role("viewer")
def reconciliation_page() -> Any:
    found = reconcile_jobs.latest(_records())
    last = found["last"]
    report = (last or {}).get("report") or {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in report.get("differences", []):
        groups.setdefault(d["kind"], []).append(d)
    ordered = [(kind, reconciliation.KINDS.get(kind, ""), groups[kind][:PER_KIND], len(groups[kind])) for kind in
               [*reconciliation.KINDS, *sorted(set(groups) - set(reconciliation.KINDS))] if kind in groups]
    return render_template("dashboard/reconciliation.html", last=last, report=report, groups=ordered,
                           running=found["running"], failed=found["failed"], kinds=reconciliation.KINDS,
                           remedies=reconciliation.REMEDIES, money=MONEY)
