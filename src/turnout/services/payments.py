"""The payments ledger: approve, reject, unreject and bonus, each paid at most once.

Every action is four small steps (healthchecks' claimable work, sendalerts.py):

1. **intent**: a ledger row with a unique idempotency key (``bonus:<mode>:<assignment>``)
   is inserted, or the existing one found. Two requests for the same payment meet here.
2. **claim**: a conditional UPDATE moves the row to ``claimed`` only from pending,
   failed, unknown (or a claim gone stale); it must change exactly one row, so of two
   processes at once only one goes on to call the marketplace.
3. **call**: the marketplace call, with the row's deterministic UniqueRequestToken where
   MTurk takes one (SendBonus).
4. **outcome**: succeeded / failed (with MTurk's error) / unknown (timeout, 5xx), in one
   transaction with the participant's status change and the audit event.

An unknown outcome is safe to retry: a bonus is re-sent with the same token (MTurk's
duplicate-token error counts as success; past the token's 24 h life, ListBonusPayments is
checked first), and an approve or reject that MTurk refuses because the assignment is no
longer Submitted is checked with GetAssignment and counts as done if it is. A crash
between the marketplace's success and step 4 leaves the row claimed; the claim goes
stale and the next run settles it the same way.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from turnout.errors import InvalidInput, TurnoutError
from turnout.experiment.status import Status, transition
from turnout.services import audit
from turnout.services.recruitment import (
    CENT,
    CallFailure,
    MarketContext,
    classify,
    is_duplicate_token,
    is_wrong_assignment_state,
    money_str,
    paginate,
    parse_money,
    request_token,
    require_live_confirmation,
)

KINDS = ("approve", "reject", "unreject", "bonus")
CLAIMABLE = ("pending", "failed", "unknown")
# A claim older than this belongs to a process that died between the call and the outcome.
STALE_CLAIM = timedelta(minutes=10)
# MTurk forgets a UniqueRequestToken after 24 h; past this age a retry checks first.
TOKEN_TRUSTED_FOR = timedelta(hours=23)
DEFAULT_REJECT_FEEDBACK = "Your submission did not meet the requirements stated in the HIT."
_STATUS_AFTER = {"approve": Status.CREDITED, "unreject": Status.CREDITED, "bonus": Status.BONUSED}
_CHECK_STATUS = {"approve": "Approved", "unreject": "Approved", "reject": "Rejected"}


def _claimant() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{threading.get_ident() % 10**6}:{uuid.uuid4().hex[:8]}"


# --- results --------------------------------------------------------------------------


@dataclass
class ItemResult:
    """What happened to one assignment. ``outcome``:

    ``ok`` (done by this call), ``already`` (done before; nothing sent), ``skipped``
    (not attempted, see message), ``busy`` (another process holds it right now),
    ``failed`` (the marketplace refused), ``unknown`` (no clear answer; retry later).
    """

    kind: str
    assignment_id: str
    outcome: str
    message: str
    amount: str | None = None
    worker_id: str | None = None
    uniqueid: str | None = None
    ledger_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "assignment_id": self.assignment_id, "outcome": self.outcome,
                "message": self.message, "amount": self.amount, "worker_id": self.worker_id,
                "uniqueid": self.uniqueid, "ledger_id": self.ledger_id}


@dataclass
class BatchResult:
    action: str
    mode: str
    items: list[ItemResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)

    @property
    def ok(self) -> bool:
        """True when nothing failed or is left unknown or busy."""
        return not any(i.outcome in ("failed", "unknown", "busy") for i in self.items)

    @property
    def paid(self) -> Decimal:
        return sum((Decimal(i.amount) for i in self.items if i.outcome == "ok" and i.amount), Decimal("0.00"))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.outcome] = out.get(item.outcome, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "mode": self.mode, "ok": self.ok, "counts": self.counts(),
                "paid": money_str(self.paid), "items": [i.as_dict() for i in self.items]}


@dataclass(frozen=True)
class Target:
    """One assignment to act on, with what is known about it locally."""

    assignment_id: str
    worker_id: str | None = None
    hit_id: str | None = None
    participant: Any | None = None  # detached participant row, if this study has one

    @property
    def uniqueid(self) -> str | None:
        return self.participant.uniqueid if self.participant is not None else None


# --- the four steps ----------------------------------------------------------------------


def _intent(ctx: MarketContext, key: str, kind: str, target: Target, *, amount: Decimal | None,
            reason: str | None) -> Any:
    """Step 1: insert the intent row for ``key`` or return the one already there."""
    L = ctx.db.models.LedgerEntry
    with ctx.db.begin() as session:
        entry = session.scalar(select(L).where(L.idempotency_key == key))
        if entry is not None:
            return entry
    p = target.participant
    try:
        with ctx.db.begin(immediate=True) as session:
            now = ctx.clock.now()
            entry = L(study=ctx.study, mode=ctx.mode, kind=kind, idempotency_key=key,
                      assignment_id=target.assignment_id, worker_id=target.worker_id, hit_id=target.hit_id,
                      uniqueid=target.uniqueid, codeversion=p.codeversion if p is not None else None,
                      amount=money_str(amount) if amount is not None else None, reason=reason,
                      state="pending", attempts=0, created_at=now, actor=ctx.actor[:128])
            session.add(entry)
            session.flush()
            if kind == "bonus":
                # Derived from the row, so every retry of this payment sends the same token.
                entry.request_token = request_token("SendBonus", ctx.study, entry.id, key, now.isoformat())
            return entry
    except IntegrityError:  # a concurrent request wrote the same intent first: use theirs
        with ctx.db.begin() as session:
            return session.scalar(select(L).where(L.idempotency_key == key))


def _claim(ctx: MarketContext, entry_id: int, claimant: str, *, amount: Decimal | None,
           reason: str | None) -> Any | None:
    """Step 2: take the row for this process, or return None if someone else has it.

    The UPDATE is conditional on the state just read (and, for a stale claim, on who held
    it), so it changes exactly one row for exactly one process. A row never sent
    (pending) or definitely refused (failed) takes this request's amount and reason; an
    unknown one keeps its own, so its retry is the very request MTurk may have applied.
    """
    L = ctx.db.models.LedgerEntry
    now = ctx.clock.now()
    with ctx.db.begin(immediate=True) as session:
        current = session.execute(select(L.state, L.claimed_by, L.claimed_at).where(L.id == entry_id)).first()
        if current is None:
            return None
        prior, holder, held_since = current
        if prior in CLAIMABLE:
            condition = L.state == prior
        elif prior == "claimed" and held_since is not None and held_since < now - STALE_CLAIM:
            condition = and_(L.state == "claimed", L.claimed_by == holder, L.claimed_at < now - STALE_CLAIM)
        else:
            return None
        changed = session.execute(
            update(L).where(L.id == entry_id, condition)
            .values(state="claimed", claimed_by=claimant, claimed_at=now, attempts=L.attempts + 1)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            return None
        entry = session.get(L, entry_id, populate_existing=True)
        if prior in ("pending", "failed"):
            if amount is not None:
                entry.amount = money_str(amount)
            if reason is not None:
                entry.reason = reason
        if entry.first_sent_at is None:
            entry.first_sent_at = now
        return entry


def _assignment_status(ctx: MarketContext, assignment_id: str) -> str | None:
    try:
        return str(ctx.client.get_assignment(AssignmentId=assignment_id)["Assignment"]["AssignmentStatus"])
    except Exception as exc:
        if classify(exc) is None:
            raise
        return None


def _bonus_already_paid(ctx: MarketContext, entry: Any) -> bool:
    """Does the marketplace hold more bonuses of this amount for the assignment than the
    ledger has succeeded rows for? Then this row's payment went through."""
    L = ctx.db.models.LedgerEntry
    amount = Decimal(entry.amount)
    paid = [b for b in paginate(ctx.client, "list_bonus_payments", "BonusPayments",
                                AssignmentId=entry.assignment_id)
            if Decimal(str(b.get("BonusAmount", "0"))) == amount]
    with ctx.db.begin() as session:
        known = session.scalar(select(func.count()).select_from(L).where(
            L.mode == entry.mode, L.kind == "bonus", L.assignment_id == entry.assignment_id,
            L.state == "succeeded", L.amount == entry.amount, L.id != entry.id))
    return len(paid) > int(known or 0)


