"""Campaigns: recruit to a goal of completed participants, in rounds, and stop exactly there.

A campaign names one codeversion and one mode, a goal, how many assignments a round may
post, the minutes between rounds, the HIT reward and duration, and an optional budget.
The runner calls ``run_round`` on schedule; everything that decides what a round does is
here, so the dashboard, the API, the CLI and the runner share one rule.

What psiTurk got wrong and this does not (PSITURK_FACTS §4.6, §10 items 2-4):

* open assignments are counted on the campaign's **own** HITs only, and as "may still
  complete": the HIT's free slots while it is live, plus accepted work not yet submitted,
  returned or abandoned. A worker who only previews takes no slot (MTurk counts previews
  in NumberOfAssignmentsPending: psiTurk's "always one short"), so Pending is never used;
* a round posts ``min(goal - completed - open, per_round)`` in HITs of at most 9 and never
  a zero or negative HIT, nor more than the budget (rewards plus MTurk's fees) allows;
* a round is written down before anything is posted, each HIT with a request key
  ``campaign:<id>:round:<n>:hit:<k>`` (so a deterministic UniqueRequestToken): a round cut
  short by a crash is finished by the next run, never posted again;
* at most one active campaign per study, codeversion and mode, held by a unique column;
* a changed codeversion ends the campaign, visibly, with the reason.

The tables and their views are ``campaign_records``, one round is ``campaign_rounds``;
their public names are importable from here, as before the split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from turnout.clock import Clock
from turnout.config import COMPLETED_STATUSES, MODES, Settings
from turnout.db.engine import Database
from turnout.errors import Conflict, InvalidInput
from turnout.services.campaign_records import (
    COMPLETED,
    DUE_SLACK,
    FORECAST_WINDOW,
    MAX_PER_HIT,
    active_campaign_ids,
    audit_decision,
    completed_count,
    end_campaign,
    get,
    hit_cost,
    job_id,
    list_campaigns,
    masters_required,
    models,
    open_hit_ids,
    split,
    study_of,
)
from turnout.services.campaign_rounds import RoundResult, run_round
from turnout.services.hits import expire_hits
from turnout.services.recruitment import MarketContext, money_str, parse_money

__all__ = ["COMPLETED", "DUE_SLACK", "FORECAST_WINDOW", "MAX_PER_HIT", "Plan", "RoundResult",
           "active_campaign_ids", "cancel", "completed_count", "create", "expire_campaign_hits", "forecast",
           "get", "hit_cost", "job_id", "list_campaigns", "masters_required", "models", "open_hit_ids",
           "plan", "rounds", "run_round", "set_goal", "split", "study_of"]

# --- validation and creation -------------------------------------------------------------


def _whole(value: Any, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a whole number, got {value!r}")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise InvalidInput(f"{what} must be a whole number, got {value!r}")
    if value < minimum:
        raise InvalidInput(f"{what} must be at least {minimum}, got {value}")
    return value


def _hours(value: Any) -> float:
    try:
        hours = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"the HIT duration must be a number of hours, got {value!r}") from None
    if not 0 < hours <= 24 * 365:
        raise InvalidInput(f"the HIT duration must be more than 0 hours (and at most a year), got {value!r}")
    return hours


@dataclass(frozen=True)
class Plan:
    """A checked campaign, before it is stored: what it would post and cost."""

    codeversion: str
    mode: str
    goal: int
    per_round: int
    interval_minutes: int
    reward: Decimal
    duration_hours: float
    budget: Decimal | None
    completed: int
    masters: bool
    first_round: list[int] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.goal - self.completed

    def first_round_cost(self) -> Decimal:
        return sum((hit_cost(n, self.reward, self.masters) for n in self.first_round), Decimal("0.00"))

    def full_cost(self) -> Decimal:
        """Rewards plus fees for the rest of the goal, posted in rounds of HITs of at most 9."""
        total = Decimal("0.00")
        left = self.remaining
        while left > 0:
            batch = min(left, self.per_round)
            total += sum((hit_cost(n, self.reward, self.masters) for n in split(batch)), Decimal("0.00"))
            left -= batch
        return total

    def as_dict(self) -> dict[str, Any]:
        return {"codeversion": self.codeversion, "mode": self.mode, "goal": self.goal,
                "per_round": self.per_round, "interval_minutes": self.interval_minutes,
                "reward": money_str(self.reward), "duration_hours": self.duration_hours,
                "budget": money_str(self.budget) if self.budget is not None else None,
                "completed": self.completed, "remaining": self.remaining, "first_round_hits": self.first_round,
                "first_round_cost": money_str(self.first_round_cost()), "full_cost": money_str(self.full_cost())}


def plan(db: Database, settings: Settings, *, goal: Any, per_round: Any, interval_minutes: Any, reward: Any,
         duration_hours: Any, budget: Any = None, mode: str | None = None,
         codeversion: str | None = None) -> Plan:
    """Check a campaign's settings, with specific errors, and work out its cost (no writes)."""
    mode = mode or settings.default_mode
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    codeversion = settings.codeversion if codeversion is None else codeversion.strip()
    if not codeversion or len(codeversion) > 128:
        raise InvalidInput("the codeversion must be 1 to 128 characters (experiment_code_version)")
    goal = _whole(goal, "the goal")
    per_round = _whole(per_round, "the assignments per round")
    interval = _whole(interval_minutes, "the minutes between rounds")
    amount = parse_money(reward, what="the HIT reward", allow_zero=True)
    hours = _hours(duration_hours)
    completed = completed_count(db, codeversion, mode)
    if goal <= completed:
        raise InvalidInput(f"the goal must exceed the {completed} participant(s) already complete for "
                           f"codeversion {codeversion} in mode {mode}; got {goal}")
    masters = masters_required(settings)
    found = Plan(codeversion, mode, goal, per_round, interval, amount, hours, None, completed, masters,
                 split(min(goal - completed, per_round)))
    if budget is not None and budget != "":
        limit = parse_money(budget, what="the budget")
        first = found.first_round[0]
        one = hit_cost(first, amount, masters)
        if limit < one:
            raise InvalidInput(f"a budget of ${money_str(limit)} does not cover one HIT of {first} assignment(s) "
                               f"at ${money_str(amount)} (${money_str(one)} with MTurk's fees)")
        found = Plan(codeversion, mode, goal, per_round, interval, amount, hours, limit, completed, masters,
                     found.first_round)
    return found


