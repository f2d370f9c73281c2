"""What the marketplace says about a study's HITs and assignments, joined with turnout's
own records: the views the CLI, the dashboard, the API and the psiTurk wrapper show.

Reading only; posting, expiring, deleting and extending HITs are in ``services.hits``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from turnout.errors import InvalidInput
from turnout.marketplace.port import MarketError
from turnout.services.recruitment import MarketContext, market_error, money_str


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def hit_view(ctx: MarketContext, hit: dict[str, Any], record: Any | None = None) -> dict[str, Any]:
    """psiTurk's MTurkHIT fields (PSITURK_FACTS §6.1), plus turnout's local record."""
    maximum = int(hit.get("MaxAssignments", 0))
    completed = int(hit.get("NumberOfAssignmentsCompleted", 0))
    pending = int(hit.get("NumberOfAssignmentsPending", 0))
    available = int(hit.get("NumberOfAssignmentsAvailable", 0))
    expiration = hit.get("Expiration")
    return {
        "hitid": hit["HITId"],
        "title": hit.get("Title"),
        "status": hit.get("HITStatus"),
        "max_assignments": maximum,
        "number_assignments_completed": completed,
        "number_assignments_pending": pending,
        "number_assignments_available": available,
        "number_submissions_needing_action": maximum - completed - pending - available,
        "creation_time": _iso(hit.get("CreationTime")),
        "expiration": _iso(expiration),
        "is_expired": bool(expiration and ctx.clock.now() >= expiration),
        "assignment_duration_in_seconds": hit.get("AssignmentDurationInSeconds"),
        "reward": hit.get("Reward"),
        "description": hit.get("Description"),
        "annotation": hit.get("RequesterAnnotation"),
        "mode": ctx.mode,
        "codeversion": record.codeversion if record is not None else None,
        "in_study": record is not None or None,
    }


def _study_hit_ids(ctx: MarketContext) -> set[str]:
    """The current study's HITs: psiTurk's HIT table, plus turnout's records for this mode."""
    H, R = ctx.db.models.Hit, ctx.db.models.HitRecord
    with ctx.db.begin() as session:
        ids = set(session.scalars(select(H.hitid)))
        ids.update(h for h in session.scalars(select(R.hit_id).where(
            R.study == ctx.study, R.mode == ctx.mode, R.hit_id.is_not(None))) if h)
    return ids


def _records(ctx: MarketContext, hit_ids: Iterable[str]) -> dict[str, Any]:
    R = ctx.db.models.HitRecord
    ids = list(hit_ids)
    found: dict[str, Any] = {}
    with ctx.db.begin() as session:
        for start in range(0, len(ids), 500):
            for rec in session.scalars(select(R).where(R.mode == ctx.mode, R.hit_id.in_(ids[start:start + 500]))):
                found[rec.hit_id] = rec
    return found


def call(ctx: MarketContext, what: str, operation: str, *args: Any, **params: Any) -> Any:
    """One call of the marketplace port whose failures become turnout error values."""
    try:
        return getattr(ctx.port, operation)(*args, **params)
    except MarketError as exc:
        raise market_error(exc.failure, what) from None


def list_hits(ctx: MarketContext, *, all_studies: bool = False, active: bool = False,
              reviewable: bool = False) -> list[dict[str, Any]]:
    """This study's HITs on this marketplace (or every HIT of the account with
    ``all_studies``), with psiTurk's counts; ``active`` = not expired, ``reviewable`` =
    Reviewable or Reviewing (psiTurk's filters)."""
    if active and reviewable:
        raise InvalidInput("choose at most one of active and reviewable")
    mine = None if all_studies else _study_hit_ids(ctx)
    try:
        hits = [h for h in ctx.port.list_hits() if mine is None or h["HITId"] in mine]
    except MarketError as exc:
        raise market_error(exc.failure, "listing HITs") from None
    records = _records(ctx, [h["HITId"] for h in hits])
    views = [hit_view(ctx, h, records.get(h["HITId"])) for h in hits]
    if active:
        views = [v for v in views if not v["is_expired"]]
    if reviewable:
        views = [v for v in views if v["status"] in ("Reviewable", "Reviewing")]
    views.sort(key=lambda v: v["creation_time"] or "")
    return views


