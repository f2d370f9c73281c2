"""Batch actions: one action over one selection, previewed, then run in the background.

``ACTIONS`` names what can be done in bulk (approve all, bonus all by the auto method,
expire / approve / delete all HITs). ``preview`` says how many, what it costs with MTurk's
fees and on which marketplace, and changes nothing. ``start`` stores the batch and its
items in the database and runs them in a background thread of this process, which holds
a lease on the batch row and renews it item by item. If the process dies, the lease runs
out, and the next process that looks at the batch (``get``) takes it over and goes on
from the first unfinished item.

Every money item goes through the payments ledger (``payments.approve`` / ``payments.bonus``),
whose idempotency keys make a second run, a double click, a reload or two people at once
pay nothing more: those items come back "already approved" / "already bonused" and are
reported as skipped.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, update

from turnout.db.dashboard_models import Batch, BatchItem
from turnout.errors import Forbidden, InvalidInput, NotFound, TurnoutError
from turnout.services import hits, payments
from turnout.services.recruitment import MarketContext, money_str

log = logging.getLogger("turnout.batches")

LEASE = timedelta(seconds=60)
BONUS_FEE = Decimal("0.20")


@dataclass(frozen=True)
class Target:
    target: str  # an assignment id or a HIT id
    worker_id: str | None = None
    amount: Decimal | None = None  # what this item pays (reward or bonus), before fees
    fee: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class Action:
    name: str
    kind: str  # "assignment" or "hit"
    money: bool
    select: Callable[[MarketContext, str, dict[str, Any]], list[Target]]
    run: Callable[[MarketContext, Any, dict[str, Any]], tuple[str, str, int | None]]


def _fee(amount: Decimal, rate: Decimal) -> Decimal:
    if amount <= 0:
        return Decimal("0.00")
    return max(Decimal("0.01"), (amount * rate).quantize(Decimal("0.01")))


def _hit_rewards(ctx: MarketContext, hit_ids: list[str]) -> dict[str, tuple[Decimal, int]]:
    R = ctx.db.models.HitRecord
    found: dict[str, tuple[Decimal, int]] = {}
    with ctx.db.begin() as session:
        for start in range(0, len(hit_ids), 500):
            for hit_id, reward, size in session.execute(select(R.hit_id, R.reward, R.max_assignments).where(
                    R.mode == ctx.mode, R.hit_id.in_(hit_ids[start:start + 500]))):
                found[hit_id] = (Decimal(reward), int(size))
    return found


def _submitted(ctx: MarketContext, version: str, *, by_participant_version: bool) -> list[Target]:
    hit_ids = payments.scope_hit_ids(ctx, version)
    rows = hits.list_assignments(ctx, hit_ids=hit_ids, status="Submitted") if hit_ids else []
    if by_participant_version:
        rows = [r for r in rows if r["codeversion"] in (None, version)]
    rewards = _hit_rewards(ctx, list({r["hitId"] for r in rows}))
    out = []
    for r in rows:
        reward, size = rewards.get(r["hitId"], (None, 0))
        fee = _fee(reward, Decimal("0.40") if size >= 10 else Decimal("0.20")) if reward is not None \
            else Decimal("0.00")
        out.append(Target(r["assignmentId"], r["workerId"], reward, fee))
    return out


def _select_approve_all(ctx: MarketContext, version: str, _params: dict[str, Any]) -> list[Target]:
    """Every Submitted assignment of this study's HITs in this mode and codeversion."""
    return _submitted(ctx, version, by_participant_version=True)


def _select_hit_approve_all(ctx: MarketContext, version: str, _params: dict[str, Any]) -> list[Target]:
    """Every Submitted assignment on this study's HITs of this mode and codeversion
    (psiTurk's "approve all workers for all HITs": also those with no local row)."""
    return _submitted(ctx, version, by_participant_version=False)


