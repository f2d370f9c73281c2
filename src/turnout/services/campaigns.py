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
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from turnout.clock import Clock
from turnout.config import COMPLETED_STATUSES, MODES, Settings
from turnout.db.engine import Database
from turnout.db.scheduler_models import SchedulerModels
from turnout.errors import Conflict, InvalidInput, NotFound, TurnoutError
from turnout.marketplace.port import FailureKind, MarketError
from turnout.services import audit
from turnout.services.hits import LARGE_HIT, cost_estimate, expire_hits
from turnout.services.recruitment import MarketContext, money_str, parse_money

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
    raw = settings.raw
    if not raw.has_option("HIT Configuration", "require_master_workers"):
        return False
    try:
        return raw.boolean("HIT Configuration", "require_master_workers")
    except Exception:  # an invalid value is reported when a HIT is built
        return False


def hit_cost(assignments: int, reward: Decimal, masters: bool) -> Decimal:
    return cost_estimate(assignments, reward, masters=masters).total


def completed_count(db: Database, codeversion: str, mode: str) -> int:
    """Participants of this codeversion and mode who finished (statuses 3, 4, 5, 7)."""
    P = db.models.Participant
    with db.begin() as session:
        return int(session.scalar(select(func.count()).select_from(P).where(
            P.codeversion == codeversion, P.mode == mode, P.status.in_(COMPLETED_STATUSES))) or 0)


def _audit(db: Database, clock: Clock, actor: str, action: str, mode: str, campaign_id: int, /,
           **detail: Any) -> None:
    """An audit event for a campaign decision (creating one commits money; cancelling or a
    new goal changes what will be posted). No marketplace call is made, so none is named."""
    with db.begin() as session:
        session.add(db.models.AuditEvent(
            study=study_of(db), at=clock.now(), actor=actor[:128], action=action, mode=mode,
            marketplace=f"{mode} (no call)", target=job_id(campaign_id), outcome="ok",
            detail=json.dumps(detail, default=str, sort_keys=True) if detail else None))


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
    _audit(db, clock, actor, "campaign.create", checked.mode, campaign_id, **checked.as_dict())
    return get(db, campaign_id)


# --- reading ------------------------------------------------------------------------------


def _spent(session: Any, M: SchedulerModels, campaign_id: int) -> Decimal:
    """Rewards plus fees committed: every HIT posted, or planned and not definitely refused."""
    H = M.CampaignHit
    costs = session.scalars(select(H.cost).where(
        H.campaign_id == campaign_id, (H.hit_id.is_not(None)) | (H.closed_at.is_(None))))
    return sum((Decimal(c) for c in costs), Decimal("0.00"))


def _view(session: Any, db: Database, row: Any, completed: int | None = None) -> dict[str, Any]:
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
        "end_reason": row.end_reason, "rounds": row.rounds, "spent": money_str(_spent(session, M, row.id)),
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
        view = _view(session, db, row)
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
        views = [_view(session, db, row) for row in session.scalars(query)]
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


# --- ending, cancelling, changing the goal -----------------------------------------------------


def _end(db: Database, clock: Clock, campaign_id: int, reason: str) -> bool:
    """Mark the campaign ended (once); False if it had ended already."""
    C = models(db).Campaign
    with db.begin(immediate=True) as session:
        changed = session.execute(
            update(C).where(C.id == campaign_id, C.active_key.is_not(None))
            .values(active_key=None, ended_at=clock.now(), end_reason=reason[:2000], next_round_at=None)
            .execution_options(synchronize_session=False)).rowcount
    return changed == 1


def cancel(db: Database, clock: Clock, campaign_id: int, *, actor: str = "cli") -> dict[str, Any]:
    view = get(db, campaign_id)  # NotFound for another study's or an unknown id
    if not _end(db, clock, campaign_id, f"cancelled by {actor}"):
        raise Conflict(f"campaign {campaign_id} has already ended")
    _audit(db, clock, actor, "campaign.cancel", view["mode"], campaign_id, completed=view["completed"],
           goal=view["goal"])
    return get(db, campaign_id)


