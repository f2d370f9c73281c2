"""HITs: create from the project's ``[HIT Configuration]``, list, expire, delete, extend.

The requests are psiTurk's (PSITURK_FACTS §6): the same qualification list in the same
order, the same ExternalQuestion, the same "current study" scoping through the HIT table.
What changes is what psiTurk got wrong: the ad URL is XML-escaped, every create is written
down *before* the call and carries a deterministic UniqueRequestToken (so a retry after a
timeout cannot post a second HIT), HITs are tagged with a RequesterAnnotation, a HIT of
fewer than 10 assignments is never "extended" to 10 or more (MTurk refuses it), and
delete explains why it cannot delete instead of failing with MTurk's confusing text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select

from turnout.config import ConfigError, Settings
from turnout.errors import Conflict, InvalidInput, TurnoutError
from turnout.marketplace.mturk import hit_content
from turnout.marketplace.mturk.hit_content import (  # noqa: F401 - MTurk's ids, re-exported for callers
    EXTERNAL_QUESTION_NS,
    FRAME_HEIGHT,
    LARGE_HIT,
    LOCALE,
    MASTERS,
    MAX_QUALIFICATIONS,
    NUMBER_APPROVED,
    PERCENT_APPROVED,
    external_question,
)
from turnout.marketplace.port import FailureKind, MarketError
from turnout.services import audit
from turnout.services.hit_views import (  # noqa: F401 - the read side, re-exported for callers
    ASSIGNMENT_STATUSES,
    balance,
    call,
    get_hit,
    hit_view,
    join_local,
    list_assignments,
    list_hits,
    marketplace_bonuses,
)
from turnout.services.recruitment import (
    DURATION_SECONDS,
    LIFETIME_SECONDS,
    MIN_REWARD,
    CallFailure,
    MarketContext,
    market_error,
    money_str,
    parse_count,
    parse_hours,
    parse_money,
    request_token,
    require_live_confirmation,
)

SECTION = "HIT Configuration"
REPEAT_PURPOSE = "block_repeat"
WORKER_SEARCH = {"sandbox": "https://workersandbox.mturk.com/projects?filters%5Bsearch_term%5D=",
                 "live": "https://worker.mturk.com/projects?filters%5Bsearch_term%5D="}


# --- the request psiTurk would build -------------------------------------------------


def _id_list(text: str) -> list[str]:
    # psiTurk split without stripping, so "a, b" sent " b"; empty items are skipped here.
    return [part.strip() for part in text.split(",") if part.strip()]


def advanced_qualifications(settings: Settings, mode: str) -> list[dict[str, Any]]:
    """The JSON list of requirement dicts named by ``advanced_quals_path_<mode>``, verbatim."""
    path_text = settings.hit.advanced_quals_path[mode]
    if not path_text:
        return []
    path = settings.project_dir / path_text
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"[{SECTION}] advanced_quals_path_{mode}: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidInput(f"[{SECTION}] advanced_quals_path_{mode}: {path} is not JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise InvalidInput(f"[{SECTION}] advanced_quals_path_{mode}: {path} must hold a JSON list of "
                           "qualification requirement objects")
    return data


def qualification_requirements(settings: Settings, mode: str, *, require_ids: Sequence[str] = (),
                               block_ids: Sequence[str] = (), extra_block_ids: Sequence[str] = ()
                               ) -> list[dict[str, Any]]:
    """psiTurk's list, in psiTurk's order (PSITURK_FACTS §6.1).

    1 percent approved >= approve_requirement; 2 number approved >= number_hits_approved;
    3 Masters (if require_master_workers); 4 Locale US (if us_only); 5 each required id
    (command line first, then ``require_quals_<mode>``) Exists; 6 each blocked id
    DoesNotExist (then turnout's own "took part already" qualification); 7 advanced quals.
    """
    quals = hit_content.requirements(
        mode, approve_requirement=settings.hit.approve_requirement,
        number_hits_approved=settings.hit.number_hits_approved,
        masters=settings.hit.require_master_workers, us_only=settings.hit.us_only,
        require_ids=[*require_ids, *_id_list(settings.hit.require_quals[mode])],
        block_ids=[*block_ids, *_id_list(settings.hit.block_quals[mode]), *extra_block_ids],
        advanced=advanced_qualifications(settings, mode))
    if len(quals) > MAX_QUALIFICATIONS:
        raise InvalidInput(f"this HIT would have {len(quals)} qualification requirements; MTurk allows at most "
                           f"{MAX_QUALIFICATIONS} (check require/block quals and advanced_quals_path)")
    return quals


def ad_url(settings: Settings, mode: str) -> str:
    """The ExternalURL: the ad page plus ``mode``, as psiTurk sends it."""
    try:
        base = settings.ad_url(mode)
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from None
    return f"{base}{'&' if '?' in base else '?'}mode={mode}"


def worker_search_url(mode: str, title: str) -> str | None:
    """Where a worker finds the HIT by its title on MTurk's worker site; None offline."""
    from urllib.parse import quote_plus

    site = WORKER_SEARCH.get(mode)
    return site + quote_plus(title) if site else None


@dataclass(frozen=True)
class CostEstimate:
    """What a HIT costs if every assignment is approved (MTURK_FACTS "Commission")."""

    assignments: int
    reward: Decimal
    fee_rate: Decimal
    rewards: Decimal
    fees: Decimal
    total: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {"assignments": self.assignments, "reward": money_str(self.reward),
                "fee_rate": str(self.fee_rate), "rewards": money_str(self.rewards),
                "fees": money_str(self.fees), "total": money_str(self.total)}


def cost_estimate(assignments: int, reward: Decimal, *, masters: bool = False) -> CostEstimate:
    """MTurk's fee (20%, 40% with 10 or more assignments, +5% for Masters), at least $0.01 each."""
    rate = hit_content.fee_rate(assignments=assignments, masters=masters)
    per_fee = max(Decimal("0.01"), (reward * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) \
        if reward > 0 else Decimal("0.00")
    rewards = reward * assignments
    fees = per_fee * assignments
    return CostEstimate(assignments, reward, rate, rewards, fees, rewards + fees)


@dataclass(frozen=True)
class HitRequest:
    """Everything CreateHIT will be sent, built and checked before anything is written."""

    title: str
    description: str
    keywords: str
    reward: Decimal
    max_assignments: int
    lifetime_seconds: int
    duration_seconds: int
    qualifications: list[dict[str, Any]]
    question: str
    annotation: str

    @property
    def masters(self) -> bool:
        return hit_content.requires_masters(self.qualifications)

    def cost(self) -> CostEstimate:
        return cost_estimate(self.max_assignments, self.reward, masters=self.masters)


def build_hit_request(ctx: MarketContext, *, max_assignments: int, reward: Any, duration_hours: Any,
                      require_qualification_ids: Sequence[str] = (),
                      block_qualification_ids: Sequence[str] = (),
                      repeat_block_id: str | None = None) -> HitRequest:
    """Check the arguments and the config, and build the CreateHIT request (no calls)."""
    s = ctx.settings
    max_assignments = parse_count(max_assignments, what="the number of assignments")
    amount = parse_money(reward, what="reward", minimum=MIN_REWARD)
    duration = parse_hours(duration_hours, what="the assignment duration (hours)", bounds=DURATION_SECONDS)
    lifetime_text = s.hit.lifetime
    lifetime = parse_hours(lifetime_text, what=f"[{SECTION}] lifetime (hours)", bounds=LIFETIME_SECONDS)
    title = s.hit.title
    description = s.hit.description
    if not title or not description:
        raise InvalidInput(f"config.txt [{SECTION}] title and description must be set to post a HIT")
    quals = qualification_requirements(
        s, ctx.mode, require_ids=list(require_qualification_ids), block_ids=list(block_qualification_ids),
        extra_block_ids=[repeat_block_id] if repeat_block_id else [])
    annotation = f"turnout study={ctx.study} codeversion={ctx.codeversion} project={s.project_dir.name}"[:255]
    return HitRequest(
        title=title, description=description, keywords=s.hit.keywords, reward=amount,
        max_assignments=max_assignments, lifetime_seconds=lifetime,
        duration_seconds=duration, qualifications=quals,
        question=external_question(ad_url(s, ctx.mode)), annotation=annotation,
    )


# --- create ------------------------------------------------------------------------


def create_hit(ctx: MarketContext, *, max_assignments: int, reward: Any, duration_hours: Any,
               require_qualification_ids: Sequence[str] = (), block_qualification_ids: Sequence[str] = (),
               request_key: str | None = None, confirm_live: bool = False) -> dict[str, Any]:
    """Post one HIT: record the intent, call CreateHIT with its token, record the outcome.

    ``request_key`` makes a create idempotent across calls (a campaign round passes
    ``campaign:<id>:round:<n>:hit:<k>``): the same key never posts a second HIT, and a
    key whose first try ended unknown is re-sent with the same UniqueRequestToken, which
    MTurk answers with HitAlreadyExists if the first try did get through.
    """
    from turnout.services import qualifications

    require_live_confirmation(ctx, confirm_live, "posting a HIT")
    repeat_block = qualifications.prepare_repeat_block(ctx)
    request = build_hit_request(ctx, max_assignments=max_assignments, reward=reward,
                                duration_hours=duration_hours,
                                require_qualification_ids=require_qualification_ids,
                                block_qualification_ids=block_qualification_ids, repeat_block_id=repeat_block)
    R = ctx.db.models.HitRecord
    key = request_key or f"hit:{ctx.mode}:{uuid.uuid4().hex}"
    with ctx.db.begin() as session:
        record = session.scalar(select(R).where(R.request_key == key))
        if record is not None and record.state == "created":
            return {"hit_id": record.hit_id, "state": "created", "repeat": True, "request_key": key,
                    "cost": request.cost().as_dict()}
        if record is None:
            record = R(study=ctx.study, mode=ctx.mode, codeversion=ctx.codeversion, request_key=key,
                       request_token=request_token("CreateHIT", ctx.study, key), state="pending",
                       title=request.title[:255], reward=money_str(request.reward),
                       max_assignments=request.max_assignments, lifetime_seconds=request.lifetime_seconds,
                       duration_seconds=request.duration_seconds, annotation=request.annotation,
                       qualifications=json.dumps(request.qualifications), created_at=ctx.clock.now(),
                       actor=ctx.actor)
            session.add(record)
            session.flush()
        record_id, token = record.id, record.request_token
    hit_id: str | None = None
    failure: CallFailure | None = None
    try:
        hit_id = ctx.port.post_hit(request, token=token)
    except MarketError as exc:
        failure = exc.failure
        if failure.ambiguous and not failure.unknown and failure.kind != FailureKind.ALREADY_DONE:
            # An earlier attempt may have posted the HIT; a later throttle does not say otherwise.
            failure = CallFailure(FailureKind.UNKNOWN_OUTCOME, failure.code, f"{failure.message} (an earlier "
                                  f"attempt got {failure.ambiguous})", failure.detail)
    state = "created" if hit_id else ("unknown" if failure and failure.unknown else "failed")
    with ctx.db.begin() as session:
        record = session.get(R, record_id)
        record.state = state
        record.hit_id = hit_id
        record.finished_at = ctx.clock.now()
        record.error = failure.text if failure else None
        if hit_id and session.get(ctx.db.models.Hit, hit_id) is None:
            session.add(ctx.db.models.Hit(hitid=hit_id))  # psiTurk's table: "the current study"
        audit.record(session, ctx, "hit.create", outcome={"created": "ok"}.get(state, state), target=hit_id,
                     request_key=key, assignments=request.max_assignments, reward=money_str(request.reward),
                     error=failure.text if failure else None)
    if failure is not None:
        if failure.unknown:
            raise TurnoutError(f"the marketplace did not confirm the new HIT ({failure.text}); it may exist. "
                               f"Re-run with request key {key} to settle it without posting twice",
                               request_key=key)
        raise Conflict(f"the marketplace refused the HIT: {failure.text}", request_key=key)
    return {"hit_id": hit_id, "state": "created", "repeat": False, "request_key": key,
            "cost": request.cost().as_dict(), "ad_url": ad_url(ctx.settings, ctx.mode)}


# --- expire, delete, extend ----------------------------------------------------------


def _result(hit_id: str, ok: bool, message: str) -> dict[str, Any]:
    return {"hit_id": hit_id, "ok": ok, "message": message}


def expire_hits(ctx: MarketContext, hit_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Expire each HIT now (UpdateExpirationForHIT with a time in the past)."""
    results = []
    for hit_id in hit_ids:
        try:
            call(ctx, f"expire HIT {hit_id}", "expire_hit", hit_id, now=ctx.clock.now())
            results.append(_result(hit_id, True, f"expired {ctx.mode} HIT {hit_id}"))
        except TurnoutError as exc:
            results.append(_result(hit_id, False, exc.message))
        audit.write(ctx, "hit.expire", outcome="ok" if results[-1]["ok"] else "failed", target=hit_id,
                    message=results[-1]["message"])
    return results


def expire_all(ctx: MarketContext) -> list[dict[str, Any]]:
    """Expire every active HIT of the current study (never other studies')."""
    return expire_hits(ctx, [h["hitid"] for h in list_hits(ctx, active=True)])


def _submitted_count(ctx: MarketContext, hit_id: str) -> int:
    return sum(1 for _ in ctx.port.assignments_for_hit(hit_id, ["Submitted"]))


def delete_hits(ctx: MarketContext, hit_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Delete each HIT that MTurk would let go, explaining the ones it would not.

    MTurk deletes only a Reviewable (expired or full) HIT whose submitted work is all
    approved or rejected; its own error text for the other cases is famously unclear
    (boto/boto3#2107), so the reason is checked and said up front.
    """
    R = ctx.db.models.HitRecord
    results = []
    for hit_id in hit_ids:
        try:
            hit = call(ctx, f"HIT {hit_id}", "get_hit", hit_id)
            status = hit.get("HITStatus")
            if status not in ("Reviewable", "Reviewing"):
                raise Conflict(f"HIT {hit_id} is {status}: only an expired or finished (Reviewable) HIT can be "
                               f"deleted; expire it first (turnout hit expire {hit_id})")
            waiting = _submitted_count(ctx, hit_id)
            if waiting:
                raise Conflict(f"HIT {hit_id} has {waiting} submitted assignment(s) not yet approved or "
                               "rejected; review them first (turnout worker approve --hit "
                               f"{hit_id})")
            call(ctx, f"delete HIT {hit_id}", "delete_hit", hit_id)
            with ctx.db.begin() as session:
                for rec in session.scalars(select(R).where(R.mode == ctx.mode, R.hit_id == hit_id)):
                    rec.deleted_at = ctx.clock.now()
            results.append(_result(hit_id, True, f"deleted {ctx.mode} HIT {hit_id}"))
        except TurnoutError as exc:
            results.append(_result(hit_id, False, exc.message))
        except MarketError as exc:
            results.append(_result(hit_id, False, market_error(exc.failure, f"HIT {hit_id}").message))
        audit.write(ctx, "hit.delete", outcome="ok" if results[-1]["ok"] else "failed", target=hit_id,
                    message=results[-1]["message"])
    return results


def delete_all(ctx: MarketContext) -> list[dict[str, Any]]:
    """Delete the current study's HITs that can be deleted (psiTurk: Reviewable, nothing to review)."""
    done = [h["hitid"] for h in list_hits(ctx, reviewable=True) if h["number_submissions_needing_action"] == 0]
    return delete_hits(ctx, done)


def _positive(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{what} must be a whole number of at least 1, got {value!r}")
    return value


def extend_hit(ctx: MarketContext, hit_id: str, *, assignments: int | None = None,
               minutes: int | None = None, confirm_live: bool = False) -> dict[str, Any]:
    """Add assignments and/or time to a HIT.

    A HIT created with fewer than 10 assignments cannot reach 10 or more (MTurk's
    InvalidMaximumAssignmentsIncrease, MTURK_FACTS "9-cap trap"): refused here, before
    any call, with what to do instead. Added time counts from now for an expired HIT.
    """
    assignments = _positive(assignments, "the number of assignments to add")
    minutes = _positive(minutes, "the number of minutes to add")
    if assignments is None and minutes is None:
        raise InvalidInput("say what to extend: a number of assignments and/or minutes")
    if assignments:
        require_live_confirmation(ctx, confirm_live, "adding assignments")
    hit = call(ctx, f"HIT {hit_id}", "get_hit", hit_id)
    current = int(hit["MaxAssignments"])
    if assignments and current < LARGE_HIT <= current + assignments:
        raise InvalidInput(
            f"HIT {hit_id} has {current} assignments; MTurk never lets a HIT of fewer than {LARGE_HIT} grow to "
            f"{LARGE_HIT} or more (InvalidMaximumAssignmentsIncrease). Add at most {LARGE_HIT - 1 - current} here, "
            "or create a new HIT for the rest")
    done: dict[str, Any] = {"hit_id": hit_id}
    try:
        if assignments:
            token, basis, earlier = _extend_intent(ctx, hit_id, assignments, current)
            if earlier and current >= basis + assignments:
                done["note"] = (f"an earlier request to add {assignments} (from {basis}) had gone through; "
                                "nothing added again")
            else:
                _add_assignments(ctx, hit_id, assignments, token, basis)
                current = basis + assignments if earlier else current + assignments
            done["max_assignments"] = current
            R = ctx.db.models.HitRecord
            with ctx.db.begin() as session:
                for rec in session.scalars(select(R).where(R.mode == ctx.mode, R.hit_id == hit_id)):
                    rec.max_assignments = current
        if minutes:
            start = max(hit["Expiration"], ctx.clock.now())
            expire_at = start + timedelta(minutes=minutes)
            call(ctx, f"extend HIT {hit_id}", "extend_expiry", hit_id, expire_at)
            done["expiration"] = expire_at.isoformat()
    except TurnoutError as exc:
        if not exc.detail.get("unknown"):  # an unknown outcome is already recorded, with its token
            audit.write(ctx, "hit.extend", outcome="failed", target=hit_id, assignments=assignments,
                        minutes=minutes, error=exc.message)
        raise
    audit.write(ctx, "hit.extend", outcome="ok", target=hit_id, assignments=assignments, minutes=minutes,
                max_assignments=done.get("max_assignments"))
    return done


def _extend_intent(ctx: MarketContext, hit_id: str, assignments: int, current: int) -> tuple[str, int, bool]:
    """The UniqueRequestToken for adding ``assignments`` to ``hit_id``: (token, the count it
    adds to, whether it is an earlier request left unknown).

    Deterministic: the same request (same HIT, count, and last extend event) gives the
    same token, so a retry or a concurrent run cannot add twice; MTurk answers the repeat
    with its duplicate-token error. A request left unknown is found in the audit trail and
    re-sent with its own token; past the token's 24 h, MaxAssignments tells whether it
    went through (it went through if the HIT already has ``before + count``).
    """
    events = audit.list_events(ctx, action="hit.extend", target=hit_id, limit=20)
    latest = next((e for e in events if e.detail.get("assignments")), None)
    if (latest is not None and latest.outcome == "unknown" and latest.detail.get("assignments") == assignments
            and isinstance(latest.detail.get("token"), str) and isinstance(latest.detail.get("before"), int)):
        return latest.detail["token"], latest.detail["before"], True
    token = request_token("CreateAdditionalAssignmentsForHIT", ctx.study, hit_id, current, assignments,
                          latest.id if latest is not None else 0)
    return token, current, False


def _add_assignments(ctx: MarketContext, hit_id: str, assignments: int, token: str, before: int) -> None:
    """CreateAdditionalAssignmentsForHIT with ``token``; an answer that may hide an applied
    request (no response, a 5xx, even when a later retry was throttled) is recorded as
    unknown with the token, so the next run settles it instead of adding more."""
    try:
        ctx.port.add_assignments(hit_id, assignments, token=token)
        return
    except MarketError as exc:
        failure = exc.failure
    if failure.kind == FailureKind.ALREADY_DONE:
        return
    ambiguous = failure.ambiguous
    if failure.unknown or ambiguous:
        audit.write(ctx, "hit.extend", outcome="unknown", target=hit_id, assignments=assignments, token=token,
                    before=before, error=failure.text)
        raise TurnoutError(f"add assignments to HIT {hit_id}: the marketplace did not answer clearly "
                           f"({failure.text}); it may or may not have happened. Run the same command again to "
                           "settle it: it will not add twice", unknown=True)
    raise market_error(failure, f"add assignments to HIT {hit_id}")