def _send(ctx: MarketContext, entry: Any) -> tuple[str, CallFailure | None, str]:
    """Step 3: the marketplace call; returns (state, failure, note)."""
    kind = entry.kind
    retry = (entry.attempts or 0) > 1
    if kind == "bonus" and retry and entry.first_sent_at is not None \
            and ctx.clock.now() - entry.first_sent_at > TOKEN_TRUSTED_FOR:
        try:
            if _bonus_already_paid(ctx, entry):
                return "succeeded", None, "found in ListBonusPayments (token too old to rely on)"
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            return "unknown", failure, "could not check ListBonusPayments"
    try:
        if kind == "approve":
            ctx.client.approve_assignment(AssignmentId=entry.assignment_id)
        elif kind == "unreject":
            ctx.client.approve_assignment(AssignmentId=entry.assignment_id, OverrideRejection=True,
                                          **({"RequesterFeedback": entry.reason} if entry.reason else {}))
        elif kind == "reject":
            ctx.client.reject_assignment(AssignmentId=entry.assignment_id,
                                         RequesterFeedback=entry.reason or DEFAULT_REJECT_FEEDBACK)
        elif kind == "bonus":
            ctx.client.send_bonus(WorkerId=entry.worker_id, AssignmentId=entry.assignment_id,
                                  BonusAmount=entry.amount, Reason=entry.reason,
                                  UniqueRequestToken=entry.request_token)
        else:  # pragma: no cover - kinds are fixed
            raise ValueError(kind)
        return "succeeded", None, ""
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
    if failure.unknown:
        return "unknown", failure, ""
    if kind == "bonus":
        if is_duplicate_token(failure):
            return "succeeded", None, "MTurk had already applied this request (duplicate UniqueRequestToken)"
        if retry:
            try:
                if _bonus_already_paid(ctx, entry):
                    return "succeeded", None, "found in ListBonusPayments"
            except Exception as exc:
                if classify(exc) is None:
                    raise
        return "failed", failure, ""
    wanted = _CHECK_STATUS[kind]
    if is_wrong_assignment_state(failure) or kind == "unreject":
        status = _assignment_status(ctx, entry.assignment_id)
        if status == wanted:
            return "succeeded", None, f"the assignment was already {wanted}"
        if status is not None and kind != "unreject":
            return "failed", failure, f"the assignment is {status}"
    return "failed", failure, ""


