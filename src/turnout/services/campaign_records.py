"""What a campaign is in the database: its tables, its view for the pages and the API,
reading, ending, and the money it has committed (the part ``campaigns`` and
``campaign_rounds`` share)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update

from turnout.clock import Clock
from turnout.config import COMPLETED_STATUSES, Settings
from turnout.db.engine import Database
from turnout.db.scheduler_models import SchedulerModels
from turnout.errors import NotFound
from turnout.services.hits import LARGE_HIT, cost_estimate
from turnout.services.recruitment import money_str

__all__ = ["COMPLETED", "DUE_SLACK", "FORECAST_WINDOW", "MAX_PER_HIT", "active_campaign_ids",
           "audit_decision", "campaign_view", "committed_spend", "completed_count", "end_campaign", "get",
           "hit_cost", "job_id", "list_campaigns", "masters_required", "models", "open_hit_ids", "split",
           "study_of"]

MAX_PER_HIT = LARGE_HIT - 1  # 9: MTurk's fee is 20% below ten assignments, 40% from ten
# APScheduler fires on its own clock; a round counts as due this much before its time.
DUE_SLACK = timedelta(seconds=30)
COMPLETED = 3  # status COMPLETED: finished the task, not yet submitted on the marketplace
FORECAST_WINDOW = timedelta(hours=24)


def models(db: Database) -> SchedulerModels:
    found = db.models.scheduling
    if found is None:  # pragma: no cover - build_models always sets it
        raise RuntimeError("the scheduling tables are not mapped")
    return found


def study_of(db: Database) -> str:
    return db.tables.participants


def split(assignments: int) -> list[int]:
    """HIT sizes for ``assignments``: nines, then the rest; never a HIT of zero."""
    if assignments <= 0:
        return []
    sizes = [MAX_PER_HIT] * (assignments // MAX_PER_HIT)
    if assignments % MAX_PER_HIT:
        sizes.append(assignments % MAX_PER_HIT)
    return sizes


def masters_required(settings: Settings) -> bool:
    """Masters add 5% to MTurk's fee, so cost previews must know."""
    return settings.hit.require_master_workers


def hit_cost(assignments: int, reward: Decimal, masters: bool) -> Decimal:
    return cost_estimate(assignments, reward, masters=masters).total


def completed_count(db: Database, codeversion: str, mode: str) -> int:
    """Participants of this codeversion and mode who finished (statuses 3, 4, 5, 7)."""
    P = db.models.Participant
    with db.begin() as session:
        return int(session.scalar(select(func.count()).select_from(P).where(
            P.codeversion == codeversion, P.mode == mode, P.status.in_(COMPLETED_STATUSES))) or 0)


def audit_decision(db: Database, clock: Clock, actor: str, action: str, mode: str, campaign_id: int, /,
           **detail: Any) -> None:
    """An audit event for a campaign decision (creating one commits money; cancelling or a
    new goal changes what will be posted). No marketplace call is made, so none is named."""
    with db.begin() as session:
        session.add(db.models.AuditEvent(
            study=study_of(db), at=clock.now(), actor=actor[:128], action=action, mode=mode,
            marketplace=f"{mode} (no call)", target=job_id(campaign_id), outcome="ok",
            detail=json.dumps(detail, default=str, sort_keys=True) if detail else None))


# --- reading ------------------------------------------------------------------------------


def committed_spend(session: Any, M: SchedulerModels, campaign_id: int) -> Decimal:
    """Rewards plus fees committed: every HIT posted, or planned and not definitely refused."""
    H = M.CampaignHit
    costs = session.scalars(select(H.cost).where(
        H.campaign_id == campaign_id, (H.hit_id.is_not(None)) | (H.closed_at.is_(None))))
    return sum((Decimal(c) for c in costs), Decimal("0.00"))


def campaign_view(session: Any, db: Database, row: Any, completed: int | None = None) -> dict[str, Any]:
    M = models(db)
    R = M.CampaignRound
    last = session.scalar(select(R).where(R.campaign_id == row.id).order_by(R.number.desc()).limit(1))
    done = completed if completed is not None else None
    return {
        "id": row.id, "codeversion": row.codeversion, "mode": row.mode, "goal": row.goal,
        "completed": done, "open": last.open if last is not None and row.active_key is not None else 0,
        "active": row.active_key is not None,
        "created": row.created_at.isoformat(),
        "ended": row.ended_at.isoformat() if row.ended_at else None,
        "end_reason": row.end_reason, "rounds": row.rounds, "spent": money_str(committed_spend(session, M, row.id)),
        "per_round": row.per_round, "interval_minutes": row.interval_minutes, "reward": row.reward,
        "duration_hours": row.duration_hours, "budget": row.budget,
        "next_round": row.next_round_at.isoformat() if row.next_round_at and row.active_key else None,
        "job_id": job_id(row.id),
    }


def job_id(campaign_id: int) -> str:
    return f"campaign-{campaign_id}"


def get(db: Database, campaign_id: int) -> dict[str, Any]:
    M = models(db)
    with db.begin() as session:
        row = session.get(M.Campaign, campaign_id)
        if row is None or row.study != study_of(db):
            raise NotFound(f"no campaign {campaign_id} in this study (see turnout campaign list)")
        view = campaign_view(session, db, row)
    view["completed"] = completed_count(db, view["codeversion"], view["mode"])
    return view


def list_campaigns(db: Database, *, active: bool | None = None) -> list[dict[str, Any]]:
    """This study's campaigns, newest first, with live completed counts."""
    M = models(db)
    C = M.Campaign
    query = select(C).where(C.study == study_of(db)).order_by(C.id.desc())
    if active is True:
        query = query.where(C.active_key.is_not(None))
    elif active is False:
        query = query.where(C.active_key.is_(None))
    with db.begin() as session:
        views = [campaign_view(session, db, row) for row in session.scalars(query)]
    counts: dict[tuple[str, str], int] = {}
    for view in views:
        scope = (view["codeversion"], view["mode"])
        if scope not in counts:
            counts[scope] = completed_count(db, *scope)
        view["completed"] = counts[scope]
    return views


def active_campaign_ids(db: Database) -> list[int]:
    C = models(db).Campaign
    with db.begin() as session:
        return list(session.scalars(select(C.id).where(C.study == study_of(db), C.active_key.is_not(None))
                                    .order_by(C.id)))


# --- ending a campaign ------------------------------------------------------------------------


def end_campaign(db: Database, clock: Clock, campaign_id: int, reason: str) -> bool:
    """Mark the campaign ended (once); False if it had ended already."""
    C = models(db).Campaign
    with db.begin(immediate=True) as session:
        changed = session.execute(
            update(C).where(C.id == campaign_id, C.active_key.is_not(None))
            .values(active_key=None, ended_at=clock.now(), end_reason=reason[:2000], next_round_at=None)
            .execution_options(synchronize_session=False)).rowcount
    return changed == 1


def open_hit_ids(db: Database, campaign_id: int) -> list[str]:
    H = models(db).CampaignHit
    with db.begin() as session:
        return [h for h in session.scalars(select(H.hit_id).where(
            H.campaign_id == campaign_id, H.hit_id.is_not(None), H.closed_at.is_(None)).order_by(H.id)) if h]
