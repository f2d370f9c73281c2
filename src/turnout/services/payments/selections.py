"""Which assignments an action acts on: named ids, one HIT, all of a mode and
codeversion, or a filter of the participant table; always this study's own HITs unless a
person names another project's."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from turnout.errors import Forbidden, InvalidInput, TurnoutError
from turnout.marketplace.port import FailureKind, MarketError
from turnout.services import participant_table
from turnout.services.participant_table import TableQuery
from turnout.services.payments.results import ItemResult, Target
from turnout.services.recruitment import (
    MarketContext,
)


def _local_rows(ctx: MarketContext, assignment_ids: Sequence[str]) -> dict[str, Any]:
    """The newest local participant row per assignment id (psiTurk: newest beginhit first)."""
    P = ctx.db.models.Participant
    found: dict[str, Any] = {}
    ids = list(dict.fromkeys(assignment_ids))
    with ctx.db.begin() as session:
        for start in range(0, len(ids), 500):
            rows = session.scalars(select(P).where(P.assignmentid.in_(ids[start:start + 500]))
                                   .order_by(P.beginhit.desc()))
            for row in rows:
                found.setdefault(row.assignmentid, row)
    return found


OTHER_PROJECTS_FLAG = "--allow-other-projects"


def own_hit_ids(ctx: MarketContext) -> set[str]:
    """The HITs this project posted or knows (psiTurk's HIT table, turnout's records)."""
    from turnout.services.hit_views import _study_hit_ids

    return _study_hit_ids(ctx)


def require_own_hit(ctx: MarketContext, hit_id: str, allow_other_projects: bool) -> None:
    """``--hit`` of a HIT that is not this project's is refused unless asked for by name:
    two projects sharing one marketplace account would otherwise pay each other's work."""
    if allow_other_projects or hit_id in own_hit_ids(ctx):
        return
    raise Forbidden(f"HIT {hit_id} is not one of this project's {ctx.mode} HITs (another project on the same "
                    f"marketplace account may own it); pass {OTHER_PROJECTS_FLAG} if you mean it")


def _targets_from_ids(ctx: MarketContext, assignment_ids: Sequence[str], *,
                      allow_other_projects: bool = False, kind: str = "approve"
                      ) -> tuple[list[Target], list[ItemResult]]:
    """The named assignments as the marketplace knows them (GetAssignment: worker, HIT,
    status), with refusals for the ones that are another project's or unknown."""
    ids = [a.strip() for a in assignment_ids if a and a.strip()]
    if not ids:
        raise InvalidInput("name at least one assignment id")
    local = _local_rows(ctx, ids)
    own = own_hit_ids(ctx)
    targets: list[Target] = []
    refused: list[ItemResult] = []
    for a in dict.fromkeys(ids):
        p = local.get(a)
        try:
            found = ctx.port.get_assignment(a)
        except MarketError as exc:
            failure = exc.failure
            why = ("the marketplace does not know this assignment" if failure.kind == FailureKind.NOT_FOUND
                   else f"could not look the assignment up ({failure.text}); nothing sent")
            refused.append(ItemResult(kind, a, "failed", why, uniqueid=p.uniqueid if p is not None else None))
            continue
        worker, hit_id, status = found.worker_id, found.hit_id, found.status
        if p is not None and p.workerid != worker:
            p = None
        if hit_id not in own and p is None and not allow_other_projects:
            refused.append(ItemResult(kind, a, "refused",
                                      f"assignment of HIT {hit_id}, which is not one of this project's HITs "
                                      f"(another project on the same account may own it); pass "
                                      f"{OTHER_PROJECTS_FLAG} if you mean it", worker_id=worker))
            continue
        targets.append(Target(a, worker, hit_id, p, status))
    return targets, refused


def _targets_from_marketplace(ctx: MarketContext, hit_ids: Iterable[str], status: str) -> list[Target]:
    found: list[dict[str, Any]] = []
    for hit_id in hit_ids:
        try:
            found.extend(ctx.port.assignments_for_hit(hit_id, [status]))
        except MarketError as exc:
            raise TurnoutError(f"cannot list the assignments of HIT {hit_id}: {exc.failure.text}") from None
    local = _local_rows(ctx, [a["AssignmentId"] for a in found])
    targets = []
    for a in found:
        p = local.get(a["AssignmentId"])
        if p is not None and p.workerid != a["WorkerId"]:
            p = None
        targets.append(Target(a["AssignmentId"], a["WorkerId"], a["HITId"], p))
    return targets