def _finish(ctx: MarketContext, entry: Any, claimant: str, state: str, failure: CallFailure | None,
            note: str) -> ItemResult:
    """Step 4: record the outcome, the participant's new status and the audit event."""
    L, P = ctx.db.models.LedgerEntry, ctx.db.models.Participant
    now = ctx.clock.now()
    with ctx.db.begin(immediate=True) as session:
        session.execute(
            update(L).where(L.id == entry.id, L.state == "claimed", L.claimed_by == claimant)
            .values(state=state, finished_at=now,
                    error_code=(("unknown:" if failure.unknown else "") + (failure.turk_code or failure.code))[:128]
                    if failure else None,
                    error_message=failure.text if failure else (note or None))
            .execution_options(synchronize_session=False))
        if state == "succeeded" and entry.kind in _STATUS_AFTER and entry.uniqueid:
            participant = session.scalar(select(P).where(P.uniqueid == entry.uniqueid).with_for_update())
            if participant is not None:
                transition(session, ctx.db.models, participant, _STATUS_AFTER[entry.kind], reason=entry.kind,
                           clock=ctx.clock, detail=f"ledger #{entry.id}")
        outcome = {"succeeded": "ok", "failed": "failed", "unknown": "unknown"}[state]
        audit.record(session, ctx, f"{entry.kind}", outcome=outcome, target=entry.assignment_id,
                     ledger_id=entry.id, amount=entry.amount, worker_id=entry.worker_id, hit_id=entry.hit_id,
                     attempt=entry.attempts, error=failure.text if failure else None, note=note or None)
    if state == "succeeded":
        message = {"approve": "approved", "reject": "rejected", "unreject": "approved (rejection overridden)",
                   "bonus": f"bonused ${entry.amount}"}[entry.kind] + (f" ({note})" if note else "")
    elif state == "unknown":
        message = f"no clear answer from the marketplace ({failure.text if failure else note}); retry later"
    else:
        message = (failure.text if failure else "refused") + (f" ({note})" if note else "")
    return ItemResult(entry.kind, entry.assignment_id, "ok" if state == "succeeded" else state, message,
                      amount=entry.amount, worker_id=entry.worker_id, uniqueid=entry.uniqueid, ledger_id=entry.id)