def _select_bonus_all(ctx: MarketContext, version: str, _params: dict[str, Any]) -> list[Target]:
    """Each approved participant of this mode and codeversion with a ``bonus`` to pay and
    no bonus paid yet (the auto method: the amount is the participant's bonus column)."""
    hit_ids = payments.scope_hit_ids(ctx, version)
    rows = hits.list_assignments(ctx, hit_ids=hit_ids, status="Approved") if hit_ids else []
    out = []
    for r in rows:
        if r["codeversion"] not in (None, version) or r["uniqueid"] is None or r["bonuses_paid"]:
            continue
        try:
            amount = payments.auto_amount(_float_or_none(r["bonus"]))
        except InvalidInput:
            amount = None
        if amount is None:
            continue
        out.append(Target(r["assignmentId"], r["workerId"], amount, _fee(amount, BONUS_FEE)))
    return out


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _scope_hits(ctx: MarketContext, version: str, **filters: bool) -> list[dict[str, Any]]:
    mine = set(payments.scope_hit_ids(ctx, version))
    return [h for h in hits.list_hits(ctx, **filters) if h["hitid"] in mine]


def _select_expire_all(ctx: MarketContext, version: str, _params: dict[str, Any]) -> list[Target]:
    return [Target(h["hitid"]) for h in _scope_hits(ctx, version, active=True)]


def _select_delete_all(ctx: MarketContext, version: str, _params: dict[str, Any]) -> list[Target]:
    """The HITs MTurk lets go: Reviewable, with nothing left to review."""
    return [Target(h["hitid"]) for h in _scope_hits(ctx, version, reviewable=True)
            if h["number_submissions_needing_action"] == 0]


def _payment_outcome(result: payments.BatchResult) -> tuple[str, str, int | None]:
    if not result.items:
        return "skipped", "nothing to do", None
    item = result.items[0]
    state = {"ok": "done", "already": "skipped", "skipped": "skipped"}.get(item.outcome, "failed")
    message = item.message
    if item.outcome == "busy":
        message += "; it will be finished by `turnout ledger settle` or the next run"
    return state, message, item.ledger_id


def _run_approve(ctx: MarketContext, item: Any, _params: dict[str, Any]) -> tuple[str, str, int | None]:
    return _payment_outcome(payments.approve(ctx, [item.target], confirm_live=True))


def _run_bonus(ctx: MarketContext, item: Any, params: dict[str, Any]) -> tuple[str, str, int | None]:
    return _payment_outcome(payments.bonus(ctx, [item.target], amount=payments.AUTO, reason=params["reason"],
                                           confirm_live=True))


def _hit_outcome(results: list[dict[str, Any]]) -> tuple[str, str, int | None]:
    if not results:
        return "skipped", "nothing to do", None
    r = results[0]
    return ("done" if r["ok"] else "failed"), r["message"], None


def _run_expire(ctx: MarketContext, item: Any, _params: dict[str, Any]) -> tuple[str, str, int | None]:
    return _hit_outcome(hits.expire_hits(ctx, [item.target]))


def _run_delete(ctx: MarketContext, item: Any, _params: dict[str, Any]) -> tuple[str, str, int | None]:
    return _hit_outcome(hits.delete_hits(ctx, [item.target]))


ACTIONS: dict[str, Action] = {
    "assignments.approve_all": Action("assignments.approve_all", "assignment", True, _select_approve_all,
                                      _run_approve),
    "assignments.bonus_all": Action("assignments.bonus_all", "assignment", True, _select_bonus_all, _run_bonus),
    "hits.approve_all": Action("hits.approve_all", "assignment", True, _select_hit_approve_all, _run_approve),
    "hits.expire_all": Action("hits.expire_all", "hit", False, _select_expire_all, _run_expire),
    "hits.delete_all": Action("hits.delete_all", "hit", False, _select_delete_all, _run_delete),
}


def _action(name: str) -> Action:
    try:
        return ACTIONS[name]
    except KeyError:
        raise NotFound(f"no batch action {name!r}") from None


