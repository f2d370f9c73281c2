"""The lab's records against the marketplace's: every difference, and a fix for each.

psiTurk users' most frequent trouble is that their database and MTurk disagree: a
participant submitted on MTurk while the local row still says started, an assignment
auto-approved that the lab never marked, two local rows for one assignment, a bonus owed
and never sent, a bonus sent twice by hand. ``check`` compares, for this study's HITs in
one mode (optionally one codeversion), every marketplace assignment and bonus payment
with the local participant rows and the payments ledger, and lists each difference with
the remedies that fit it. ``fix`` applies one remedy to one assignment, through the
ledger and the state machine, so it is recorded, audited and never pays twice. Nothing is
fixed without being asked.

The marketplace calls are bounded by the number of HITs, not of assignments: per HIT one
paged ListAssignmentsForHIT (all reviewable statuses) and one paged ListBonusPayments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from turnout.errors import Conflict, InvalidInput, NotFound, TurnoutError
from turnout.experiment.status import COMPLETED_STATUSES, Status
from turnout.marketplace.port import FailureKind, MarketError
from turnout.services import audit, payments
from turnout.services.recruitment import MarketContext, money_str

# Each kind: what it means and what to do (the CLI, the API and docs/reconciliation.md say
# the same).
KINDS: dict[str, str] = {
    "submitted_remotely": "submitted on the marketplace, but the local row has not completed the task",
    "approved_remotely": "approved (or auto-approved) on the marketplace, but not credited locally",
    "rejected_remotely": "rejected on the marketplace, but the rejection is not recorded locally",
    "unknown_remotely": "the local row says finished, but the marketplace has no submission for it",
    "unknown_locally": "the marketplace has this assignment, but this study's database has no row for it",
    "duplicate_rows": "several local rows for one assignment",
    "bonus_missing": "approved, with a bonus owed in the bonus column, but no bonus paid",
    "bonus_differs": "the bonus paid differs from the bonus column, or was paid more than once",
}
REMEDIES: dict[str, str] = {
    "approve": "approve the assignment on the marketplace (pays the reward; overrides a rejection)",
    "reject": "reject the submitted assignment on the marketplace",
    "pay_bonus": "pay the bonus column's amount, through the ledger (once)",
    "sync_local": "record locally what the marketplace already did (no money moves)",
    "exclude": "leave the local row(s) out of counterbalancing and the default exports",
}
REVIEWABLE = ("Submitted", "Approved", "Rejected")
DEFAULT_BONUS_REASON = "Bonus for your work on our study."


@dataclass
class Difference:
    """One way the records of one assignment disagree."""

    assignment_id: str
    worker_id: str | None
    hit_id: str | None
    kind: str
    local_status: str | None
    marketplace_status: str | None
    detail: str
    remedies: list[str]
    uniqueids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"assignment_id": self.assignment_id, "worker_id": self.worker_id, "hit_id": self.hit_id,
                "kind": self.kind, "local_status": self.local_status,
                "marketplace_status": self.marketplace_status, "detail": self.detail,
                "remedies": list(self.remedies), "uniqueids": list(self.uniqueids)}


@dataclass
class Report:
    """What one comparison found. ``checked`` counts the assignments compared."""

    mode: str
    codeversion: str | None
    checked: int = 0
    hits: int = 0
    differences: list[Difference] = field(default_factory=list)
    unreadable_hits: list[dict[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.differences:
            out[d.kind] = out.get(d.kind, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "codeversion": self.codeversion, "checked": self.checked, "hits": self.hits,
                "counts": self.counts(), "differences": [d.as_dict() for d in self.differences],
                "unreadable_hits": list(self.unreadable_hits)}


def status_name(value: int | None) -> str | None:
    """psiTurk's status as a name (``Submitted``...); an unknown code stays visible."""
    if value is None:
        return None
    try:
        return Status(value).name.title().replace("_", " ")
    except ValueError:
        return f"status {value}"