def _execute(ctx: MarketContext, key: str, kind: str, target: Target, *, amount: Decimal | None = None,
             reason: str | None = None) -> ItemResult:
    """Intent, claim, call, outcome for one assignment."""
    entry = _intent(ctx, key, kind, target, amount=amount, reason=reason)
    common = {"worker_id": target.worker_id, "uniqueid": target.uniqueid, "ledger_id": entry.id}
    if entry.state == "succeeded":
        return ItemResult(kind, target.assignment_id, "already", f"already {_done_word(kind)} (ledger #{entry.id})",
                          amount=entry.amount, **common)
    claimant = _claimant()
    claimed = _claim(ctx, entry.id, claimant, amount=amount, reason=reason)
    if claimed is None:
        L = ctx.db.models.LedgerEntry
        with ctx.db.begin() as session:
            state = session.scalar(select(L.state).where(L.id == entry.id))
        if state == "succeeded":
            return ItemResult(kind, target.assignment_id, "already",
                              f"already {_done_word(kind)} (ledger #{entry.id})", amount=entry.amount, **common)
        return ItemResult(kind, target.assignment_id, "busy",
                          f"another process is {kind.rstrip('e')}ing this assignment right now (ledger #{entry.id})",
                          amount=entry.amount, **common)
    state, failure, note = _send(ctx, claimed)
    return _finish(ctx, claimed, claimant, state, failure, note)


def _done_word(kind: str) -> str:
    return {"approve": "approved", "reject": "rejected", "unreject": "unrejected", "bonus": "bonused"}[kind]


# --- finding targets ----------------------------------------------------------------------


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


def _targets_from_ids(ctx: MarketContext, assignment_ids: Sequence[str]) -> list[Target]:
    ids = [a.strip() for a in assignment_ids if a and a.strip()]
    if not ids:
        raise InvalidInput("name at least one assignment id")
    local = _local_rows(ctx, ids)
    return [Target(a, local[a].workerid if a in local else None, local[a].hitid if a in local else None,
                   local.get(a)) for a in dict.fromkeys(ids)]


def _targets_from_marketplace(ctx: MarketContext, hit_ids: Iterable[str], status: str) -> list[Target]:
    found: list[dict[str, Any]] = []
    for hit_id in hit_ids:
        try:
            found.extend(paginate(ctx.client, "list_assignments_for_hit", "Assignments", HITId=hit_id,
                                  AssignmentStatuses=[status]))
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            raise TurnoutError(f"cannot list the assignments of HIT {hit_id}: {failure.text}") from None
    local = _local_rows(ctx, [a["AssignmentId"] for a in found])
    targets = []
    for a in found:
        p = local.get(a["AssignmentId"])
        if p is not None and p.workerid != a["WorkerId"]:
            p = None
        targets.append(Target(a["AssignmentId"], a["WorkerId"], a["HITId"], p))
    return targets


