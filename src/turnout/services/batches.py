"""Batch actions: one action over one selection, previewed, then run in the background.

``ACTIONS`` names what the dashboard and the API start in bulk, each one action over one
selection: approve all and bonus all (auto) of a codeversion, expire / approve / delete
all HITs, and approve / reject / unreject / bonus the participants a filter of the
participant table shows. The payment actions and selections are the payments service's
(``payments.run`` is the CLI's inline door to the same code; ``payments.plan`` lists the
items); expire and delete are HIT actions over the study's HITs. ``preview`` says how many, what it costs with MTurk's
fees and on which marketplace, and changes nothing. ``start`` stores the batch and its
items in the database and runs them in a background thread of this process, which holds
a lease on the batch row and renews it item by item. If the process dies, the lease runs
out, and the next process that looks at the batch (``get``) takes it over and goes on
from the first unfinished item.

Every money item goes through the payments ledger (``payments.run`` over that one id),
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
from typing import Any, ClassVar

from sqlalchemy import func, or_, select, update

from turnout.db.dashboard_models import Batch, BatchItem
from turnout.errors import Forbidden, InvalidInput, NotFound, TurnoutError
from turnout.services import hits, payments
from turnout.services.participant_table import TableQuery
from turnout.services.recruitment import MarketContext, money_str, parse_money

log = logging.getLogger("turnout.batches")

LEASE = timedelta(seconds=60)
FILTER_ACTIONS = ("approve", "reject", "unreject", "bonus")


@dataclass(frozen=True)
class Expire:
    """Stop a HIT now (it takes no more workers; submitted work can still be reviewed)."""

    kind: ClassVar[str] = "expire"


@dataclass(frozen=True)
class Delete:
    """Delete a HIT MTurk lets go: Reviewable, with nothing left to review."""

    kind: ClassVar[str] = "delete"


HitAction = Expire | Delete


@dataclass(frozen=True)
class Item:
    target: str  # an assignment id or a HIT id
    worker_id: str | None = None
    amount: Decimal | None = None  # what this item pays (reward or bonus), before fees
    fee: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class Named:
    """A batch the doors start by name: one action over one selection, both built from
    the batch's codeversion and its checked parameters."""

    name: str
    money: bool
    action: Callable[[dict[str, Any]], payments.Action | HitAction]
    selection: Callable[[MarketContext, str, dict[str, Any]], payments.Selection]


def _all_of(ctx: MarketContext, version: str, _params: dict[str, Any]) -> payments.Selection:
    return payments.AllOf(version)


def _whole_hits(ctx: MarketContext, version: str, _params: dict[str, Any]) -> payments.Selection:
    return payments.AllOf(version, whole_hits=True)


def _table_filter(ctx: MarketContext, _version: str, params: dict[str, Any]) -> payments.Selection:
    return payments.TableFilter(TableQuery.from_args(params.get("filter") or {}, ctx.codeversion))


def _participants_action(params: dict[str, Any]) -> payments.Action:
    kind = params["kind"]
    if kind == "reject":
        return payments.Reject(params.get("feedback"))
    if kind == "bonus":
        return payments.Bonus(params.get("amount", payments.AUTO), params["reason"])
    return payments.Unreject() if kind == "unreject" else payments.Approve()


ACTIONS: dict[str, Named] = {n.name: n for n in (
    Named("assignments.approve_all", True, lambda _p: payments.Approve(), _all_of),
    Named("assignments.bonus_all", True, lambda p: payments.Bonus(payments.AUTO, p["reason"]), _all_of),
    # psiTurk's "approve all workers for all HITs": also those with no (or another) local row.
    Named("hits.approve_all", True, lambda _p: payments.Approve(), _whole_hits),
    Named("hits.expire_all", False, lambda _p: Expire(), _all_of),
    Named("hits.delete_all", False, lambda _p: Delete(), _all_of),
    *(Named(f"participants.{kind}", True, _participants_action, _table_filter) for kind in FILTER_ACTIONS),
)}


def _action(name: str) -> Named:
    try:
        return ACTIONS[name]
    except KeyError:
        raise NotFound(f"no batch action {name!r}") from None


def _scope_hits(ctx: MarketContext, version: str, **filters: bool) -> list[dict[str, Any]]:
    mine = set(payments.scope_hit_ids(ctx, version))
    return [h for h in hits.list_hits(ctx, **filters) if h["hitid"] in mine]