def check_params(action: Action, params: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if action.name == "assignments.bonus_all":
        reason = params.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("bonus_all needs a reason (MTurk shows it to the worker)")
        if len(reason) > 1024:
            raise InvalidInput("the reason must be at most 1024 characters")
        clean["reason"] = reason.strip()
    return clean


def preview(ctx: MarketContext, name: str, *, codeversion: str, params: dict[str, Any]) -> dict[str, Any]:
    """What the batch would do, without doing it: ``{"count","reward","fees","total","marketplace"}``."""
    action = _action(name)
    check_params(action, params)
    targets = action.select(ctx, codeversion, params)
    reward = sum((t.amount or Decimal("0.00") for t in targets), Decimal("0.00"))
    fees = sum((t.fee for t in targets), Decimal("0.00"))
    return {"action": name, "mode": ctx.mode, "codeversion": codeversion, "count": len(targets),
            "reward": money_str(reward), "fees": money_str(fees), "total": money_str(reward + fees),
            "marketplace": ctx.marketplace}


# --- running ------------------------------------------------------------------------------

def _owner() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


_threads: dict[str, threading.Thread] = {}
_threads_lock = threading.Lock()


def start(ctx: MarketContext, name: str, *, codeversion: str, params: dict[str, Any],
          confirm_live: bool, opener: Callable[[str], MarketContext]) -> dict[str, Any]:
    """Store the batch and its items and run it in the background; returns ``{"batch_id"}``.

    A batch of the same action, mode and codeversion still running is returned instead of
    a second one (a double click or two people at once). ``opener(mode)`` gives the
    background thread its own context.
    """
    action = _action(name)
    clean = check_params(action, params)
    if action.money and ctx.mode == "live" and not confirm_live:
        raise Forbidden("this pays real money in live mode; confirm it (send \"confirm_live\": true)")
    study = ctx.study
    with ctx.db.begin() as session:
        running = session.scalar(select(Batch.id).where(
            Batch.study == study, Batch.mode == ctx.mode, Batch.action == name,
            Batch.codeversion == codeversion, Batch.state == "running"))
    if running is not None:
        resume_if_orphaned(ctx, running, opener)
        return {"batch_id": running, "already_running": True}
    targets = action.select(ctx, codeversion, clean)
    batch_id = uuid.uuid4().hex
    owner = _owner()
    now = ctx.clock.now()
    with ctx.db.begin(immediate=True) as session:
        session.add(Batch(id=batch_id, study=study, mode=ctx.mode, codeversion=codeversion, action=name,
                          params=json.dumps(clean), state="running", total=len(targets), actor=ctx.actor,
                          created_at=now, lease_owner=owner, lease_until=now + LEASE))
        session.add_all(BatchItem(batch_id=batch_id, target=t.target, worker_id=t.worker_id,
                                  amount=money_str(t.amount) if t.amount is not None else None, state="pending")
                        for t in targets)
    _spawn(batch_id, owner, ctx.mode, opener)
    return {"batch_id": batch_id, "already_running": False}


def _spawn(batch_id: str, owner: str, mode: str, opener: Callable[[str], MarketContext]) -> None:
    def work() -> None:
        try:
            run(opener(mode), batch_id, owner)
        except Exception:  # the lease runs out and another process resumes
            log.exception("batch %s stopped", batch_id)

    thread = threading.Thread(target=work, name=f"batch-{batch_id[:8]}", daemon=True)
    with _threads_lock:
        _threads[batch_id] = thread
    thread.start()


def _renew(ctx: MarketContext, batch_id: str, owner: str) -> bool:
    with ctx.db.begin(immediate=True) as session:
        return bool(session.execute(update(Batch).where(Batch.id == batch_id, Batch.lease_owner == owner)
                                    .values(lease_until=ctx.clock.now() + LEASE)
                                    .execution_options(synchronize_session=False)).rowcount)


def run(ctx: MarketContext, batch_id: str, owner: str) -> None:
    """Work through the batch's pending items while holding its lease (inline or in a thread)."""
    with ctx.db.begin() as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise NotFound(f"no batch {batch_id!r}")
        action, params = _action(batch.action), json.loads(batch.params or "{}")
    while _renew(ctx, batch_id, owner):
        with ctx.db.begin() as session:
            item = session.scalar(select(BatchItem).where(BatchItem.batch_id == batch_id,
                                                          BatchItem.state == "pending")
                                  .order_by(BatchItem.id).limit(1))
        if item is None:
            with ctx.db.begin(immediate=True) as session:
                session.execute(update(Batch).where(Batch.id == batch_id, Batch.lease_owner == owner)
                                .values(state="done", finished_at=ctx.clock.now(), lease_owner=None,
                                        lease_until=None).execution_options(synchronize_session=False))
            return
        try:
            state, message, ledger_id = action.run(ctx, item, params)
        except TurnoutError as exc:
            state, message, ledger_id = "failed", exc.message, None
        with ctx.db.begin(immediate=True) as session:
            session.execute(update(BatchItem).where(BatchItem.id == item.id, BatchItem.state == "pending")
                            .values(state=state, message=message[:2000], ledger_id=ledger_id,
                                    finished_at=ctx.clock.now()).execution_options(synchronize_session=False))


def resume_if_orphaned(ctx: MarketContext, batch_id: str, opener: Callable[[str], MarketContext]) -> bool:
    """Take over a running batch whose lease ran out (its process died); True if taken.

    It resumes in the batch's own mode, whatever the mode of whoever looked at it.
    """
    owner = _owner()
    now = ctx.clock.now()
    with ctx.db.begin(immediate=True) as session:
        mode = session.scalar(select(Batch.mode).where(Batch.id == batch_id))
        taken = session.execute(update(Batch).where(
            Batch.id == batch_id, Batch.state == "running",
            or_(Batch.lease_until.is_(None), Batch.lease_until < now))
            .values(lease_owner=owner, lease_until=now + LEASE)
            .execution_options(synchronize_session=False)).rowcount
    if taken:
        log.info("resuming batch %s (%s) after its lease ran out", batch_id, mode)
        _spawn(batch_id, owner, str(mode), opener)
    return bool(taken)


def get(ctx: MarketContext, batch_id: str, *, opener: Callable[[str], MarketContext] | None = None,
        items: bool = True) -> dict[str, Any]:
    """``{"state", "total", "done", "skipped", "failed", "items": [...]}``; resumes an orphan."""
    with ctx.db.begin() as session:
        batch = session.scalar(select(Batch).where(Batch.id == batch_id, Batch.study == ctx.study))
        if batch is None:
            raise NotFound(f"no batch {batch_id!r}")
        counts = dict(session.execute(select(BatchItem.state, func.count()).where(BatchItem.batch_id == batch_id)
                                      .group_by(BatchItem.state)).all())
        rows = list(session.scalars(select(BatchItem).where(BatchItem.batch_id == batch_id)
                                    .order_by(BatchItem.id))) if items else []
    if batch.state == "running" and opener is not None and batch.lease_until is not None \
            and batch.lease_until < ctx.clock.now():
        resume_if_orphaned(ctx, batch_id, opener)
    return {"batch_id": batch.id, "action": batch.action, "mode": batch.mode, "codeversion": batch.codeversion,
            "state": batch.state, "total": batch.total, "done": counts.get("done", 0),
            "skipped": counts.get("skipped", 0), "failed": counts.get("failed", 0),
            "pending": counts.get("pending", 0), "actor": batch.actor,
            "created_at": batch.created_at.isoformat(),
            "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
            "items": [{"target": i.target, "worker_id": i.worker_id, "amount": i.amount, "state": i.state,
                       "message": i.message, "ledger_id": i.ledger_id} for i in rows]}


def recent(ctx: MarketContext, limit: int = 20) -> list[dict[str, Any]]:
    with ctx.db.begin() as session:
        ids = list(session.scalars(select(Batch.id).where(Batch.study == ctx.study, Batch.mode == ctx.mode)
                                   .order_by(Batch.created_at.desc()).limit(limit)))
    return [get(ctx, i, items=False) for i in ids]


def wait(batch_id: str, timeout: float = 60) -> bool:
    """Join this process's thread for the batch (tests, CLI); True if it finished."""
    with _threads_lock:
        thread = _threads.get(batch_id)
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