def scope_hit_ids(ctx: MarketContext, codeversion: str | None = None) -> list[str]:
    """The HITs of one study, one mode and one codeversion: the only scope "all" ever means.

    HITs turnout created carry their codeversion; HITs from psiTurk (only in its HIT table)
    count when this mode's participants of that codeversion worked on them.
    """
    version = codeversion if codeversion is not None else ctx.codeversion
    R, H, P = ctx.db.models.HitRecord, ctx.db.models.Hit, ctx.db.models.Participant
    with ctx.db.begin() as session:
        ids = list(session.scalars(select(R.hit_id).where(
            R.study == ctx.study, R.mode == ctx.mode, R.codeversion == version, R.hit_id.is_not(None),
            R.deleted_at.is_(None)).order_by(R.id)))
        recorded = set(session.scalars(select(R.hit_id).where(R.mode == ctx.mode, R.hit_id.is_not(None))))
        legacy = session.scalars(select(P.hitid).where(
            P.mode == ctx.mode, P.codeversion == version, P.hitid.in_(select(H.hitid))).distinct())
        ids.extend(sorted(h for h in legacy if h not in recorded))
    return list(dict.fromkeys(ids))


def _in_scope(target: Target, version: str) -> bool:
    p = target.participant
    return p is None or p.codeversion in (None, version)


# --- approve / reject / unreject -----------------------------------------------------------


def _run(ctx: MarketContext, action: str, kind: str, targets: Sequence[Target], *, reason: str | None = None,
         version: str | None = None) -> BatchResult:
    result = BatchResult(action, ctx.mode)
    rewards = _rewards(ctx, [t.hit_id for t in targets if t.hit_id]) if kind in ("approve", "unreject") else {}
    for target in targets:
        if version is not None and not _in_scope(target, version):
            result.items.append(ItemResult(kind, target.assignment_id, "skipped",
                                           f"participant is of codeversion {target.participant.codeversion}, "
                                           f"not {version}", worker_id=target.worker_id,
                                           uniqueid=target.uniqueid))
            continue
        result.items.append(_execute(ctx, f"{kind}:{ctx.mode}:{target.assignment_id}", kind, target,
                                     amount=rewards.get(target.hit_id or ""), reason=reason))
    _after(ctx, result, targets)
    return result


def _rewards(ctx: MarketContext, hit_ids: Sequence[str]) -> dict[str, Decimal]:
    """The reward of each HIT turnout created: what approving one assignment of it pays."""
    R = ctx.db.models.HitRecord
    ids = list(dict.fromkeys(hit_ids))
    found: dict[str, Decimal] = {}
    with ctx.db.begin() as session:
        for start in range(0, len(ids), 500):
            for hit_id, reward in session.execute(select(R.hit_id, R.reward).where(
                    R.mode == ctx.mode, R.hit_id.in_(ids[start:start + 500]))):
                found[hit_id] = Decimal(reward)
    return found


def _after(ctx: MarketContext, result: BatchResult, targets: Sequence[Target]) -> None:
    from turnout.services import qualifications

    workers = {t.assignment_id: t.worker_id for t in targets}
    done = [workers.get(i.assignment_id) or i.worker_id for i in result.items
            if i.outcome in ("ok", "already") and i.kind in ("approve", "reject")]
    qualifications.after_participation(ctx, [w for w in done if w])
    audit.write(ctx, result.action, outcome=_summary_outcome(result), target=None, counts=result.counts(),
                paid=money_str(result.paid))


def _summary_outcome(result: BatchResult) -> str:
    counts = result.counts()
    if not counts or set(counts) <= {"already", "skipped"}:
        return "noop"
    if result.ok:
        return "ok"
    return "partial" if counts.get("ok") else "failed"


