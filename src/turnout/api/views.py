"""API routes for accounts and the caller's settings (``/api/services_manager``)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request, session

from turnout.api.blueprint import bp
from turnout.config import MODES
from turnout.dashboard.auth import api_error, current_principal, require_role, user_mode
from turnout.dashboard.market import balance, state
from turnout.errors import InvalidInput


def json_body() -> dict[str, Any]:
    """The request's JSON object (an empty body counts as ``{}``); anything else is a 400."""
    if not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


@bp.get("/services_manager")
@require_role("viewer")
def services_manager() -> Any:
    mode = user_mode()
    settings = state().settings
    money = balance(mode)
    principal = current_principal()
    return jsonify({"mode": mode, "codeversion": settings.codeversion, "balance": money["balance"],
                    "balance_error": money["error"], "user": principal.username if principal else None,
                    "role": principal.role if principal else None})


@bp.post("/services_manager")
@require_role("viewer")
def set_mode() -> Any:
    mode = json_body().get("mode")
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if g.get("principal_via") == "token":
        return api_error("no_session", "a bearer token has no session to keep a mode in; "
                         "pass ?mode= with each request instead", 400)
    session["mode"] = mode  # this user's session only; never a process-wide switch
    return services_manager()


@bp.get("/overview")
@require_role("viewer")
def overview() -> Any:
    """The overview page's numbers: funnel, conditions, completions per day, money."""
    from turnout.services.study_summary import summary

    codeversion = request.args.get("codeversion") or state().settings.codeversion
    return jsonify(summary(state().db, codeversion=codeversion, mode=user_mode()))


@bp.get("/activity")
@require_role("viewer")
def activity() -> Any:
    """The audit log, newest first: ``?action=&mode=&outcome=&actor=&target=&before_id=&limit=``."""
    from turnout.services.activity import ActivityQuery, list_events

    return jsonify(list_events(state().db, ActivityQuery.from_args(request.args)))


@bp.get("/activity.csv")
@require_role("viewer")
def activity_csv() -> Any:
    from flask import Response, stream_with_context

    from turnout.services.activity import ActivityQuery, stream_csv

    aq = ActivityQuery.from_args(request.args)
    return Response(stream_with_context(stream_csv(state().db, aq)), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="activity.csv"'})
