"""psiTurk's campaign and task paths: ``GET/POST /api/campaigns/``, ``PATCH /api/campaigns/<id>``,
``GET/POST /api/tasks/``, ``DELETE /api/tasks/<id>``.

Views parse the body and call ``services.campaigns`` / ``services.tasks``; every rule
(validation, one active campaign per codeversion and mode, the 30-minute minimum) is there,
shared with ``turnout campaign`` and ``turnout task``. Only the runner runs what is stored
here (it picks new rows up within seconds).
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from turnout.api.blueprint import bp
from turnout.api.views import json_body
from turnout.dashboard.auth import require_role, user_mode
from turnout.dashboard.market import actor, market, state
from turnout.errors import InvalidInput, TurnoutError

CAMPAIGN_FIELDS = ("goal", "per_round", "interval_minutes", "reward", "duration_hours", "budget", "mode",
                   "codeversion")


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string")
    return value


def campaign_options(body: dict[str, Any]) -> dict[str, Any]:
    """The body's campaign fields as ``campaigns.plan`` takes them (the caller's mode by default).

    Money must be a decimal string ("1.50"), never a JSON number (binary floats are not money).
    """
    unknown = sorted(set(body) - set(CAMPAIGN_FIELDS) - {"preview", "confirm_live"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}; known: {', '.join(CAMPAIGN_FIELDS)}")
    for key in ("goal", "per_round", "interval_minutes", "reward", "duration_hours"):
        if body.get(key) is None or body.get(key) == "":
            raise InvalidInput(f"{key} is required")
    for key in ("reward", "budget"):
        if body.get(key) is not None and body.get(key) != "" and not isinstance(body[key], str):
            raise InvalidInput(f"{key} must be a decimal string such as \"1.50\", got {body[key]!r}")
    options = {key: body.get(key) for key in CAMPAIGN_FIELDS}
    options["mode"] = _text(body, "mode") or user_mode()
    options["codeversion"] = _text(body, "codeversion")
    return options


@bp.get("/campaigns/")
@require_role("viewer")
def campaign_list() -> Any:
    """Every campaign of this study, newest first; an active one carries its forecast."""
    from turnout.services import campaigns

    st = state()
    rows = campaigns.list_campaigns(st.db)
    for row in rows:
        if row["active"]:
            row["forecast"] = campaigns.forecast(st.db, st.settings, st.clock, row["id"])
    return jsonify(rows)


@bp.post("/campaigns/")
@require_role("payer")
def campaign_create() -> Any:
    """Start a campaign (201), or with ``"preview": true`` answer its cost and change nothing."""
    from turnout.services import campaigns

    st = state()
    body = json_body()
    options = campaign_options(body)
    checked = campaigns.plan(st.db, st.settings, **options)
    if body.get("preview") is True:
        return jsonify({"preview": True, **checked.as_dict()})
    if checked.mode == "live" and body.get("confirm_live") is not True:
        raise InvalidInput('a live campaign posts real HITs every round without asking again; send '
                           '"confirm_live": true to start it')
    created = campaigns.create(st.db, st.settings, st.clock, actor=actor(), **options)
    return jsonify(created), 201


def _campaign_id(value: str) -> int:
    if not value.isdigit():
        raise InvalidInput(f"a campaign id is a whole number, got {value!r}")
    return int(value)


@bp.patch("/campaigns/<campaign_id>")
@require_role("payer")
def campaign_change(campaign_id: str) -> Any:
    """``{"goal": N}`` changes the goal; ``{"is_active": false, "expire_hits": true}`` cancels
    (and expires its open HITs, in the campaign's own mode)."""
    from turnout.services import campaigns

    number = _campaign_id(campaign_id)
    st = state()
    body = json_body()
    unknown = sorted(set(body) - {"goal", "is_active", "expire_hits"})
    if unknown or not body:
        raise InvalidInput("send goal, or is_active: false (with optional expire_hits)"
                           + (f"; unknown field(s): {', '.join(unknown)}" if unknown else ""))
    if "is_active" in body and body["is_active"] is not False:
        raise InvalidInput("is_active can only be set to false (cancelling); start a new campaign instead")
    if "expire_hits" in body and not isinstance(body["expire_hits"], bool):
        raise InvalidInput("expire_hits must be true or false")
    if "goal" in body and "is_active" in body:
        raise InvalidInput("change the goal or cancel, not both at once")
    if "goal" in body:
        return jsonify(campaigns.set_goal(st.db, number, body["goal"], clock=st.clock, actor=actor()))
    if "is_active" not in body:
        raise InvalidInput("expire_hits goes with is_active: false")
    done = campaigns.cancel(st.db, st.clock, number, actor=actor())
    done["expired"], done["expire_error"] = [], None
    if body.get("expire_hits") is True:
        # The cancel is stored either way; a marketplace that cannot be reached is reported
        # beside it (the HITs can still be expired from the HITs page), not as a failed cancel.
        try:
            done["expired"] = campaigns.expire_campaign_hits(market(done["mode"]), number)
        except TurnoutError as exc:
            done["expire_error"] = exc.message
    return jsonify(done)


@bp.get("/tasks/")
@require_role("viewer")
def task_list() -> Any:
    """Every scheduled task, running campaigns included (kind ``campaign``), and the runner."""
    from turnout.services import tasks

    st = state()
    return jsonify({"tasks": tasks.list_tasks(st.db), "runner": tasks.runner_status(st.db, st.clock)})


@bp.post("/tasks/")
@require_role("payer")
def task_create() -> Any:
    """``{"kind": "approve-all", "interval_minutes": 30, "mode", "codeversion"}`` → 201."""
    from turnout.services import tasks

    st = state()
    body = json_body()
    unknown = sorted(set(body) - {"kind", "interval_minutes", "mode", "codeversion", "confirm_live"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}")
    kind = body.get("kind", "approve-all")
    if not isinstance(kind, str):
        raise InvalidInput("kind must be a string")
    if body.get("interval_minutes") is None:
        raise InvalidInput("interval_minutes is required (at least 30)")
    mode = _text(body, "mode") or user_mode()
    if mode == "live" and body.get("confirm_live") is not True:
        raise InvalidInput('approving on a schedule in live mode pays real money without asking again; send '
                           '"confirm_live": true')
    created = tasks.add(st.db, st.settings, st.clock, kind, interval_minutes=body["interval_minutes"], mode=mode,
                        codeversion=_text(body, "codeversion"), actor=actor())
    return jsonify(created), 201


@bp.delete("/tasks/<task_id>")
@require_role("payer")
def task_delete(task_id: str) -> Any:
    from turnout.services import tasks

    if not task_id.isdigit():
        raise InvalidInput(f"a task id is a whole number, got {task_id!r}")
    st = state()
    return jsonify(tasks.remove(st.db, st.clock, int(task_id)))