def approve(ctx: MarketContext, assignment_ids: Sequence[str], *, confirm_live: bool = False) -> BatchResult:
    """Approve these assignments (paying their reward)."""
    require_live_confirmation(ctx, confirm_live, "approving work")
    return _run(ctx, "approve.assignments", "approve", _targets_from_ids(ctx, assignment_ids))


def approve_hit(ctx: MarketContext, hit_id: str, *, confirm_live: bool = False) -> BatchResult:
    """Approve the Submitted assignments of one HIT."""
    require_live_confirmation(ctx, confirm_live, "approving work")
    return _run(ctx, "approve.hit", "approve", _targets_from_marketplace(ctx, [hit_id], "Submitted"))


def approve_all(ctx: MarketContext, *, codeversion: str | None = None, confirm_live: bool = False) -> BatchResult:
    """Approve every Submitted assignment of this study's HITs in this mode and codeversion.

    psiTurk's "approve all" approved every submitted row of any mode and codeversion; the
    scope here is one mode (the context's) and one codeversion (the project's unless given).
    """
    require_live_confirmation(ctx, confirm_live, "approving work")
    version = codeversion if codeversion is not None else ctx.codeversion
    targets = _targets_from_marketplace(ctx, scope_hit_ids(ctx, version), "Submitted")
    return _run(ctx, "approve.all", "approve", targets, version=version)


def reject(ctx: MarketContext, assignment_ids: Sequence[str], *, feedback: str | None = None,
           confirm_live: bool = False) -> BatchResult:
    """Reject these assignments, telling the worker why (RequesterFeedback, recorded here)."""
    require_live_confirmation(ctx, confirm_live, "rejecting work")
    return _run(ctx, "reject.assignments", "reject", _targets_from_ids(ctx, assignment_ids),
                reason=_feedback(feedback))


def reject_hit(ctx: MarketContext, hit_id: str, *, feedback: str | None = None,
               confirm_live: bool = False) -> BatchResult:
    """Reject the Submitted assignments of one HIT (psiTurk rejected every submitted row)."""
    require_live_confirmation(ctx, confirm_live, "rejecting work")
    return _run(ctx, "reject.hit", "reject", _targets_from_marketplace(ctx, [hit_id], "Submitted"),
                reason=_feedback(feedback))


def _feedback(feedback: str | None) -> str:
    text = (feedback or "").strip() or DEFAULT_REJECT_FEEDBACK
    if len(text) > 1024:
        raise InvalidInput("feedback to the worker must be at most 1024 characters")
    return text


def unreject(ctx: MarketContext, assignment_ids: Sequence[str], *, confirm_live: bool = False) -> BatchResult:
    """Approve rejected assignments (OverrideRejection), reporting failures as failures.

    psiTurk reported "unrejected" and set the local status even when MTurk refused.
    """
    require_live_confirmation(ctx, confirm_live, "overriding rejections")
    return _run(ctx, "unreject.assignments", "unreject", _targets_from_ids(ctx, assignment_ids))


def unreject_hit(ctx: MarketContext, hit_id: str, *, confirm_live: bool = False) -> BatchResult:
    require_live_confirmation(ctx, confirm_live, "overriding rejections")
    return _run(ctx, "unreject.hit", "unreject", _targets_from_marketplace(ctx, [hit_id], "Rejected"))


# --- bonus ---------------------------------------------------------------------------------

AUTO = "auto"


def auto_amount(value: Any) -> Decimal | None:
    """The participant's ``bonus`` column as dollars, or None when it is 0 or unset.

    The column is a float (psiTurk's schema) written by custom code, so 0.1 + 0.2 can
    arrive as 0.30000000000000004: float noise below a millionth of a cent is rounded
    away, anything else that is not whole cents is refused rather than guessed.
    """
    if value is None:
        return None
    amount = Decimal(repr(float(value))) if isinstance(value, float) else Decimal(str(value))
    rounded = amount.quantize(CENT)
    if abs(amount - rounded) > Decimal("0.00000001"):
        raise InvalidInput(f"bonus column holds {value!r}, which is not a whole number of cents")
    return rounded if rounded > 0 else None