# --- what is compared ---------------------------------------------------------------------


def scope_hit_ids(ctx: MarketContext, codeversion: str | None) -> list[str]:
    """This study's HITs in this mode: of one codeversion when given, else of every one."""
    return payments.scope_hit_ids(ctx, codeversion, all_versions=codeversion is None)


@dataclass
class _Remote:
    assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    bonuses: dict[str, list[Decimal]] = field(default_factory=dict)
    durations: dict[str, int] = field(default_factory=dict)


def _read_marketplace(ctx: MarketContext, hit_ids: Sequence[str], report: Report,
                      progress: Callable[[int, int], None] | None) -> _Remote:
    remote = _Remote()
    for index, hit_id in enumerate(hit_ids):
        try:
            for a in ctx.port.assignments_for_hit(hit_id, list(REVIEWABLE)):
                remote.assignments[a["AssignmentId"]] = a
            for b in ctx.port.bonuses(hit_id=hit_id):
                remote.bonuses.setdefault(b.assignment_id, []).append(b.amount)
        except MarketError as exc:
            failure = exc.failure
            if failure.kind != FailureKind.NOT_FOUND:
                raise TurnoutError(f"cannot read HIT {hit_id} from the marketplace: {failure.text}; "
                                   "nothing was compared, try again") from None
            # A HIT deleted on the marketplace: its assignments can no longer be read.
            report.unreadable_hits.append({"hit_id": hit_id, "reason": failure.text})
        if progress is not None:
            progress(index + 1, len(hit_ids))
    return remote


@dataclass
class _Local:
    rows: dict[str, list[Any]] = field(default_factory=dict)  # assignment id -> rows, best first
    ledger: dict[str, list[Any]] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)


