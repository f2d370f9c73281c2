"""Keeping repeat workers out: a qualification turnout owns, granted to everyone who took part.

psiTurk refuses a returning worker only when they reach /ad (error 1010), after MTurk has
already shown them the HIT. With ``[HIT Configuration] block_repeat_workers = true``,
turnout creates (once per study and mode) a qualification type, grants it to each worker
who took part, and adds a DoesNotExist requirement for it to every new HIT, so MTurk
itself stops them before they accept.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from turnout.errors import TurnoutError
from turnout.experiment.status import Status
from turnout.marketplace.port import MarketError
from turnout.services import audit
from turnout.services.recruitment import MarketContext

PURPOSE = "block_repeat"


def block_repeat_enabled(ctx: MarketContext) -> bool:
    return ctx.settings.hit.block_repeat_workers


def qualification_name(ctx: MarketContext) -> str:
    if ctx.settings.hit.block_repeat_workers_name:
        return ctx.settings.hit.block_repeat_workers_name
    return f"turnout: took part in {ctx.settings.project_dir.name} ({ctx.study})"[:255]


def _find_by_name(ctx: MarketContext, name: str) -> str | None:
    return ctx.port.find_qualification(name)


def ensure_repeat_qualification(ctx: MarketContext) -> str:
    """The study's "took part" qualification type id, created on first use."""
    Q = ctx.db.models.OwnedQualification
    with ctx.db.begin() as session:
        qid = session.scalar(select(Q.qualification_type_id).where(
            Q.study == ctx.study, Q.mode == ctx.mode, Q.purpose == PURPOSE))
    if qid:
        return str(qid)
    name = qualification_name(ctx)
    try:
        qid = ctx.port.create_qualification(
            name, "Granted by turnout to workers who already took part in this study, so they are "
                  "not recruited again.")
    except MarketError as exc:
        failure = exc.failure
        # Dallinger matches "already created a QualificationType with this name" (MTURK_FACTS).
        qid = None if failure.unknown else _find_by_name(ctx, name)
        if qid is None:
            raise TurnoutError(f"cannot create the repeat-worker qualification {name!r}: {failure.text}") from None
    try:
        with ctx.db.begin() as session:
            session.add(Q(study=ctx.study, mode=ctx.mode, purpose=PURPOSE, qualification_type_id=qid, name=name,
                          created_at=ctx.clock.now()))
            audit.record(session, ctx, "qualification.create", outcome="ok", target=qid, name=name)
    except IntegrityError:  # another process recorded it first; theirs wins
        with ctx.db.begin() as session:
            qid = session.scalar(select(Q.qualification_type_id).where(
                Q.study == ctx.study, Q.mode == ctx.mode, Q.purpose == PURPOSE))
    return str(qid)


def grant(ctx: MarketContext, qualification_type_id: str, worker_ids: Iterable[str]) -> int:
    """Grant the qualification to each worker not yet granted; returns how many were sent.

    Best effort by design: a failed grant is audited and retried on the next sweep, but it
    never fails the payment or the HIT that triggered it.
    """
    G = ctx.db.models.QualificationGrant
    wanted = sorted({w for w in worker_ids if w and not w.startswith("debug")})
    if not wanted:
        return 0
    with ctx.db.begin() as session:
        have = set(session.scalars(select(G.worker_id).where(
            G.qualification_type_id == qualification_type_id, G.worker_id.in_(wanted))))
    sent = 0
    for worker_id in (w for w in wanted if w not in have):
        try:
            ctx.port.qualify_worker(qualification_type_id, worker_id)
        except MarketError as exc:
            failure = exc.failure
            audit.write(ctx, "qualification.grant", outcome="failed", target=worker_id,
                        qualification_type_id=qualification_type_id, error=failure.text)
            continue
        try:
            with ctx.db.begin() as session:
                session.add(G(qualification_type_id=qualification_type_id, worker_id=worker_id,
                              granted_at=ctx.clock.now()))
        except IntegrityError:
            pass
        sent += 1
    return sent


def sweep(ctx: MarketContext, qualification_type_id: str) -> int:
    """Grant to every worker of this mode who got as far as the experiment."""
    P = ctx.db.models.Participant
    with ctx.db.begin() as session:
        workers = list(session.scalars(select(P.workerid).where(
            P.mode == ctx.mode, P.status >= int(Status.ALLOCATED)).distinct()))
    return grant(ctx, qualification_type_id, workers)


def prepare_repeat_block(ctx: MarketContext) -> str | None:
    """Before a new HIT: the qualification id to block with (granted to all so far), or None."""
    if not block_repeat_enabled(ctx):
        return None
    qid = ensure_repeat_qualification(ctx)
    sweep(ctx, qid)
    return qid


def after_participation(ctx: MarketContext, worker_ids: Iterable[str]) -> None:
    """After approving or rejecting work: keep those workers out of later HITs."""
    if not block_repeat_enabled(ctx):
        return
    try:
        qid = ensure_repeat_qualification(ctx)
    except TurnoutError:
        return
    grant(ctx, qid, worker_ids)