def plan(ctx: MarketContext, action: payments.Action | HitAction, selection: payments.Selection) -> list[Item]:
    """The items a batch of ``action`` over ``selection`` runs (nothing changes)."""
    if isinstance(action, Expire | Delete):
        if not isinstance(selection, payments.AllOf):
            raise InvalidInput("HIT actions run over all of this study's HITs of a codeversion")
        version = selection.codeversion if selection.codeversion is not None else ctx.codeversion
        if isinstance(action, Expire):
            return [Item(h["hitid"]) for h in _scope_hits(ctx, version, active=True)]
        return [Item(h["hitid"]) for h in _scope_hits(ctx, version, reviewable=True)
                if h["number_submissions_needing_action"] == 0]
    return [Item(p.assignment_id, p.worker_id, p.amount, p.fee) for p in payments.plan(ctx, action, selection)]


def _payment_outcome(result: payments.BatchResult) -> tuple[str, str, int | None]:
    if not result.items:
        return "skipped", "nothing to do", None
    item = result.items[0]
    state = {"ok": "done", "already": "skipped", "skipped": "skipped"}.get(item.outcome, "failed")
    message = item.message
    if item.outcome == "busy":
        message += "; it will be finished by `turnout ledger settle` or the next run"
    return state, message, item.ledger_id


def _hit_outcome(results: list[dict[str, Any]]) -> tuple[str, str, int | None]:
    if not results:
        return "skipped", "nothing to do", None
    r = results[0]
    return ("done" if r["ok"] else "failed"), r["message"], None


def run_item(ctx: MarketContext, action: payments.Action | HitAction, target: str) -> tuple[str, str, int | None]:
    """One item of a batch, the same code as the CLI's inline run of that one target:
    (state done|skipped|failed, message, ledger id)."""
    if isinstance(action, Expire):
        return _hit_outcome(hits.expire_hits(ctx, [target]))
    if isinstance(action, Delete):
        return _hit_outcome(hits.delete_hits(ctx, [target]))
    return _payment_outcome(payments.run(ctx, action, payments.Ids((target,)), confirm_live=True))


def _text(params: dict[str, Any], key: str, what: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string")
    if len(value) > 1024:
        raise InvalidInput(f"{what} must be at most 1024 characters")
    return value.strip()


def check_params(action: Named, params: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if action.name == "assignments.bonus_all":
        reason = _text(params, "reason", "the reason")
        if not reason:
            raise InvalidInput("bonus_all needs a reason (MTurk shows it to the worker)")
        clean["reason"] = reason
    elif action.name.startswith("participants."):
        kind = action.name.split(".", 1)[1]
        raw = params.get("filter") or {}
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise InvalidInput("filter must be the participant table's query (an object of strings)")
        clean.update(kind=kind, filter=raw)
        if kind == "reject" and _text(params, "feedback", "feedback to the worker"):
            clean["feedback"] = _text(params, "feedback", "feedback to the worker")
        if kind == "bonus":
            reason = _text(params, "reason", "the reason")
            if not reason:
                raise InvalidInput("a bonus needs a reason (MTurk shows it to the worker)")
            amount = params.get("amount", payments.AUTO)
            if amount != payments.AUTO:
                amount = money_str(parse_money(amount, what="bonus amount"))
            clean.update(reason=reason, amount=amount)
    return clean


def _build(ctx: MarketContext, action: Named, codeversion: str, params: dict[str, Any]
           ) -> tuple[payments.Action | HitAction, payments.Selection]:
    return action.action(params), action.selection(ctx, codeversion, params)


def preview(ctx: MarketContext, name: str, *, codeversion: str, params: dict[str, Any]) -> dict[str, Any]:
    """What the batch would do, without doing it: ``{"count","reward","fees","total","marketplace"}``."""
    action = _action(name)
    targets = plan(ctx, *_build(ctx, action, codeversion, check_params(action, params)))
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
    same = [Batch.study == study, Batch.mode == ctx.mode, Batch.action == name, Batch.codeversion == codeversion,
            Batch.state == "running"]
    if name.startswith("participants."):  # another filter is another batch
        same.append(Batch.params == json.dumps(clean, sort_keys=True))
    with ctx.db.begin() as session:
        running = session.scalar(select(Batch.id).where(*same))
    if running is not None:
        resume_if_orphaned(ctx, running, opener)
        return {"batch_id": running, "already_running": True}
    targets = plan(ctx, *_build(ctx, action, codeversion, clean))
    batch_id = uuid.uuid4().hex
    owner = _owner()
    now = ctx.clock.now()
    with ctx.db.begin(immediate=True) as session:
        session.add(Batch(id=batch_id, study=study, mode=ctx.mode, codeversion=codeversion, action=name,
                          params=json.dumps(clean, sort_keys=True), state="running", total=len(targets), actor=ctx.actor,
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
        named, params = _action(batch.action), json.loads(batch.params or "{}")
    action = named.action(params)
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
            state, message, ledger_id = run_item(ctx, action, item.target)
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