def scope_hit_ids(ctx: MarketContext, codeversion: str | None = None, *, all_versions: bool = False) -> list[str]:
    """The HITs of one study, one mode and one codeversion (the project's, unless named;
    every codeversion with ``all_versions``): the only scope "all" ever means.

    HITs turnout created carry their codeversion; HITs from psiTurk (only in its HIT table)
    count when this mode's participants of that codeversion worked on them.
    """
    version = codeversion if codeversion is not None else ctx.codeversion
    R, H, P = ctx.db.models.HitRecord, ctx.db.models.Hit, ctx.db.models.Participant
    records = select(R.hit_id).where(R.study == ctx.study, R.mode == ctx.mode, R.hit_id.is_not(None),
                                     R.deleted_at.is_(None))
    worked_on = select(P.hitid).where(P.mode == ctx.mode, P.hitid.in_(select(H.hitid)))
    if not all_versions:
        records, worked_on = records.where(R.codeversion == version), worked_on.where(P.codeversion == version)
    with ctx.db.begin() as session:
        ids = list(session.scalars(records.order_by(R.id)))
        recorded = set(session.scalars(select(R.hit_id).where(R.mode == ctx.mode, R.hit_id.is_not(None))))
        ids.extend(sorted(h for h in session.scalars(worked_on.distinct()) if h and h not in recorded))
    return list(dict.fromkeys(ids))


def _in_scope(target: Target, version: str) -> bool:
    p = target.participant
    return p is None or p.codeversion in (None, version)


@dataclass(frozen=True)
class Ids:
    """These assignments, by id (the CLI's arguments, a dashboard row's button)."""

    assignment_ids: tuple[str, ...]


@dataclass(frozen=True)
class OneHit:
    """The assignments of one HIT (this project's, unless other projects are allowed)."""

    hit_id: str


@dataclass(frozen=True)
class AllOf:
    """The assignments on this study's HITs of the context's mode and one codeversion
    (the project's when None). ``whole_hits`` keeps those whose participant row is of
    another codeversion (psiTurk's "approve all workers for all HITs")."""

    codeversion: str | None = None
    whole_hits: bool = False


@dataclass(frozen=True)
class TableFilter:
    """The participants a filter of the dashboard's participant table shows (the same
    query string as ``GET /api/participants/``), in the context's mode."""

    query: TableQuery


Selection = Ids | OneHit | AllOf | TableFilter


SOURCE_STATUS = {"approve": "Submitted", "reject": "Submitted", "unreject": "Rejected", "bonus": "Approved"}


def select_targets(ctx: MarketContext, kind: str, selection: Selection, *, allow_other_projects: bool = False
                   ) -> tuple[list[Target], list[ItemResult], str | None]:
    """The assignments ``selection`` means for an action of ``kind``: (targets, items
    refused or skipped already, the codeversion each target's participant must be of)."""
    status = SOURCE_STATUS[kind]
    if isinstance(selection, Ids):
        targets, refused = _targets_from_ids(ctx, selection.assignment_ids,
                                             allow_other_projects=allow_other_projects, kind=kind)
        return targets, refused, None
    if isinstance(selection, OneHit):
        require_own_hit(ctx, selection.hit_id, allow_other_projects)
        return _targets_from_marketplace(ctx, [selection.hit_id], status), [], None
    if isinstance(selection, AllOf):
        version = selection.codeversion if selection.codeversion is not None else ctx.codeversion
        targets = _targets_from_marketplace(ctx, scope_hit_ids(ctx, version), status)
        return targets, [], None if selection.whole_hits else version
    return (*_targets_from_filter(ctx, kind, selection.query, allow_other_projects), None)


def _targets_from_filter(ctx: MarketContext, kind: str, tq: TableQuery, allow_other_projects: bool
                         ) -> tuple[list[Target], list[ItemResult]]:
    """The filter's participants of this mode, as the marketplace knows their assignments;
    those not in the status the action works on are reported as skipped."""
    P = ctx.db.models.Participant
    where = [*participant_table.where(P, tq), P.mode == ctx.mode, P.assignmentid.is_not(None)]
    with ctx.db.begin() as session:
        ids = list(dict.fromkeys(session.scalars(select(P.assignmentid).where(*where).order_by(P.beginhit))))
    if not ids:
        return [], []
    found, refused = _targets_from_ids(ctx, ids, allow_other_projects=allow_other_projects, kind=kind)
    wanted = SOURCE_STATUS[kind]
    targets = []
    for t in found:
        if t.status not in (None, wanted) and not (kind == "bonus" and t.status == "Submitted"):
            refused.append(ItemResult(kind, t.assignment_id, "skipped", f"the assignment is {t.status}, not {wanted}",
                                      worker_id=t.worker_id, uniqueid=t.uniqueid))
        else:
            targets.append(t)
    return targets, refused