def create(db: Database, settings: Settings, clock: Clock, *, actor: str = "cli", **options: Any) -> dict[str, Any]:
    """Store a new active campaign; its first round is due at once.

    The database refuses a second active campaign for the same codeversion and mode (the
    unique ``active_key``), so two people creating one at the same moment get one each
    way: one campaign and one clear Conflict.
    """
    checked = plan(db, settings, **options)
    M = models(db)
    study = study_of(db)
    now = clock.now()
    key = f"{study}|{checked.codeversion}|{checked.mode}"
    try:
        with db.begin(immediate=True) as session:
            row = M.Campaign(study=study, codeversion=checked.codeversion, mode=checked.mode, goal=checked.goal,
                             per_round=checked.per_round, interval_minutes=checked.interval_minutes,
                             reward=money_str(checked.reward), duration_hours=checked.duration_hours,
                             budget=money_str(checked.budget) if checked.budget is not None else None,
                             active_key=key, created_at=now, created_by=actor[:128], next_round_at=now, rounds=0)
            session.add(row)
            session.flush()
            campaign_id = row.id
    except IntegrityError:
        with db.begin() as session:
            other = session.scalar(select(M.Campaign.id).where(M.Campaign.active_key == key))
        raise Conflict(f"campaign {other} is already active for codeversion {checked.codeversion} in mode "
                       f"{checked.mode}; cancel it first (turnout campaign cancel {other})",
                       campaign_id=other) from None
    audit_decision(db, clock, actor, "campaign.create", checked.mode, campaign_id, **checked.as_dict())
    return get(db, campaign_id)


def cancel(db: Database, clock: Clock, campaign_id: int, *, actor: str = "cli") -> dict[str, Any]:
    view = get(db, campaign_id)  # NotFound for another study's or an unknown id
    if not end_campaign(db, clock, campaign_id, f"cancelled by {actor}"):
        raise Conflict(f"campaign {campaign_id} has already ended")
    audit_decision(db, clock, actor, "campaign.cancel", view["mode"], campaign_id, completed=view["completed"],
           goal=view["goal"])
    return get(db, campaign_id)


def expire_campaign_hits(ctx: MarketContext, campaign_id: int) -> list[dict[str, Any]]:
    """Expire the campaign's HITs that may still take workers (accepted work can still be
    submitted, as on MTurk); in the campaign's own mode only."""
    view = get(ctx.db, campaign_id)
    if view["mode"] != ctx.mode:
        raise InvalidInput(f"campaign {campaign_id} is in mode {view['mode']}, not {ctx.mode}")
    return expire_hits(ctx, open_hit_ids(ctx.db, campaign_id))


