"""psiTurk's batch paths (and a batch over a filter of the participant table), every one a
POST, each previewable: ``{"mode", "codeversion",
"preview": true}`` answers what would happen; without ``preview`` the batch starts in the
background (202 ``{"batch_id"}``) and ``GET /api/batches/<batch_id>`` follows it. Also the
read-only lists ``GET /api/assignments/`` and ``GET /api/hits/``."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from turnout.api.blueprint import bp
from turnout.api.views import MODES, json_body
from turnout.dashboard.auth import require_role, user_mode
from turnout.dashboard.market import market, state
from turnout.errors import InvalidInput
from turnout.services import batches, hits
from turnout.services.participant_table import TableQuery
from turnout.services.recruitment import MarketContext


def _opener(actor: str) -> Any:
    st = state()

    def open_for(mode: str) -> MarketContext:
        return st.open_market(mode, actor)  # type: ignore[no-any-return]

    return open_for


def _batch(name: str, *, codeversion: str | None = None, filter_args: dict[str, str] | None = None) -> Any:
    body = json_body()
    mode = body.get("mode") or user_mode()
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    codeversion = codeversion or body.get("codeversion") or state().settings.codeversion
    if not isinstance(codeversion, str):
        raise InvalidInput("codeversion must be a string")
    params = {k: v for k, v in body.items() if k in ("reason", "amount", "feedback")}
    if filter_args is not None:
        params["filter"] = filter_args
    ctx = market(mode)
    if body.get("preview") is True:
        return jsonify(batches.preview(ctx, name, codeversion=codeversion, params=params))
    started = batches.start(ctx, name, codeversion=codeversion, params=params,
                            confirm_live=body.get("confirm_live") is True, opener=_opener(ctx.actor))
    return jsonify(started), 202


@bp.post("/assignments/action/<action>")
@require_role("payer")
def assignments_action(action: str) -> Any:
    if action not in ("approve_all", "bonus_all"):
        raise InvalidInput(f"unknown assignments action {action!r}; use approve_all or bonus_all")
    return _batch(f"assignments.{action}")


@bp.post("/hits/action/<action>")
@require_role("payer")
def hits_action(action: str) -> Any:
    if action not in ("expire_all", "approve_all", "delete_all"):
        raise InvalidInput(f"unknown HITs action {action!r}; use expire_all, approve_all or delete_all")
    return _batch(f"hits.{action}")


@bp.post("/participants/action/<action>")
@require_role("payer")
def participants_action(action: str) -> Any:
    """approve, reject (``feedback``), unreject or bonus (``reason``; ``amount`` in dollars
    or "auto", the default) the participants of this mode that a filter of the participant
    table shows: the filter is the query string of ``GET /api/participants`` (page and sort
    aside). Preview, or start a background batch, as the other batch actions."""
    if action not in batches.FILTER_ACTIONS:
        raise InvalidInput(f"unknown participants action {action!r}; use {', '.join(batches.FILTER_ACTIONS)}")
    current = state().settings.codeversion
    tq = TableQuery.from_args(request.args, current)  # checked here: a bad filter is a 400 now
    args = {k: ",".join(v) for k, v in request.args.lists() if k not in ("page", "per_page", "sort", "group_by")}
    return _batch(f"participants.{action}", codeversion="*" if tq.codeversion is None else tq.codeversion,
                  filter_args=args)


@bp.get("/batches/<batch_id>")
@require_role("viewer")
def batch(batch_id: str) -> Any:
    """A batch's progress; reading it needs no marketplace client (only a resume does), so
    it answers in a mode without credentials too."""
    ctx = _records_context()
    return jsonify(batches.get(ctx, batch_id, opener=_opener(ctx.actor)))


@bp.get("/batches/")
@require_role("viewer")
def batch_list() -> Any:
    return jsonify(batches.recent(_records_context()))


def _records_context() -> MarketContext:
    """A context for reading batch records only: no marketplace client is built."""
    from turnout.dashboard.market import actor

    st = state()
    return MarketContext(db=st.db, settings=st.settings, clock=st.clock, mode=user_mode(), client=None,
                         actor=actor())


@bp.get("/hits/")
@require_role("viewer")
def hit_list() -> Any:
    """This study's HITs in the caller's mode; ``?status=active|reviewable|all``."""
    status = request.args.get("status", "all")
    if status not in ("all", "active", "reviewable"):
        raise InvalidInput("status must be active, reviewable or all")
    return jsonify(hits.list_hits(market(), active=status == "active", reviewable=status == "reviewable"))


@bp.get("/assignments/")
@require_role("viewer")
def assignment_list() -> Any:
    """This study's assignments from the marketplace, joined with the local rows and the
    ledger; ``?status=Submitted|Approved|Rejected&hit_id=&page=&per_page=``."""
    status = request.args.get("status") or None
    hit_id = request.args.get("hit_id") or None
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 100))
    except ValueError:
        raise InvalidInput("page and per_page must be whole numbers") from None
    if page < 1 or not 1 <= per_page <= 500:
        raise InvalidInput("page must be 1 or more and per_page from 1 to 500")
    rows = hits.list_assignments(market(), hit_ids=[hit_id] if hit_id else None, status=status)
    start = (page - 1) * per_page
    return jsonify({"total": len(rows), "page": page, "per_page": per_page, "rows": rows[start:start + per_page]})
