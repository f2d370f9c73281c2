"""Reconciliation for the dashboard: the check in the background, its stored report, and a
fix with a preview.

A check of thousands of assignments makes two paged marketplace calls per HIT; that is
too slow for a page load, so ``start`` runs it in a thread of the web process, as the
batches of services/batches.py run. Its progress (HITs read / HITs in scope) and at the
end its whole report are stored on the ``turnout_reconcile_run`` row, so the page renders
from the last stored check without calling the marketplace, and any process can answer
"how far is it". A thread renews a lease on the row with every HIT; a row whose lease ran
out (its process died) is shown as interrupted and a new check may start. A check is
read-only (it only reads the marketplace), so nothing needs resuming: it is started again.

``fix`` applies one remedy through ``reconciliation.fix`` (the ledger, the state machine,
the audit log) and then brings the stored report in line for that one assignment, so the
difference leaves the page and the navigation badge without a new check.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import defer

from turnout.errors import Conflict, InvalidInput, NotFound, TurnoutError
from turnout.services import audit, payments, reconciliation
from turnout.services.recruitment import MarketContext, money_str

log = logging.getLogger("turnout.reconcile")

LEASE = timedelta(seconds=60)
MONEY_REMEDIES = ("approve", "reject", "pay_bonus")
BONUS_FEE = Decimal("0.20")

_threads: dict[int, threading.Thread] = {}
_threads_lock = threading.Lock()


def _fee(amount: Decimal, rate: Decimal) -> Decimal:
    """MTurk's commission on one payment: ``rate`` of it, at least a cent."""
    if amount <= 0:
        return Decimal("0.00")
    return max(Decimal("0.01"), (amount * rate).quantize(Decimal("0.01")))


def _run_dict(row: Any, now: Any, *, report: bool) -> dict[str, Any]:
    state = row.state or "done"
    if state == "running" and row.lease_until is not None and row.lease_until < now:
        state = "interrupted"
    out: dict[str, Any] = {
        "run_id": row.id, "state": state, "mode": row.mode, "codeversion": row.codeversion,
        "at": row.at.isoformat(), "actor": row.actor, "hits_done": row.hits_done or 0,
        "hits_total": row.hits_total, "checked": row.checked, "differences": row.differences,
        "counts": json.loads(row.summary) if row.summary else {}, "error": row.error}
    if report:
        stored = json.loads(row.report) if row.report else None
        out["report"] = stored
    return out


def start(ctx: MarketContext, *, codeversion: str | None,
          opener: Callable[[str], MarketContext]) -> dict[str, Any]:
    """Start a check of ``ctx.mode`` in the background; ``{"run_id", "already_running"}``.

    A check of this study and mode still running (lease not run out) is returned instead
    of a second one: a double click or two people at once start one check.
    """
    run = ctx.db.models.ReconcileRun
    now = ctx.clock.now()
    with ctx.db.begin(immediate=True) as session:
        running = session.scalar(select(run.id).where(
            run.study == ctx.study, run.mode == ctx.mode, run.state == "running", run.lease_until >= now)
            .order_by(run.id.desc()).limit(1).with_for_update())
        if running is not None:
            return {"run_id": running, "already_running": True}
        session.execute(update(run).where(run.study == ctx.study, run.mode == ctx.mode, run.state == "running")
                        .values(state="failed", error="interrupted: the server stopped during the check")
                        .execution_options(synchronize_session=False))
        row = run(study=ctx.study, mode=ctx.mode, codeversion=codeversion, at=now, actor=ctx.actor[:128],
                  checked=0, differences=0, state="running", hits_done=0, lease_until=now + LEASE)
        session.add(row)
        session.flush()
        run_id = int(row.id)
    mode = ctx.mode

    def work() -> None:
        try:
            _work(opener(mode), run_id, codeversion)
        except Exception:  # never leave the thread's error unrecorded
            log.exception("reconciliation check %s stopped", run_id)
            _finish_failed(ctx, run_id, "the check stopped with an unexpected error; see the server log")

    thread = threading.Thread(target=work, name=f"reconcile-{run_id}", daemon=True)
    with _threads_lock:
        _threads[run_id] = thread
    thread.start()
    return {"run_id": run_id, "already_running": False}


