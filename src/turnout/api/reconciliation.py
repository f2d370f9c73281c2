"""Reconciliation over the API: the lab's records against the marketplace's.

``GET /api/reconciliation?mode=&codeversion=`` compares now and answers the report (for
scripts; it takes two paged marketplace calls per HIT). The dashboard page starts the same
check in the background (``POST /api/reconciliation/checks``), follows it
(``GET /api/reconciliation/checks/<run_id>``) and renders from the stored report
(``GET /api/reconciliation/last``). ``POST /api/reconciliation/fix`` applies one remedy
(``"preview": true`` says what it would pay and changes nothing). Reading and checking
need the viewer role; a fix needs payer; in live mode a money remedy needs
``"confirm_live": true``.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from turnout.api.actions import _opener
from turnout.api.blueprint import bp
from turnout.api.views import MODES, json_body
from turnout.dashboard.auth import require_role, user_mode
from turnout.dashboard.market import market
from turnout.errors import Forbidden, InvalidInput
from turnout.services import reconcile_jobs, reconciliation


def _mode(value: Any) -> str:
    mode = value or user_mode()
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return str(mode)


def _codeversion(value: Any) -> str | None:
    """Absent, empty or ``*``: every codeversion (as ``turnout reconcile``)."""
    if value in (None, "", "*"):
        return None
    if not isinstance(value, str):
        raise InvalidInput("codeversion must be a string")
    return value


@bp.get("/reconciliation")
@require_role("viewer")
def reconciliation_check() -> Any:
    ctx = market(_mode(request.args.get("mode")))
    report = reconciliation.check(ctx, codeversion=_codeversion(request.args.get("codeversion")))
    return jsonify(report.as_dict())


@bp.post("/reconciliation/checks")
@require_role("viewer")
def reconciliation_start() -> Any:
    """Start the check in the background (reading only: a viewer may); 202 ``{"run_id"}``."""
    body = json_body()
    ctx = market(_mode(body.get("mode")))
    started = reconcile_jobs.start(ctx, codeversion=_codeversion(body.get("codeversion")),
                                   opener=_opener(ctx.actor))
    return jsonify(started), 202


@bp.get("/reconciliation/checks/<int:run_id>")
@require_role("viewer")
def reconciliation_run(run_id: int) -> Any:
    return jsonify(reconcile_jobs.get(_records(), run_id))


@bp.get("/reconciliation/last")
@require_role("viewer")
def reconciliation_last() -> Any:
    """The last stored check of the caller's mode, and one in progress; no marketplace call."""
    return jsonify(reconcile_jobs.latest(_records(_mode(request.args.get("mode")))))


@bp.post("/reconciliation/fix")
@require_role("payer")
def reconciliation_fix() -> Any:
    body = json_body()
    assignment_id, remedy, reason = body.get("assignment_id"), body.get("remedy"), body.get("reason")
    if not isinstance(assignment_id, str) or not assignment_id.strip():
        raise InvalidInput("assignment_id is required (a string)")
    if not isinstance(remedy, str) or remedy not in reconciliation.REMEDIES:
        raise InvalidInput(f"remedy must be one of {', '.join(reconciliation.REMEDIES)}, got {remedy!r}")
    if reason is not None and not isinstance(reason, str):
        raise InvalidInput("reason must be text")
    ctx = market(_mode(body.get("mode")))
    confirm = body.get("confirm_live") is True
    if ctx.mode == "live" and remedy in reconcile_jobs.MONEY_REMEDIES and not confirm \
            and body.get("preview") is not True:
        # Refused before the assignment is even read from MTurk.
        raise Forbidden(f"{remedy} moves real money in live mode; confirm it (send \"confirm_live\": true)")
    if body.get("preview") is True:
        return jsonify(reconcile_jobs.preview(ctx, assignment_id.strip(), remedy))
    return jsonify(reconcile_jobs.fix(ctx, assignment_id.strip(), remedy, reason=reason,
                                      confirm_live=confirm))


def _records(mode: str | None = None) -> Any:
    """A context for reading stored checks only: no marketplace client is built."""
    from turnout.dashboard.market import actor, state
    from turnout.services.recruitment import MarketContext

    st = state()
    return MarketContext(db=st.db, settings=st.settings, clock=st.clock, mode=mode or user_mode(), client=None,
                         actor=actor())