def open_hit_ids(db: Database, campaign_id: int) -> list[str]:
    H = models(db).CampaignHit
    with db.begin() as session:
        return [h for h in session.scalars(select(H.hit_id).where(
            H.campaign_id == campaign_id, H.hit_id.is_not(None), H.closed_at.is_(None)).order_by(H.id)) if h]


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

    _audit(db, clock or SystemClock(), actor, "campaign.goal", view["mode"], campaign_id, old=view["goal"], new=goal)
    return get(db, campaign_id)


# --- a round ---------------------------------------------------------------------------------


@dataclass
class RoundResult:
    """What one call of ``run_round`` did. ``outcome``: posted, nothing (no HIT needed),
    ended, skipped (not due, not active, or another runner has it), resumed, failed."""

    campaign_id: int
    outcome: str
    number: int | None = None
    completed: int = 0
    open: int = 0
    posted: list[int] = field(default_factory=list)
    hit_ids: list[str] = field(default_factory=list)
    calls: int = 0
    note: str = ""

    def counts(self) -> dict[str, Any]:
        return {"round": self.number, "completed": self.completed, "open": self.open,
                "posted": sum(self.posted), "hits": len(self.posted), "marketplace_calls": self.calls}


class _Counter:
    """Counts marketplace calls made through it (the benchmark reports calls per round)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.client, name)
        if not callable(target) or name in ("get_paginator", "meta", "can_paginate"):
            if name == "get_paginator":
                def paginator(operation: str) -> Any:
                    real = target(operation)
                    counter = self

                    class Counted:
                        def paginate(self, **params: Any) -> Any:
                            for page in real.paginate(**params):
                                counter.calls += 1
                                yield page

                    return Counted()
                return paginator
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return target(*args, **kwargs)

        return call


def _count_open(ctx: MarketContext, campaign_id: int, codeversion: str) -> tuple[int, list[str]]:
    """Assignments that may still complete on the campaign's own HITs, and HITs now closed.

    Per HIT: MaxAssignments minus those listed (Submitted, Approved, Rejected) = free slots
    plus accepted work in progress, whatever MTurk does with previews. An expired HIT's
    free slots no longer count. A HIT with nothing left open is closed, and later rounds
    stop asking about it. Participants who finished the task (status 3) but whose submit
    has not reached the marketplace yet are already counted as completed, so they are
    taken off the open count.
    """
    M = models(ctx.db)
    H, P = M.CampaignHit, ctx.db.models.Participant
    with ctx.db.begin() as session:
        rows = list(session.execute(select(H.id, H.hit_id).where(
            H.campaign_id == campaign_id, H.hit_id.is_not(None), H.closed_at.is_(None))))
    now = ctx.clock.now()
    total = 0
    closed: list[int] = []
    closed_hits: list[str] = []
    listed_ids: set[str] = set()
    live_hits: list[str] = []
    for row_id, hit_id in rows:
        try:
            hit = ctx.port.get_hit(hit_id)
            listed = list(ctx.port.assignments_for_hit(hit_id))
        except MarketError as exc:
            if exc.failure.kind != FailureKind.NOT_FOUND:
                raise
            closed.append(row_id)  # deleted (or disposed of) on the marketplace: nobody can come from it
            closed_hits.append(hit_id)
            continue
        listed_ids.update(a["AssignmentId"] for a in listed)
        maximum = int(hit.get("MaxAssignments", 0))
        available = int(hit.get("NumberOfAssignmentsAvailable", 0))
        expiration = hit.get("Expiration")
        expired = (expiration is not None and expiration <= now) or hit.get("HITStatus") in ("Reviewable",
                                                                                            "Reviewing", "Disposed")
        here = max(0, maximum - len(listed) - (available if expired else 0))
        if here == 0:
            closed.append(row_id)
            closed_hits.append(hit_id)
        else:
            live_hits.append(hit_id)
        total += here
    if live_hits:
        with ctx.db.begin() as session:
            finished = session.scalars(select(P.assignmentid).where(
                P.hitid.in_(live_hits), P.mode == ctx.mode, P.codeversion == codeversion, P.status == COMPLETED))
            total -= sum(1 for a in finished if a not in listed_ids)
    if closed:
        with ctx.db.begin(immediate=True) as session:
            session.execute(update(H).where(H.id.in_(closed)).values(closed_at=now)
                            .execution_options(synchronize_session=False))
    return max(0, total), closed_hits


def _affordable(sizes: Sequence[int], reward: Decimal, masters: bool, spent: Decimal,
                budget: Decimal | None) -> list[int]:
    """The HIT sizes that fit in what is left of the budget (the last one trimmed to fit)."""
    if budget is None:
        return list(sizes)
    left = budget - spent
    fitted: list[int] = []
    for size in sizes:
        n = size
        while n > 0 and hit_cost(n, reward, masters) > left:
            n -= 1
        if n == 0:
            break
        fitted.append(n)
        left -= hit_cost(n, reward, masters)
        if n < size:
            break
    return fitted


def _post(ctx: MarketContext, campaign: Any, hit_rows: list[tuple[int, str, int]], result: RoundResult) -> None:
    """CreateHIT for each planned HIT not yet posted, each with its own request key."""
    from turnout.services.hits import create_hit

    M = models(ctx.db)
    H, C = M.CampaignHit, M.Campaign
    for index, (row_id, key, size) in enumerate(hit_rows):
        with ctx.db.begin() as session:
            active = session.scalar(select(C.active_key).where(C.id == campaign.id)) is not None
        if not active:  # cancelled (or ended) while this round was posting: post no more of it
            with ctx.db.begin(immediate=True) as session:
                session.execute(update(H).where(H.id.in_([r for r, _, _ in hit_rows[index:]]))
                                .values(closed_at=ctx.clock.now()).execution_options(synchronize_session=False))
            result.note = (result.note + "; " if result.note else "") + "campaign ended while posting"
            return
        try:
            created = create_hit(ctx, max_assignments=size, reward=campaign.reward,
                                 duration_hours=campaign.duration_hours, request_key=key, confirm_live=True)
        except TurnoutError as exc:
            # hits.create_hit raises the bare TurnoutError only when the outcome is unknown.
            if type(exc) is not TurnoutError:  # definitely refused: not posted, not committed
                with ctx.db.begin(immediate=True) as session:
                    session.execute(update(H).where(H.id == row_id).values(closed_at=ctx.clock.now())
                                    .execution_options(synchronize_session=False))
            raise
        with ctx.db.begin(immediate=True) as session:
            session.execute(update(H).where(H.id == row_id).values(hit_id=created["hit_id"])
                            .execution_options(synchronize_session=False))
        result.posted.append(size)
        result.hit_ids.append(str(created["hit_id"]))


def _finish_round(ctx: MarketContext, round_id: int, note: str, state: str = "done") -> None:
    """Close the round; ``posted`` counts every HIT of it that reached the marketplace,
    including those posted before an interruption."""
    M = models(ctx.db)
    R, H = M.CampaignRound, M.CampaignHit
    with ctx.db.begin(immediate=True) as session:
        row = session.get(R, round_id)
        posted = session.scalar(select(func.coalesce(func.sum(H.assignments), 0)).where(
            H.campaign_id == row.campaign_id, H.round_number == row.number, H.hit_id.is_not(None)))
        row.state, row.finished_at, row.posted = state, ctx.clock.now(), int(posted or 0)
        row.note = note[:2000] or None


def _resume(ctx: MarketContext, campaign: Any, unfinished: Any, result: RoundResult) -> RoundResult:
    """Finish a round a crash cut short: post its planned HITs with their original keys
    (a HIT that did reach the marketplace answers HitAlreadyExists and counts as posted)."""
    H = models(ctx.db).CampaignHit
    with ctx.db.begin() as session:
        rows = [(r.id, r.request_key, r.assignments) for r in session.scalars(select(H).where(
            H.campaign_id == campaign.id, H.round_number == unfinished.number, H.hit_id.is_(None),
            H.closed_at.is_(None)).order_by(H.position))]
    result.outcome, result.number = "resumed", unfinished.number
    try:
        _post(ctx, campaign, rows, result)
    except TurnoutError as exc:
        result.outcome, result.note = "failed", exc.message
        return result
    _finish_round(ctx, unfinished.id, f"finished after an interruption: {len(rows)} HIT(s) posted then")
    return result


def run_round(ctx: MarketContext, campaign_id: int, *, force: bool = False) -> RoundResult:
    """One round of the campaign, if it is due (``force``: due or not).

    Safe to call from several runners at once and again after a crash: the round row
    (unique per campaign and number) is the claim, and it is written with the HITs it
    plans before any is posted.
    """
    counter = _Counter(ctx.client) if ctx.client is not None else None  # MTurk's client calls, for the bench
    if counter is not None:
        ctx = MarketContext(db=ctx.db, settings=ctx.settings, clock=ctx.clock, mode=ctx.mode, client=counter,
                            actor=ctx.actor)
    result = _run_round(ctx, campaign_id, force=force)
    result.calls = counter.calls if counter is not None else 0
    if result.outcome not in ("skipped",):
        audit.write(ctx, "campaign.round", outcome="failed" if result.outcome == "failed" else "ok",
                    target=job_id(campaign_id), round=result.number, result=result.outcome,
                    completed=result.completed, open=result.open, posted=sum(result.posted),
                    hits=result.hit_ids, note=result.note or None)
    return result


class _Taken(Exception):
    """Another runner claimed this round first."""


def _run_round(ctx: MarketContext, campaign_id: int, *, force: bool) -> RoundResult:
    M = models(ctx.db)
    C, R, H = M.Campaign, M.CampaignRound, M.CampaignHit
    result = RoundResult(campaign_id, "skipped")
    with ctx.db.begin() as session:
        campaign = session.get(C, campaign_id)
        if campaign is None or campaign.active_key is None:
            result.note = "not active"
            return result
        unfinished = session.scalar(select(R).where(R.campaign_id == campaign_id, R.state == "posting")
                                    .order_by(R.number).limit(1))
    if campaign.mode != ctx.mode:
        raise InvalidInput(f"campaign {campaign_id} is in mode {campaign.mode}; its rounds need a {campaign.mode} "
                           f"marketplace, not {ctx.mode}")
    now = ctx.clock.now()
    if ctx.settings.codeversion != campaign.codeversion:
        reason = (f"ended: the project's experiment_code_version changed from {campaign.codeversion} to "
                  f"{ctx.settings.codeversion}; a campaign recruits for one codeversion (start a new one)")
        _end(ctx.db, ctx.clock, campaign_id, reason)
        result.outcome, result.note = "ended", reason
        return result
    if unfinished is not None:
        return _resume(ctx, campaign, unfinished, result)
    if not force and campaign.next_round_at is not None and now < campaign.next_round_at - DUE_SLACK:
        result.note = f"next round at {campaign.next_round_at.isoformat()}"
        return result

    result.completed = completed_count(ctx.db, campaign.codeversion, campaign.mode)
    if result.completed >= campaign.goal:
        return _goal_reached(ctx, campaign, result)
    try:
        result.open, _ = _count_open(ctx, campaign_id, campaign.codeversion)
    except MarketError as exc:
        result.outcome, result.note = "failed", f"could not count open assignments: {exc.failure.text}"
        return result

    need = campaign.goal - result.completed - result.open
    wanted = split(min(need, campaign.per_round))
    reward = Decimal(campaign.reward)
    masters = masters_required(ctx.settings)
    budget = Decimal(campaign.budget) if campaign.budget else None
    with ctx.db.begin() as session:
        spent = _spent(session, M, campaign_id)
    sizes = _affordable(wanted, reward, masters, spent, budget)
    note = ""
    if need <= 0:
        note = f"{result.open} open assignment(s) can still reach the goal; nothing to post"
    elif len(sizes) < len(wanted) or sum(sizes) < sum(wanted):
        note = (f"budget ${campaign.budget}: ${money_str(spent)} committed, so {sum(sizes)} of "
                f"{sum(wanted)} assignment(s) posted")
        if not sizes and result.open == 0:
            reason = (f"ended: budget reached (${money_str(spent)} of ${campaign.budget} committed with fees) with "
                      f"{result.completed} of {campaign.goal} completed")
            _end(ctx.db, ctx.clock, campaign_id, reason)
            result.outcome, result.note = "ended", reason
            return result

    number = campaign.rounds + 1
    try:
        with ctx.db.begin(immediate=True) as session:
            claimed = session.execute(
                update(C).where(C.id == campaign_id, C.rounds == campaign.rounds, C.active_key.is_not(None))
                .values(rounds=number, next_round_at=now + timedelta(minutes=campaign.interval_minutes))
                .execution_options(synchronize_session=False)).rowcount
            if claimed != 1:
                raise _Taken
            row = R(campaign_id=campaign_id, number=number, state="posting" if sizes else "done", started_at=now,
                    finished_at=None if sizes else now, completed=result.completed, open=result.open,
                    planned=sum(sizes), posted=0, note=note or None)
            session.add(row)
            planned = []
            for position, size in enumerate(sizes, start=1):
                key = f"campaign:{campaign_id}:round:{number}:hit:{position}"
                hit = H(campaign_id=campaign_id, round_number=number, position=position, request_key=key,
                        assignments=size, cost=money_str(hit_cost(size, reward, masters)))
                session.add(hit)
                planned.append(hit)
            session.flush()
            round_id = row.id
            hit_rows = [(h.id, h.request_key, h.assignments) for h in planned]
    except (IntegrityError, _Taken):
        result.note = "another runner took this round"
        return result
    result.number = number
    if not sizes:
        result.outcome, result.note = "nothing", note
        return result
    try:
        _post(ctx, campaign, hit_rows, result)
    except TurnoutError as exc:
        result.outcome, result.note = "failed", exc.message
        return result
    note = "; ".join(part for part in (note, result.note) if part)
    _finish_round(ctx, round_id, note)
    result.outcome, result.note = "posted", note
    return result


def _goal_reached(ctx: MarketContext, campaign: Any, result: RoundResult) -> RoundResult:
    reason = f"goal reached: {result.completed} of {campaign.goal} completed"
    if _end(ctx.db, ctx.clock, campaign.id, reason):
        with contextlib.suppress(MarketError):
            _count_open(ctx, campaign.id, campaign.codeversion)  # closes the HITs with nothing left open
        leftovers = open_hit_ids(ctx.db, campaign.id)
        expired = expire_hits(ctx, leftovers) if leftovers else []
        failed = [e["message"] for e in expired if not e["ok"]]
        if failed:
            C = models(ctx.db).Campaign
            with ctx.db.begin(immediate=True) as session:
                session.execute(update(C).where(C.id == campaign.id).values(
                    end_reason=f"{reason}; could not expire: {'; '.join(failed)}"[:2000])
                    .execution_options(synchronize_session=False))
        result.hit_ids = [e["hit_id"] for e in expired if e["ok"]]
        result.note = reason + (f"; expired {len(result.hit_ids)} leftover HIT(s)" if expired else "")
    result.outcome = "ended"
    return result


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