def _work(ctx: MarketContext, run_id: int, codeversion: str | None) -> None:
    run = ctx.db.models.ReconcileRun

    def progress(done: int, total: int) -> None:
        with ctx.db.begin() as session:
            session.execute(update(run).where(run.id == run_id).values(
                hits_done=done, hits_total=total, lease_until=ctx.clock.now() + LEASE)
                .execution_options(synchronize_session=False))

    try:
        report = reconciliation.check(ctx, codeversion=codeversion, progress=progress, record=False)
    except TurnoutError as exc:
        _finish_failed(ctx, run_id, exc.message)
        return
    with ctx.db.begin(immediate=True) as session:
        session.execute(update(run).where(run.id == run_id).values(
            state="done", checked=report.checked, differences=len(report.differences),
            summary=json.dumps(report.counts(), sort_keys=True), report=json.dumps(report.as_dict()),
            hits_done=report.hits, hits_total=report.hits, lease_until=None)
            .execution_options(synchronize_session=False))
        audit.record(session, ctx, "reconcile.check", outcome="ok", target=None, checked=report.checked,
                     counts=report.counts(), codeversion=codeversion)


def _finish_failed(ctx: MarketContext, run_id: int, message: str) -> None:
    run = ctx.db.models.ReconcileRun
    with ctx.db.begin() as session:
        session.execute(update(run).where(run.id == run_id, run.state == "running")
                        .values(state="failed", error=message[:2000], lease_until=None)
                        .execution_options(synchronize_session=False))


def get(ctx: MarketContext, run_id: int, *, report: bool = True) -> dict[str, Any]:
    """One check: state (running, done, failed, interrupted), progress and, when done, the report."""
    run = ctx.db.models.ReconcileRun
    with ctx.db.begin() as session:
        query = select(run).where(run.id == run_id, run.study == ctx.study)
        row = session.scalar(query if report else query.options(defer(run.report)))
        if row is None:
            raise NotFound(f"no reconciliation check {run_id}")
        return _run_dict(row, ctx.clock.now(), report=report and row.state in (None, "done"))


def latest(ctx: MarketContext) -> dict[str, Any]:
    """For the page, without a marketplace call: ``{"last": newest finished check with its
    report or None, "running": a check in progress or None, "failed": the newest check if it
    failed after the last finished one}``."""
    run = ctx.db.models.ReconcileRun
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        rows = list(session.scalars(select(run).where(run.study == ctx.study, run.mode == ctx.mode)
                                    .options(defer(run.report)).order_by(run.id.desc()).limit(20)))
        shown = [_run_dict(r, now, report=False) for r in rows]
        done = next((r for r in rows if (r.state or "done") == "done"), None)
        last = _run_dict(done, now, report=True) if done is not None else None  # loads this one report
    running = next((r for r in shown if r["state"] == "running"), None)
    newest = shown[0] if shown else None
    failed = newest if newest is not None and newest["state"] in ("failed", "interrupted") else None
    return {"last": last, "running": running, "failed": failed}


def wait(run_id: int, timeout: float = 60) -> bool:
    """Join this process's thread for the check (tests); True if it finished."""
    with _threads_lock:
        thread = _threads.get(run_id)
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


# --- one remedy -------------------------------------------------------------------------------


def _offering(ctx: MarketContext, assignment_id: str, remedy: str) -> reconciliation.Difference:
    """The difference of this assignment that ``remedy`` fixes (the same refusals as ``fix``)."""
    if remedy not in reconciliation.REMEDIES:
        raise InvalidInput(f"unknown remedy {remedy!r}; use one of {', '.join(reconciliation.REMEDIES)}")
    differences = reconciliation.check_assignment(ctx, assignment_id)
    offering = [d for d in differences if remedy in d.remedies]
    if not offering:
        if not differences:
            raise Conflict(f"assignment {assignment_id}: the records agree; there is nothing to fix")
        offered = sorted({r for d in differences for r in d.remedies})
        raise Conflict(f"assignment {assignment_id} ({', '.join(d.kind for d in differences)}): {remedy} does "
                       "not fit; " + (f"use one of {', '.join(offered)}" if offered
                                      else "no remedy applies, see the detail"))
    return offering[0]


