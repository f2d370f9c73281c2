"""The audit trail: one row per HIT or money action, whoever triggered it.

Written in the same transaction as the outcome it describes, so the trail can never
claim a payment the ledger does not hold (or miss one it does). The dashboard, the API
and the CLI read it through ``list_events``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnout.services.recruitment import MarketContext

OUTCOMES = ("ok", "failed", "unknown", "refused", "noop", "partial")


def record(session: Session, ctx: MarketContext, action: str, *, outcome: str, target: str | None = None,
           ledger_id: int | None = None, **detail: Any) -> Any:
    """Add an audit event to ``session`` (the caller's transaction commits it)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    event = ctx.db.models.AuditEvent(
        study=ctx.study, at=ctx.clock.now(), actor=ctx.actor[:128], action=action[:64], mode=ctx.mode,
        marketplace=ctx.marketplace, target=target[:128] if target else None, outcome=outcome,
        ledger_id=ledger_id, detail=json.dumps(detail, default=str, sort_keys=True) if detail else None,
    )
    session.add(event)
    return event


def write(ctx: MarketContext, action: str, *, outcome: str, target: str | None = None,
          ledger_id: int | None = None, **detail: Any) -> None:
    """Record an event in its own transaction (for actions with no other local write)."""
    with ctx.db.begin() as session:
        record(session, ctx, action, outcome=outcome, target=target, ledger_id=ledger_id, **detail)


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    actor: str
    action: str
    mode: str
    marketplace: str
    target: str | None
    outcome: str
    ledger_id: int | None
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor, "action": self.action,
                "mode": self.mode, "marketplace": self.marketplace, "target": self.target,
                "outcome": self.outcome, "ledger_id": self.ledger_id, "detail": self.detail}


def list_events(ctx: MarketContext, *, limit: int = 100, before_id: int | None = None,
                action: str | None = None, mode: str | None = None,
                target: str | None = None) -> list[AuditView]:
    """Newest first, one page at a time (keyset on id); optionally one action/mode/target."""
    A = ctx.db.models.AuditEvent
    query = select(A).where(A.study == ctx.study).order_by(A.id.desc()).limit(max(1, min(limit, 1000)))
    if before_id is not None:
        query = query.where(A.id < before_id)
    if action is not None:
        query = query.where(A.action == action)
    if mode is not None:
        query = query.where(A.mode == mode)
    if target is not None:
        query = query.where(A.target == target)
    with ctx.db.begin() as session:
        rows = list(session.scalars(query))
    return [AuditView(r.id, r.at, r.actor, r.action, r.mode, r.marketplace, r.target, r.outcome, r.ledger_id,
                      json.loads(r.detail) if r.detail else {}) for r in rows]