def _chunks(values: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _read_local(ctx: MarketContext, hit_ids: Sequence[str], assignment_ids: Sequence[str],
                codeversion: str | None) -> _Local:
    P, L, X = ctx.db.models.Participant, ctx.db.models.LedgerEntry, ctx.db.models.Exclusion
    local = _Local()
    found: dict[str, Any] = {}
    with ctx.db.begin() as session:
        for chunk in _chunks(list(hit_ids)):
            query = select(P).where(P.hitid.in_(chunk), P.mode == ctx.mode)
            if codeversion is not None:
                query = query.where(P.codeversion == codeversion)
            for p in session.scalars(query):
                found[p.uniqueid] = p
        for chunk in _chunks(list(assignment_ids)):
            for p in session.scalars(select(P).where(P.assignmentid.in_(chunk))):
                found[p.uniqueid] = p
        ids = sorted({p.assignmentid for p in found.values() if p.assignmentid} | set(assignment_ids))
        for chunk in _chunks(ids):
            for entry in session.scalars(select(L).where(L.mode == ctx.mode, L.assignment_id.in_(chunk))
                                         .order_by(L.id)):
                local.ledger.setdefault(entry.assignment_id, []).append(entry)
        uniqueids = sorted(found)
        for chunk in _chunks(uniqueids):
            local.excluded.update(session.scalars(select(X.uniqueid).where(X.study == ctx.study,
                                                                           X.uniqueid.in_(chunk))))
    for p in found.values():
        if p.assignmentid:
            local.rows.setdefault(p.assignmentid, []).append(p)
    return local


def _rank(p: Any, worker_id: str | None) -> tuple[int, int, Any]:
    """Order a duplicate group: the remote worker's row, then the furthest status, newest."""
    status = p.status if p.status is not None else 0
    furthest = {7: 6, 5: 5, 4: 4, 3: 3, 2: 2, 6: 1, 1: 0}.get(status, -1)
    return (1 if worker_id is not None and p.workerid == worker_id else 0, furthest,
            p.beginhit.timestamp() if p.beginhit is not None else 0)


# --- classifying one assignment -------------------------------------------------------------


def _succeeded(entries: Sequence[Any], *kinds: str) -> list[Any]:
    return [e for e in entries if e.kind in kinds and e.state == "succeeded"]


def _classify(ctx: MarketContext, assignment_id: str, a: dict[str, Any] | None, rows: list[Any],
              entries: list[Any], bonuses: list[Decimal], excluded: set[str],
              duration_of: Callable[[str], int | None]) -> list[Difference]:
    worker_id = a["WorkerId"] if a is not None else (rows[0].workerid if rows else None)
    hit_id = a["HITId"] if a is not None else (rows[0].hitid if rows else None)
    remote_status = a.get("AssignmentStatus") if a is not None else None
    rows = sorted(rows, key=lambda p: _rank(p, worker_id), reverse=True)
    counted = [p for p in rows if p.uniqueid not in excluded]
    primary = counted[0] if counted else None
    local_status = primary.status if primary is not None else None
    out: list[Difference] = []

    def add(kind: str, detail: str, remedies: list[str], uniqueids: list[str] | None = None) -> None:
        out.append(Difference(assignment_id, worker_id, hit_id, kind, status_name(local_status), remote_status,
                              detail, remedies, uniqueids if uniqueids is not None
                              else ([primary.uniqueid] if primary is not None else [])))

    if len(counted) > 1:
        extra = [p.uniqueid for p in counted[1:]]
        add("duplicate_rows", f"{len(counted)} local rows: {', '.join(p.uniqueid for p in counted)}; "
            f"'exclude' keeps {primary.uniqueid} and excludes {', '.join(extra)}", ["exclude"], extra)

    if a is None:
        if primary is not None and local_status in COMPLETED_STATUSES and not _may_still_submit(
                ctx, primary, duration_of):
            add("unknown_remotely", f"local status {status_name(local_status)}, but the marketplace lists no "
                "submission (never submitted, returned, abandoned, or another marketplace's)", ["exclude"])
        return out

    if primary is None:
        remedies = ["approve", "reject"] if remote_status == "Submitted" else []
        add("unknown_locally", f"{remote_status} on the marketplace; no participant row in this study's database "
            "(the worker never reached /exp, or the row was deleted)", remedies, [])
        return out

    if remote_status == "Submitted" and local_status not in (Status.COMPLETED, Status.SUBMITTED):
        if local_status in (Status.CREDITED, Status.BONUSED):
            add("submitted_remotely", f"locally {status_name(local_status)}, but still Submitted on the "
                "marketplace (an approval that did not reach it)", ["approve"])
        else:
            add("submitted_remotely", f"submitted on the marketplace while the local row is "
                f"{status_name(local_status)}: the worker submitted without finishing, or the local write was "
                "lost", ["approve", "reject", "exclude"])
    elif remote_status == "Approved" and local_status not in (Status.CREDITED, Status.BONUSED):
        add("approved_remotely", "approved on the marketplace (by hand elsewhere, or auto-approved) while the "
            f"local row is {status_name(local_status)}", ["sync_local"])
    elif remote_status == "Rejected" and not _succeeded(entries, "reject"):
        add("rejected_remotely", "rejected on the marketplace; this study's ledger holds no rejection",
            ["sync_local", "approve"])

    if remote_status == "Approved":
        _bonus_differences(add, primary, entries, bonuses)
    return out


def _may_still_submit(ctx: MarketContext, row: Any, duration_of: Callable[[str], int | None]) -> bool:
    """A row that finished the task but whose worker may still press Submit on MTurk."""
    if row.status != Status.COMPLETED or row.beginhit is None or not row.hitid:
        return False
    duration = duration_of(row.hitid)
    if duration is None:
        return False
    return ctx.clock.now() < row.beginhit + timedelta(seconds=duration)


def _bonus_differences(add: Callable[..., None], primary: Any, entries: list[Any],
                       bonuses: list[Decimal]) -> None:
    ledger_paid = [Decimal(e.amount) for e in _succeeded(entries, "bonus") if e.amount]
    try:
        owed = payments.auto_amount(primary.bonus)
    except (InvalidInput, ValueError, OverflowError):
        add("bonus_differs", f"the bonus column holds {primary.bonus!r}, which is not an amount of money; "
            "set it right, then check again", [])
        return
    except Exception:  # anything else the column can hold
        add("bonus_differs", f"the bonus column holds {primary.bonus!r}, which is not an amount of money", [])
        return
    paid = sorted(bonuses)
    if not paid and not ledger_paid:
        if owed is not None:
            add("bonus_missing", f"bonus column ${money_str(owed)}, no bonus paid", ["pay_bonus"])
        return
    shown = ", ".join(f"${money_str(b)}" for b in paid) or "none"
    if len(paid) > 1:
        add("bonus_differs", f"paid {len(paid)} bonuses on the marketplace ({shown}); the bonus column says "
            f"${money_str(owed or Decimal('0'))}. If the extra payment was not meant, ask the worker to contact "
            "you: a bonus cannot be taken back", [])
        return
    if sorted(ledger_paid) != paid:
        ledger = ", ".join(f"${money_str(b)}" for b in sorted(ledger_paid)) or "none"
        add("bonus_differs", f"the marketplace paid {shown}, this study's ledger records {ledger}", [])
        return
    if owed is None or paid[0] != owed:
        add("bonus_differs", f"paid ${money_str(paid[0])}; the bonus column says "
            f"${money_str(owed or Decimal('0'))}", [])


# --- the comparison -------------------------------------------------------------------------


def check(ctx: MarketContext, *, codeversion: str | None = None,
          progress: Callable[[int, int], None] | None = None, record: bool = True) -> Report:
    """Compare this study's HITs of ``ctx.mode`` (one codeversion, or all) with the local
    records; list every difference, ordered by kind then assignment. Fixes nothing."""
    report = Report(ctx.mode, codeversion)
    hit_ids = scope_hit_ids(ctx, codeversion)
    report.hits = len(hit_ids)
    remote = _read_marketplace(ctx, hit_ids, report, progress)
    local = _read_local(ctx, hit_ids, list(remote.assignments), codeversion)
    durations = _durations(ctx, hit_ids)
    ids = sorted(set(remote.assignments) | set(local.rows))
    for assignment_id in ids:
        report.differences.extend(_classify(
            ctx, assignment_id, remote.assignments.get(assignment_id), local.rows.get(assignment_id, []),
            local.ledger.get(assignment_id, []), remote.bonuses.get(assignment_id, []), local.excluded,
            durations.get))
    report.checked = len(ids)
    order = list(KINDS)
    report.differences.sort(key=lambda d: (order.index(d.kind), d.assignment_id))
    if record:
        _record_run(ctx, report)
    return report


def _durations(ctx: MarketContext, hit_ids: Sequence[str]) -> dict[str, int]:
    R = ctx.db.models.HitRecord
    found: dict[str, int] = {}
    with ctx.db.begin() as session:
        for chunk in _chunks(list(hit_ids)):
            for hit_id, seconds in session.execute(select(R.hit_id, R.duration_seconds).where(
                    R.mode == ctx.mode, R.hit_id.in_(chunk))):
                found[hit_id] = int(seconds)
    return found


def _record_run(ctx: MarketContext, report: Report) -> None:
    run = ctx.db.models.ReconcileRun
    with ctx.db.begin(immediate=True) as session:
        session.add(run(study=ctx.study, mode=ctx.mode, codeversion=report.codeversion, at=ctx.clock.now(),
                        actor=ctx.actor[:128], checked=report.checked, differences=len(report.differences),
                        summary=json.dumps(report.counts(), sort_keys=True), state="done",
                        hits_done=report.hits, hits_total=report.hits, report=json.dumps(report.as_dict())))
        audit.record(session, ctx, "reconcile.check", outcome="ok", target=None, checked=report.checked,
                     counts=report.counts(), codeversion=report.codeversion)


def last_run(ctx: MarketContext) -> dict[str, Any] | None:
    """The newest check of this study in this mode (for a badge: no marketplace call)."""
    run = ctx.db.models.ReconcileRun
    with ctx.db.begin() as session:
        row = session.scalars(select(run).where(run.study == ctx.study, run.mode == ctx.mode,
                                                or_(run.state.is_(None), run.state == "done"))
                              .options(defer(run.report))  # the badge on every page: not the report
                              .order_by(run.id.desc()).limit(1)).first()
        if row is None:
            return None
        return {"id": row.id, "at": row.at.isoformat(), "mode": row.mode, "codeversion": row.codeversion,
                "checked": row.checked, "differences": row.differences,
                "counts": json.loads(row.summary) if row.summary else {}}


# --- one assignment, and its remedies ---------------------------------------------------------


def check_assignment(ctx: MarketContext, assignment_id: str) -> list[Difference]:
    """The differences of one assignment, read afresh (three marketplace calls at most)."""
    assignment_id = (assignment_id or "").strip()
    if not assignment_id:
        raise InvalidInput("name an assignment id")
    a: dict[str, Any] | None = None
    try:
        a = ctx.port.assignment_record(assignment_id)
    except MarketError as exc:
        failure = exc.failure
        if failure.kind != FailureKind.NOT_FOUND:
            raise TurnoutError(f"cannot read assignment {assignment_id}: {failure.text}") from None
    if a is not None and a.get("AssignmentStatus") not in REVIEWABLE:
        a = None
    local = _read_local(ctx, [], [assignment_id], None)
    rows = local.rows.get(assignment_id, [])
    if a is None and not rows:
        raise NotFound(f"assignment {assignment_id} is neither on the marketplace nor in this study's database")
    hit_id = a["HITId"] if a is not None else rows[0].hitid
    if a is not None and hit_id not in set(scope_hit_ids(ctx, None)) and not rows:
        raise Conflict(f"assignment {assignment_id} belongs to HIT {hit_id}, which is not this study's "
                       f"({ctx.mode} mode); reconcile it from the project that posted it")
    bonuses: list[Decimal] = []
    if a is not None and a.get("AssignmentStatus") == "Approved":
        try:
            bonuses = [b.amount for b in ctx.port.bonuses(assignment_id=assignment_id)]
        except MarketError as exc:
            failure = exc.failure
            raise TurnoutError(f"cannot read the bonuses of {assignment_id}: {failure.text}") from None
    durations = _durations(ctx, [hit_id] if hit_id else [])
    return _classify(ctx, assignment_id, a, rows, local.ledger.get(assignment_id, []), bonuses, local.excluded,
                     durations.get)


@dataclass
class FixResult:
    assignment_id: str
    remedy: str
    outcome: str  # ok | already | failed | unknown | busy | skipped
    message: str
    remaining: list[Difference] = field(default_factory=list)
    paid: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("ok", "already")

    def as_dict(self) -> dict[str, Any]:
        return {"assignment_id": self.assignment_id, "remedy": self.remedy, "outcome": self.outcome,
                "ok": self.ok, "message": self.message, "paid": self.paid,
                "remaining": [d.as_dict() for d in self.remaining]}


def fix(ctx: MarketContext, assignment_id: str, remedy: str, *, reason: str | None = None,
        confirm_live: bool = False) -> FixResult:
    """Apply ``remedy`` to one assignment, if it is one its differences offer.

    Money goes through the payments ledger (approve, reject, pay_bonus, and sync_local,
    which records what the marketplace already did: its call is refused there as already
    done, so nothing is paid); ``exclude`` writes exclusion rows. Each is audited.
    """
    if remedy not in REMEDIES:
        raise InvalidInput(f"unknown remedy {remedy!r}; use one of {', '.join(REMEDIES)}")
    differences = check_assignment(ctx, assignment_id)
    offering = [d for d in differences if remedy in d.remedies]
    if not offering:
        if not differences:
            raise Conflict(f"assignment {assignment_id}: the records agree; there is nothing to fix")
        offered = sorted({r for d in differences for r in d.remedies})
        kinds = ", ".join(d.kind for d in differences)
        raise Conflict(f"assignment {assignment_id} ({kinds}): {remedy} does not fit; "
                       + (f"use one of {', '.join(offered)}" if offered else "no remedy applies, see the detail"))
    difference = offering[0]
    status = difference.marketplace_status
    if remedy == "exclude":
        message = _exclude(ctx, difference, reason)
        result = FixResult(assignment_id, remedy, "ok", message)
    else:
        if remedy == "approve":
            batch = (payments.unreject(ctx, [assignment_id], confirm_live=confirm_live) if status == "Rejected"
                     else payments.approve(ctx, [assignment_id], confirm_live=confirm_live))
        elif remedy == "reject":
            batch = payments.reject(ctx, [assignment_id], feedback=reason, confirm_live=confirm_live)
        elif remedy == "pay_bonus":
            batch = payments.bonus(ctx, [assignment_id], amount=payments.AUTO,
                                   reason=(reason or "").strip() or DEFAULT_BONUS_REASON, confirm_live=confirm_live)
        elif status == "Approved":  # sync_local
            batch = payments.approve(ctx, [assignment_id], confirm_live=True)
        else:
            batch = payments.reject(ctx, [assignment_id], confirm_live=True)
        item = batch.items[0]
        result = FixResult(assignment_id, remedy, item.outcome, item.message,
                           paid=item.amount if item.outcome == "ok" and remedy in ("approve", "pay_bonus")
                           else None)
    audit.write(ctx, f"reconcile.{remedy}", outcome="ok" if result.ok else
                ("unknown" if result.outcome == "unknown" else "failed"), target=assignment_id,
                kind=difference.kind, message=result.message)
    result.remaining = check_assignment(ctx, assignment_id) if result.ok else differences
    return result


# --- exclusions -------------------------------------------------------------------------------


def _exclude(ctx: MarketContext, difference: Difference, reason: str | None) -> str:
    uniqueids = difference.uniqueids
    if not uniqueids:
        raise Conflict(f"assignment {difference.assignment_id} has no local row to exclude")
    text = (reason or "").strip() or f"reconciliation: {difference.kind}"
    added = exclude_rows(ctx, uniqueids, reason=text, assignment_id=difference.assignment_id)
    return f"excluded {', '.join(uniqueids)}" + ("" if added == len(uniqueids) else " (some were already)")


def exclude_rows(ctx: MarketContext, uniqueids: Sequence[str], *, reason: str,
                 assignment_id: str | None = None) -> int:
    """Exclude these participant rows of this study; returns how many were newly excluded."""
    X = ctx.db.models.Exclusion
    added = 0
    for uniqueid in dict.fromkeys(uniqueids):
        try:
            with ctx.db.begin(immediate=True) as session:
                if session.scalar(select(X.id).where(X.study == ctx.study, X.uniqueid == uniqueid)) is not None:
                    continue
                session.add(X(study=ctx.study, uniqueid=uniqueid, assignment_id=assignment_id, reason=reason[:2000],
                              actor=ctx.actor[:128], at=ctx.clock.now()))
                audit.record(session, ctx, "participant.exclude", outcome="ok", target=uniqueid, reason=reason)
            added += 1
        except IntegrityError:  # excluded by someone else at the same moment
            continue
    return added


def include_rows(ctx: MarketContext, uniqueids: Sequence[str]) -> int:
    """Undo exclusions; returns how many rows were excluded before."""
    X = ctx.db.models.Exclusion
    with ctx.db.begin(immediate=True) as session:
        removed = session.execute(delete(X).where(X.study == ctx.study, X.uniqueid.in_(list(uniqueids)))).rowcount
        if removed:
            audit.record(session, ctx, "participant.include", outcome="ok", target=None, uniqueids=list(uniqueids))
    return int(removed or 0)