def preview(ctx: MarketContext, assignment_id: str, remedy: str) -> dict[str, Any]:
    """What the remedy would do, changing nothing: ``{"amount", "fee", "total", "marketplace",
    "money", "what"}``. The assignment is read afresh (a few marketplace calls)."""
    difference = _offering(ctx, assignment_id, remedy)
    amount = fee = Decimal("0.00")
    if remedy == "approve":
        hit = ctx.port.get_hit(difference.hit_id)
        amount = Decimal(str(hit["Reward"]))
        fee = _fee(amount, ctx.port.fee_rate(assignments=int(hit.get("MaxAssignments", 1))))
        what = (f"approve {assignment_id} of worker {difference.worker_id}"
                + (" (overriding the rejection)" if difference.marketplace_status == "Rejected" else "")
                + ": pays the HIT's reward")
    elif remedy == "pay_bonus":
        P = ctx.db.models.Participant
        with ctx.db.begin() as session:
            bonus = session.scalar(select(P.bonus).where(P.uniqueid == difference.uniqueids[0])) \
                if difference.uniqueids else None
        owed = payments.auto_amount(bonus)
        if owed is None:
            raise Conflict(f"assignment {assignment_id}: the bonus column holds no amount to pay")
        amount, fee = owed, _fee(owed, BONUS_FEE)
        what = f"pay worker {difference.worker_id} the bonus column's ${money_str(owed)}, once"
    elif remedy == "reject":
        what = f"reject {assignment_id} of worker {difference.worker_id}: pays nothing, counts against the worker"
    elif remedy == "sync_local":
        what = f"record locally that the marketplace has {assignment_id} {difference.marketplace_status}; no money"
    else:
        what = f"exclude {', '.join(difference.uniqueids) or 'the local row'} from counterbalancing and exports"
    return {"assignment_id": assignment_id, "remedy": remedy, "kind": difference.kind, "mode": ctx.mode,
            "money": remedy in MONEY_REMEDIES, "amount": money_str(amount), "fee": money_str(fee),
            "total": money_str(amount + fee), "marketplace": ctx.marketplace, "what": what}


def fix(ctx: MarketContext, assignment_id: str, remedy: str, *, reason: str | None = None,
        confirm_live: bool = False) -> dict[str, Any]:
    """``reconciliation.fix``, then the stored report updated for this assignment."""
    result = reconciliation.fix(ctx, assignment_id, remedy, reason=reason, confirm_live=confirm_live)
    out = result.as_dict()
    if result.ok:
        out["counts"] = _update_stored(ctx, assignment_id, result.remaining)
    return out


def _update_stored(ctx: MarketContext, assignment_id: str,
                   remaining: list[reconciliation.Difference]) -> dict[str, int] | None:
    """Replace the assignment's differences in the newest stored report with ``remaining``;
    returns the report's new counts per kind (None when nothing is stored)."""
    run = ctx.db.models.ReconcileRun
    order = list(reconciliation.KINDS)
    with ctx.db.begin(immediate=True) as session:
        row = session.scalar(select(run).where(run.study == ctx.study, run.mode == ctx.mode, run.state == "done",
                                               run.report.is_not(None))
                             .order_by(run.id.desc()).limit(1).with_for_update())
        if row is None:
            return None
        report = json.loads(row.report)
        differences = [d for d in report.get("differences", []) if d.get("assignment_id") != assignment_id]
        differences.extend(d.as_dict() for d in remaining)
        differences.sort(key=lambda d: (order.index(d["kind"]) if d["kind"] in order else len(order),
                                        d["assignment_id"]))
        counts: dict[str, int] = {}
        for d in differences:
            counts[d["kind"]] = counts.get(d["kind"], 0) + 1
        report.update(differences=differences, counts=counts)
        row.report = json.dumps(report)
        row.summary = json.dumps(counts, sort_keys=True)
        row.differences = len(differences)
    return counts
