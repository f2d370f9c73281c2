"""One assignment or one HIT at a time: approve, reject, unreject, bonus; expire, extend,
approve all, delete. Each runs inline through the same services (and the same ledger) as
the batches. In live mode a money action needs ``"confirm_live": true`` in the body."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from turnout.api.blueprint import bp
from turnout.api.views import json_body
from turnout.dashboard.auth import require_role
from turnout.dashboard.market import market
from turnout.errors import InvalidInput
from turnout.services import hits, payments


def _int_or_none(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{key} must be a whole number, got {value!r}") from None


@bp.post("/assignments/<assignment_id>/<operation>")
@require_role("payer")
def assignment_operation(assignment_id: str, operation: str) -> Any:
    body = json_body()
    confirm = body.get("confirm_live") is True
    ctx = market()
    if operation == "approve":
        result = payments.approve(ctx, [assignment_id], confirm_live=confirm)
    elif operation == "reject":
        feedback = body.get("feedback")
        if feedback is not None and not isinstance(feedback, str):
            raise InvalidInput("feedback must be text")
        result = payments.reject(ctx, [assignment_id], feedback=feedback, confirm_live=confirm)
    elif operation == "unreject":
        result = payments.unreject(ctx, [assignment_id], confirm_live=confirm)
    elif operation == "bonus":
        amount = body.get("amount", payments.AUTO)
        if not isinstance(amount, str):
            raise InvalidInput('amount must be a string like "1.25" or "auto"')
        result = payments.bonus(ctx, [assignment_id], amount=amount, reason=str(body.get("reason") or ""),
                                confirm_live=confirm)
    else:
        raise InvalidInput(f"unknown operation {operation!r}; use approve, reject, unreject or bonus")
    return jsonify(result.as_dict())


@bp.post("/hits/<hit_id>/<operation>")
@require_role("payer")
def hit_operation(hit_id: str, operation: str) -> Any:
    body = json_body()
    confirm = body.get("confirm_live") is True
    ctx = market()
    if operation == "expire":
        return jsonify(hits.expire_hits(ctx, [hit_id])[0])
    if operation == "delete":
        return jsonify(hits.delete_hits(ctx, [hit_id])[0])
    if operation == "extend":
        return jsonify(hits.extend_hit(ctx, hit_id, assignments=_int_or_none(body, "assignments"),
                                       minutes=_int_or_none(body, "minutes"), confirm_live=confirm))
    if operation == "approve_all":
        return jsonify(payments.approve_hit(ctx, hit_id, confirm_live=confirm).as_dict())
    raise InvalidInput(f"unknown operation {operation!r}; use expire, extend, approve_all or delete")