def _bonus_key(ctx: MarketContext, target: Target, override: bool) -> tuple[str | None, str]:
    """The idempotency key for the next bonus of ``target``, or (None, why not)."""
    L = ctx.db.models.LedgerEntry
    with ctx.db.begin() as session:
        entries = list(session.scalars(select(L).where(
            L.mode == ctx.mode, L.kind == "bonus", L.assignment_id == target.assignment_id).order_by(L.id)))
    base = f"bonus:{ctx.mode}:{target.assignment_id}"
    if not entries:
        bonused_before = target.participant is not None and target.participant.status == Status.BONUSED
        if bonused_before and not override:
            return None, "already bonused before turnout kept a ledger (status 7); pass override to pay again"
        return base, ""
    last = entries[-1]
    if last.state != "succeeded":
        return last.idempotency_key, ""  # finish (or retry) that one; never start a second
    if not override:
        paid = ", ".join(f"${e.amount}" for e in entries if e.state == "succeeded")
        return None, f"already bonused {paid} (ledger #{last.id}); pass override to pay another bonus"
    return f"{base}:{len(entries) + 1}", ""


def _bonus_targets(ctx: MarketContext, targets: Sequence[Target], amount: Any, reason: str, *,
                   override: bool, action: str, version: str | None = None) -> BatchResult:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("a bonus needs a reason; MTurk shows it to the worker")
    fixed = None if amount == AUTO else parse_money(amount, what="bonus amount")
    result = BatchResult(action, ctx.mode)
    for target in targets:
        common = {"worker_id": target.worker_id, "uniqueid": target.uniqueid}
        if version is not None and not _in_scope(target, version):
            result.items.append(ItemResult("bonus", target.assignment_id, "skipped",
                                           f"participant is of codeversion {target.participant.codeversion}, "
                                           f"not {version}", **common))
            continue
        value = fixed
        if value is None:
            if target.participant is None:
                result.items.append(ItemResult("bonus", target.assignment_id, "skipped",
                                               "no participant row in this study's database, so no auto "
                                               "bonus amount; pay it with an explicit amount", **common))
                continue
            try:
                value = auto_amount(target.participant.bonus)
            except InvalidInput as exc:
                result.items.append(ItemResult("bonus", target.assignment_id, "skipped", exc.message, **common))
                continue
            if value is None:
                result.items.append(ItemResult("bonus", target.assignment_id, "skipped",
                                               f"auto bonus is {target.participant.bonus or 0} for "
                                               f"{target.uniqueid}: nothing to pay", **common))
                continue
        worker_id = target.worker_id
        if worker_id is None:
            worker_id = _worker_of(ctx, target.assignment_id)
            if worker_id is None:
                result.items.append(ItemResult("bonus", target.assignment_id, "failed",
                                               "the marketplace does not know this assignment", **common))
                continue
            target = Target(target.assignment_id, worker_id, target.hit_id, target.participant)
        key, why = _bonus_key(ctx, target, override)
        if key is None:
            result.items.append(ItemResult("bonus", target.assignment_id, "skipped", why, **common))
            continue
        result.items.append(_execute(ctx, key, "bonus", target, amount=value, reason=text))
    audit.write(ctx, action, outcome=_summary_outcome(result), counts=result.counts(), paid=money_str(result.paid),
                amount=amount if amount == AUTO else money_str(fixed) if fixed is not None else None)
    return result


def _worker_of(ctx: MarketContext, assignment_id: str) -> str | None:
    try:
        return str(ctx.client.get_assignment(AssignmentId=assignment_id)["Assignment"]["WorkerId"])
    except Exception as exc:
        if classify(exc) is None:
            raise
        return None