def get_hit(ctx: MarketContext, hit_id: str) -> dict[str, Any]:
    hit = call(ctx, f"HIT {hit_id}", "get_hit", hit_id)
    return hit_view(ctx, hit, _records(ctx, [hit_id]).get(hit_id))


def balance(ctx: MarketContext) -> dict[str, Any]:
    return {"mode": ctx.mode, **call(ctx, "account balance", "balance")}



# --- assignments ---------------------------------------------------------------------

ASSIGNMENT_STATUSES = ("Submitted", "Approved", "Rejected")


def list_assignments(ctx: MarketContext, *, hit_ids: Sequence[str] | None = None, status: str | None = None,
                     all_studies: bool = False) -> list[dict[str, Any]]:
    """Assignments from the marketplace (the truth for what was submitted), joined with
    the local participant row and the ledger, for the given HITs or the current study's."""
    if status is not None and status not in ASSIGNMENT_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(ASSIGNMENT_STATUSES)}, got {status!r}")
    if hit_ids is None:
        hit_ids = [h["hitid"] for h in list_hits(ctx, all_studies=all_studies)]
    found: list[dict[str, Any]] = []
    for hit_id in hit_ids:
        try:
            found.extend(ctx.port.assignments_for_hit(hit_id, [status] if status else []))
        except MarketError as exc:
            raise market_error(exc.failure, f"assignments of HIT {hit_id}") from None
    return join_local(ctx, found, market_bonuses=marketplace_bonuses(ctx, hit_ids))


def marketplace_bonuses(ctx: MarketContext, hit_ids: Sequence[str]) -> dict[str, list[str]] | None:
    """The bonuses the marketplace itself paid, per assignment (ListBonusPayments per HIT),
    or None when it cannot say (the listing then shows the ledger's view only)."""
    found: dict[str, list[str]] = {}
    try:
        for hit_id in dict.fromkeys(hit_ids):
            for b in ctx.port.bonuses(hit_id=hit_id):
                found.setdefault(b.assignment_id, []).append(money_str(b.amount))
    except MarketError:
        return None
    return found


def join_local(ctx: MarketContext, assignments: list[dict[str, Any]], *,
               market_bonuses: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Each assignment with its local participant row, its ledger rows and (when given) the
    bonuses the marketplace shows for it: ``bonuses_marketplace`` differs from
    ``bonuses_paid`` when another project, another tool or a lost answer paid one the
    ledger does not hold (``bonus_mismatch``)."""
    P, L = ctx.db.models.Participant, ctx.db.models.LedgerEntry
    ids = [a["AssignmentId"] for a in assignments]
    local: dict[tuple[str, str], Any] = {}
    ledger: dict[str, list[Any]] = {}
    with ctx.db.begin() as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for p in session.scalars(select(P).where(P.assignmentid.in_(chunk))):
                local[(p.assignmentid, p.workerid)] = p
            for entry in session.scalars(select(L).where(L.mode == ctx.mode, L.assignment_id.in_(chunk))
                                         .order_by(L.id)):
                ledger.setdefault(entry.assignment_id, []).append(entry)
    rows = []
    for a in assignments:
        p = local.get((a["AssignmentId"], a["WorkerId"]))
        entries = ledger.get(a["AssignmentId"], [])
        rows.append({
            "hitId": a["HITId"], "assignmentId": a["AssignmentId"], "workerId": a["WorkerId"],
            "status": a.get("AssignmentStatus"), "accept_time": _iso(a.get("AcceptTime")),
            "submit_time": _iso(a.get("SubmitTime")),
            "uniqueid": p.uniqueid if p is not None else None,
            "local_status": p.status if p is not None else None,
            "codeversion": p.codeversion if p is not None else None,
            "bonus": (str(p.bonus) if p.bonus is not None else None) if p is not None else "not-found-in-study-database",
            "bonuses_paid": [e.amount for e in entries if e.kind == "bonus" and e.state == "succeeded"],
            "bonuses_marketplace": (sorted(market_bonuses.get(a["AssignmentId"], []))
                                    if market_bonuses is not None else None),
            "ledger": [{"kind": e.kind, "state": e.state, "amount": e.amount} for e in entries],
        })
        row = rows[-1]
        row["bonus_mismatch"] = (row["bonuses_marketplace"] is not None
                                 and sorted(row["bonuses_paid"]) != row["bonuses_marketplace"])
    return rows
