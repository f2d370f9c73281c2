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
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import select

from turnout.config import ConfigError, Settings
from turnout.errors import Conflict, InvalidInput, NotFound, TurnoutError
from turnout.services import audit
from turnout.services.recruitment import (
    DURATION_SECONDS,
    LIFETIME_SECONDS,
    MIN_REWARD,
    CallFailure,
    MarketContext,
    classify,
    is_duplicate_token,
    money_str,
    paginate,
    parse_count,
    parse_hours,
    parse_money,
    request_token,
    require_live_confirmation,
    watch_attempts,
)

SECTION = "HIT Configuration"
PERCENT_APPROVED = "000000000000000000L0"
NUMBER_APPROVED = "00000000000000000040"
LOCALE = "00000000000000000071"
MASTERS = {"sandbox": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6", "live": "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH",
           "local": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"}
EXTERNAL_QUESTION_NS = ("http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/"
                        "2006-07-14/ExternalQuestion.xsd")
FRAME_HEIGHT = 600
MAX_QUALIFICATIONS = 10  # CreateHIT accepts 0-10 QualificationRequirements (MTURK_FACTS)
LARGE_HIT = 10  # 10+ assignments: +20% fee, and a <10 HIT can never grow to 10+
_HIT_ID = re.compile(r"\b([A-Z0-9]{20,64})\b")
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
    quals: list[dict[str, Any]] = [
        {"QualificationTypeId": PERCENT_APPROVED, "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [settings.hit.approve_requirement]},
        {"QualificationTypeId": NUMBER_APPROVED, "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [settings.hit.number_hits_approved]},
    ]
    if settings.hit.require_master_workers:
        quals.append({"QualificationTypeId": MASTERS[mode], "Comparator": "Exists"})
    if settings.hit.us_only:
        quals.append({"QualificationTypeId": LOCALE, "Comparator": "EqualTo", "LocaleValues": [{"Country": "US"}]})
    for qid in [*require_ids, *_id_list(settings.hit.require_quals[mode])]:
        quals.append({"QualificationTypeId": qid, "Comparator": "Exists"})
    for qid in [*block_ids, *_id_list(settings.hit.block_quals[mode]), *extra_block_ids]:
        quals.append({"QualificationTypeId": qid, "Comparator": "DoesNotExist"})
    quals.extend(advanced_qualifications(settings, mode))
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


def external_question(url: str) -> str:
    """psiTurk's ExternalQuestion, with the URL XML-escaped (psiTurk's was not, so an ``&``
    in ad_url made MTurk refuse the HIT with XMLParseError)."""
    return (f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_NS}"><ExternalURL>{escape(url)}</ExternalURL>'
            f"<FrameHeight>{FRAME_HEIGHT}</FrameHeight></ExternalQuestion>")


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
    """20% fee (40% with 10 or more assignments, +5% for Masters), at least $0.01 each."""
    rate = Decimal("0.20") + (Decimal("0.20") if assignments >= LARGE_HIT else 0) + (
        Decimal("0.05") if masters else 0)
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
        return any(q["QualificationTypeId"] in MASTERS.values() for q in self.qualifications)

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


# --- views -------------------------------------------------------------------------


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


def _marketplace_error(failure: CallFailure, what: str) -> TurnoutError:
    if failure.unknown:
        return TurnoutError(f"{what}: the marketplace did not answer clearly ({failure.text}); "
                            "it may or may not have happened, check before retrying")
    if "does not exist" in failure.message:
        return NotFound(f"{what}: {failure.text}")
    return Conflict(f"{what}: {failure.text}")


def _call(ctx: MarketContext, what: str, operation: str, **params: Any) -> dict[str, Any]:
    """One marketplace call whose errors become turnout error values."""
    try:
        return getattr(ctx.client, operation)(**params)
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        raise _marketplace_error(failure, what) from None


def list_hits(ctx: MarketContext, *, all_studies: bool = False, active: bool = False,
              reviewable: bool = False) -> list[dict[str, Any]]:
    """This study's HITs on this marketplace (or every HIT of the account with
    ``all_studies``), with psiTurk's counts; ``active`` = not expired, ``reviewable`` =
    Reviewable or Reviewing (psiTurk's filters)."""
    if active and reviewable:
        raise InvalidInput("choose at most one of active and reviewable")
    mine = None if all_studies else _study_hit_ids(ctx)
    try:
        hits = [h for h in paginate(ctx.client, "list_hits", "HITs") if mine is None or h["HITId"] in mine]
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        raise _marketplace_error(failure, "listing HITs") from None
    records = _records(ctx, [h["HITId"] for h in hits])
    views = [hit_view(ctx, h, records.get(h["HITId"])) for h in hits]
    if active:
        views = [v for v in views if not v["is_expired"]]
    if reviewable:
        views = [v for v in views if v["status"] in ("Reviewable", "Reviewing")]
    views.sort(key=lambda v: v["creation_time"] or "")
    return views


def get_hit(ctx: MarketContext, hit_id: str) -> dict[str, Any]:
    hit = _call(ctx, f"HIT {hit_id}", "get_hit", HITId=hit_id)["HIT"]
    return hit_view(ctx, hit, _records(ctx, [hit_id]).get(hit_id))


def balance(ctx: MarketContext) -> dict[str, Any]:
    answer = _call(ctx, "account balance", "get_account_balance")
    return {"mode": ctx.mode, "available_balance": answer.get("AvailableBalance"),
            "on_hold_balance": answer.get("OnHoldBalance")}


# --- create ------------------------------------------------------------------------


def _hit_id_from(failure: CallFailure) -> str | None:
    text = failure.message
    after = text.split("HITId", 1)[1] if "HITId" in text else text
    for match in _HIT_ID.finditer(after):
        if any(c.isalpha() for c in match.group(1)):
            return match.group(1)
    return None


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
    attempts = None
    try:
        with watch_attempts(ctx.client) as attempts:
            answer = ctx.client.create_hit(
                MaxAssignments=request.max_assignments, LifetimeInSeconds=request.lifetime_seconds,
                AssignmentDurationInSeconds=request.duration_seconds, Reward=money_str(request.reward),
                Title=request.title, Keywords=request.keywords, Description=request.description,
                Question=request.question, QualificationRequirements=request.qualifications,
                RequesterAnnotation=request.annotation, UniqueRequestToken=token)
        hit_id = answer["HIT"]["HITId"]
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        if not failure.unknown and is_duplicate_token(failure):
            hit_id = _hit_id_from(failure)
            failure = None if hit_id else failure
        elif attempts is not None and attempts.count > 1 and attempts.ambiguous and not failure.unknown:
            # An earlier attempt may have posted the HIT; a later throttle does not say otherwise.
            failure = CallFailure(unknown=True, code=failure.code, message=f"{failure.message} (an earlier "
                                  f"attempt got {attempts.ambiguous})", turk_code=failure.turk_code)
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
            _call(ctx, f"expire HIT {hit_id}", "update_expiration_for_hit", HITId=hit_id,
                  ExpireAt=ctx.clock.now() - timedelta(days=30))
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
    return sum(1 for _ in paginate(ctx.client, "list_assignments_for_hit", "Assignments", HITId=hit_id,
                                   AssignmentStatuses=["Submitted"]))


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
            hit = _call(ctx, f"HIT {hit_id}", "get_hit", HITId=hit_id)["HIT"]
            status = hit.get("HITStatus")
            if status not in ("Reviewable", "Reviewing"):
                raise Conflict(f"HIT {hit_id} is {status}: only an expired or finished (Reviewable) HIT can be "
                               f"deleted; expire it first (turnout hit expire {hit_id})")
            waiting = _submitted_count(ctx, hit_id)
            if waiting:
                raise Conflict(f"HIT {hit_id} has {waiting} submitted assignment(s) not yet approved or "
                               "rejected; review them first (turnout worker approve --hit "
                               f"{hit_id})")
            _call(ctx, f"delete HIT {hit_id}", "delete_hit", HITId=hit_id)
            with ctx.db.begin() as session:
                for rec in session.scalars(select(R).where(R.mode == ctx.mode, R.hit_id == hit_id)):
                    rec.deleted_at = ctx.clock.now()
            results.append(_result(hit_id, True, f"deleted {ctx.mode} HIT {hit_id}"))
        except TurnoutError as exc:
            results.append(_result(hit_id, False, exc.message))
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            results.append(_result(hit_id, False, _marketplace_error(failure, f"HIT {hit_id}").message))
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
    hit = _call(ctx, f"HIT {hit_id}", "get_hit", HITId=hit_id)["HIT"]
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
            _call(ctx, f"extend HIT {hit_id}", "update_expiration_for_hit", HITId=hit_id, ExpireAt=expire_at)
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
    with watch_attempts(ctx.client) as attempts:
        try:
            ctx.client.create_additional_assignments_for_hit(
                HITId=hit_id, NumberOfAdditionalAssignments=assignments, UniqueRequestToken=token)
            return
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
    if not failure.unknown and is_duplicate_token(failure):
        return
    ambiguous = attempts.ambiguous if attempts.count > 1 else None
    if failure.unknown or ambiguous:
        audit.write(ctx, "hit.extend", outcome="unknown", target=hit_id, assignments=assignments, token=token,
                    before=before, error=failure.text)
        raise TurnoutError(f"add assignments to HIT {hit_id}: the marketplace did not answer clearly "
                           f"({failure.text}); it may or may not have happened. Run the same command again to "
                           "settle it: it will not add twice", unknown=True)
    raise _marketplace_error(failure, f"add assignments to HIT {hit_id}")


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
    params: dict[str, Any] = {"AssignmentStatuses": [status]} if status else {}
    found: list[dict[str, Any]] = []
    for hit_id in hit_ids:
        try:
            found.extend(paginate(ctx.client, "list_assignments_for_hit", "Assignments", HITId=hit_id, **params))
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            raise _marketplace_error(failure, f"assignments of HIT {hit_id}") from None
    return join_local(ctx, found, market_bonuses=marketplace_bonuses(ctx, hit_ids))


def marketplace_bonuses(ctx: MarketContext, hit_ids: Sequence[str]) -> dict[str, list[str]] | None:
    """The bonuses the marketplace itself paid, per assignment (ListBonusPayments per HIT),
    or None when it cannot say (the listing then shows the ledger's view only)."""
    found: dict[str, list[str]] = {}
    try:
        for hit_id in dict.fromkeys(hit_ids):
            for b in paginate(ctx.client, "list_bonus_payments", "BonusPayments", HITId=hit_id):
                found.setdefault(str(b["AssignmentId"]), []).append(money_str(Decimal(str(b["BonusAmount"]))))
    except Exception as exc:
        if classify(exc) is None:
            raise
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