def bonus(ctx: MarketContext, assignment_ids: Sequence[str], *, amount: Any, reason: str,
          override: bool = False, confirm_live: bool = False) -> BatchResult:
    """Bonus these assignments: ``amount`` in dollars ("1.25") or ``"auto"`` (the
    participant's ``bonus`` column). An assignment already bonused is refused unless
    ``override``, which then pays a further, separately keyed bonus."""
    require_live_confirmation(ctx, confirm_live, "paying bonuses")
    return _bonus_targets(ctx, _targets_from_ids(ctx, assignment_ids), amount, reason, override=override,
                          action="bonus.assignments")


def bonus_hit(ctx: MarketContext, hit_id: str, *, amount: Any, reason: str, override: bool = False,
              confirm_live: bool = False) -> BatchResult:
    """Bonus the approved assignments of one HIT."""
    require_live_confirmation(ctx, confirm_live, "paying bonuses")
    return _bonus_targets(ctx, _targets_from_marketplace(ctx, [hit_id], "Approved"), amount, reason,
                          override=override, action="bonus.hit")


def bonus_all(ctx: MarketContext, *, amount: Any, reason: str, codeversion: str | None = None,
              override: bool = False, confirm_live: bool = False) -> BatchResult:
    """Bonus every approved assignment of this study's HITs in this mode and codeversion."""
    require_live_confirmation(ctx, confirm_live, "paying bonuses")
    version = codeversion if codeversion is not None else ctx.codeversion
    targets = _targets_from_marketplace(ctx, scope_hit_ids(ctx, version), "Approved")
    return _bonus_targets(ctx, targets, amount, reason, override=override, action="bonus.all", version=version)


# --- settling what was left unknown (a claimable step for the scheduler) ------------------------


def settle_one(ctx: MarketContext) -> ItemResult | None:
    """Retry one ledger row of this mode left unknown (or claimed by a process that died).

    Returns what happened, or None when nothing is waiting: call it in a loop, as
    healthchecks' sendalerts does, from as many processes as you like.
    """
    L = ctx.db.models.LedgerEntry
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        candidates = list(session.scalars(select(L).where(
            L.study == ctx.study, L.mode == ctx.mode,
            or_(L.state == "unknown", and_(L.state == "claimed", L.claimed_at < now - STALE_CLAIM)))
            .order_by(L.id).limit(20)))
    # No live confirmation here: settling only finishes a request a person already confirmed.
    for entry in candidates:
        claimant = _claimant()
        claimed = _claim(ctx, entry.id, claimant, amount=None, reason=None)
        if claimed is None:
            continue  # another process took it
        state, failure, note = _send(ctx, claimed)
        return _finish(ctx, claimed, claimant, state, failure, note)
    return None


def settle_all(ctx: MarketContext, *, limit: int = 1000) -> BatchResult:
    result = BatchResult("ledger.settle", ctx.mode)
    for _ in range(limit):
        item = settle_one(ctx)
        if item is None:
            break
        result.items.append(item)
    if result.items:
        audit.write(ctx, "ledger.settle", outcome=_summary_outcome(result), counts=result.counts())
    return result


def ledger_entries(ctx: MarketContext, *, assignment_id: str | None = None, kind: str | None = None,
                   limit: int = 1000) -> list[dict[str, Any]]:
    """Ledger rows of this study and mode, newest first."""
    L = ctx.db.models.LedgerEntry
    query = select(L).where(L.study == ctx.study, L.mode == ctx.mode).order_by(L.id.desc()).limit(limit)
    if assignment_id is not None:
        query = query.where(L.assignment_id == assignment_id)
    if kind is not None:
        query = query.where(L.kind == kind)
    with ctx.db.begin() as session:
        rows = list(session.scalars(query))
    return [{"id": e.id, "kind": e.kind, "key": e.idempotency_key, "assignment_id": e.assignment_id,
             "worker_id": e.worker_id, "hit_id": e.hit_id, "uniqueid": e.uniqueid, "amount": e.amount,
             "state": e.state, "attempts": e.attempts, "error": e.error_message,
             "created_at": e.created_at.isoformat(),
             "finished_at": e.finished_at.isoformat() if e.finished_at else None} for e in rows]