def set_goal(db: Database, campaign_id: int, goal: Any, *, clock: Clock | None = None,
             actor: str = "cli") -> dict[str, Any]:
    """Change a running campaign's goal; it must exceed those already complete (for the
    campaign's own codeversion and mode, not the dashboard's current ones)."""
    view = get(db, campaign_id)
    if not view["active"]:
        raise Conflict(f"campaign {campaign_id} has ended ({view['end_reason']}); start a new one instead")
    goal = _whole(goal, "the goal")
    if goal <= view["completed"]:
        raise InvalidInput(f"the goal must exceed the {view['completed']} participant(s) already complete for "
                           f"codeversion {view['codeversion']} in mode {view['mode']}; got {goal}")
    C = models(db).Campaign
    with db.begin(immediate=True) as session:
        changed = session.execute(update(C).where(C.id == campaign_id, C.active_key.is_not(None))
                                  .values(goal=goal).execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise Conflict(f"campaign {campaign_id} ended meanwhile")
    from turnout.clock import SystemClock

    audit_decision(db, clock or SystemClock(), actor, "campaign.goal", view["mode"], campaign_id, old=view["goal"], new=goal)
    return get(db, campaign_id)


# --- forecast ----------------------------------------------------------------------------------


def forecast(db: Database, settings: Settings, clock: Clock, campaign_id: int,
             window: timedelta = FORECAST_WINDOW) -> dict[str, Any]:
    """When the goal will be reached at the recent completion rate, and what it will cost.

    The rate is completions (endhit) of the campaign's codeversion and mode in the last
    ``window`` (or since the campaign began, if later); the cost is what is committed so
    far plus the rest of the goal in HITs of at most 9, with fees.
    """
    view = get(db, campaign_id)
    P = db.models.Participant
    now = clock.now()
    with db.begin() as session:
        row = session.get(models(db).Campaign, campaign_id)
        since = max(now - window, row.created_at)
        recent = int(session.scalar(select(func.count()).select_from(P).where(
            P.codeversion == row.codeversion, P.mode == row.mode, P.status.in_(COMPLETED_STATUSES),
            P.endhit >= since)) or 0)
        H = models(db).CampaignHit
        posted_hits = list(session.execute(select(H.hit_id, H.assignments).where(
            H.campaign_id == campaign_id, H.hit_id.is_not(None))))
        done_here = int(session.scalar(select(func.count()).select_from(P).where(
            P.hitid.in_([h for h, _ in posted_hits] or [""]), P.status.in_(COMPLETED_STATUSES))) or 0)
    # Posted and not (yet) completed: an estimate of what may still complete (returns and
    # abandons are counted by the next round, against the marketplace).
    in_flight = max(0, sum(n for _, n in posted_hits) - done_here)
    hours = max((now - since).total_seconds() / 3600, 1 / 60)
    rate = recent / hours
    remaining = max(0, view["goal"] - view["completed"])
    reward = Decimal(view["reward"])
    masters = masters_required(settings)
    more = Decimal("0.00")
    left = max(0, remaining - in_flight)
    while left > 0:
        batch = min(left, view["per_round"])
        more += sum((hit_cost(n, reward, masters) for n in split(batch)), Decimal("0.00"))
        left -= batch
    eta: datetime | None = None
    if remaining == 0:
        eta = now
    elif rate > 0:
        eta = now + timedelta(hours=remaining / rate)
    return {"campaign_id": campaign_id, "completed": view["completed"], "goal": view["goal"],
            "remaining": remaining, "in_flight": in_flight, "rate_per_hour": round(rate, 3), "window_hours": round(hours, 3),
            "eta": eta.isoformat() if eta else None, "spent": view["spent"], "to_commit": money_str(more),
            "total_cost": money_str(Decimal(view["spent"]) + more)}


def rounds(db: Database, campaign_id: int) -> list[dict[str, Any]]:
    """The campaign's rounds, oldest first, with the HITs each posted."""
    M = models(db)
    R, H = M.CampaignRound, M.CampaignHit
    with db.begin() as session:
        found = list(session.scalars(select(R).where(R.campaign_id == campaign_id).order_by(R.number)))
        hits: dict[int, list[dict[str, Any]]] = {}
        for h in session.scalars(select(H).where(H.campaign_id == campaign_id).order_by(H.round_number, H.position)):
            hits.setdefault(h.round_number, []).append({"hit_id": h.hit_id, "assignments": h.assignments,
                                                        "cost": h.cost, "closed": h.closed_at is not None})
    return [{"number": r.number, "state": r.state, "started": r.started_at.isoformat(),
             "finished": r.finished_at.isoformat() if r.finished_at else None, "completed": r.completed,
             "open": r.open, "planned": r.planned, "posted": r.posted, "note": r.note,
             "hits": hits.get(r.number, [])} for r in found]

