"""One round of a campaign: count what may still complete on its own HITs, post what the
goal and the budget allow in HITs of at most 9, and finish a round a crash cut short
(see ``campaigns`` for the rules and why). The runner calls ``run_round``."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from turnout.errors import InvalidInput, TurnoutError
from turnout.marketplace.port import FailureKind, MarketError
from turnout.services import audit
from turnout.services.campaign_records import (
    COMPLETED,
    DUE_SLACK,
    committed_spend,
    completed_count,
    end_campaign,
    hit_cost,
    job_id,
    masters_required,
    models,
    open_hit_ids,
    split,
)
from turnout.services.hits import expire_hits
from turnout.services.recruitment import MarketContext, money_str

__all__ = ["RoundResult", "run_round"]

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
        end_campaign(ctx.db, ctx.clock, campaign_id, reason)
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
        spent = committed_spend(session, M, campaign_id)
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
            end_campaign(ctx.db, ctx.clock, campaign_id, reason)
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
    if end_campaign(ctx.db, ctx.clock, campaign.id, reason):
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
