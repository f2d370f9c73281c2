"""The payments ledger: approve, reject, unreject and bonus, each paid at most once.

Every action is four small steps (healthchecks' claimable work, sendalerts.py):

1. **intent**: a ledger row with a unique idempotency key (``bonus:<mode>:<assignment>``)
   is inserted, or the existing one found. Two requests for the same payment meet here.
   Its amount and reason never change: a bonus's UniqueRequestToken is derived from the
   row, so the row must say what the token pays. A new amount is a new intent, made only
   once the old one is settled as not paid.
2. **claim**: a conditional UPDATE moves the row to ``claimed`` only from pending,
   failed, unknown (or a claim gone stale, or held by a dead process on this host); it
   must change exactly one row, so of two processes at once only one calls the marketplace.
3. **call**: the marketplace call, with the row's deterministic UniqueRequestToken where
   MTurk takes one (SendBonus). Every attempt the adapter makes is watched: if any of them
   went unanswered or got a 5xx, the call is ``unknown`` whatever the later retries said.
4. **outcome**: succeeded / failed (definitely refused) / unknown (may have been applied) /
   noop (nothing moved under this row), in one transaction with the participant's status
   change and the audit event.

An unknown outcome is safe to retry: before a bonus is re-sent, ListBonusPayments is
checked for any bonus to that worker and assignment the ledger does not account for (at
any age: neither clock is trusted to say whether MTurk still remembers the token), and
it is re-sent with the same token. An approve or reject that MTurk refuses because the
assignment is no longer Submitted is checked with GetAssignment. docs/payments.md says
all this for users.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError

from turnout.experiment.status import Status, transition
from turnout.marketplace.port import FailureKind, MarketError
from turnout.services import audit
from turnout.services.payments.results import BatchResult, ItemResult, Target
from turnout.services.recruitment import (
    CENT,
    CallFailure,
    MarketContext,
    is_database_trouble,
    money_str,
    request_token,
)

KINDS = ("approve", "reject", "unreject", "bonus")


CLAIMABLE = ("pending", "failed", "unknown")


# States a row can end in. ``noop``: settled, and nothing moved under this row (the
# marketplace was already in the wanted state through another row of this ledger).
FINAL_STATES = ("succeeded", "failed", "noop")


UNSETTLED = ("pending", "claimed", "unknown")


# A claim older than this belongs to a process that died between the call and the outcome.
# A claimant on this host whose process is gone is detected at once (see _claimant_dead).
STALE_CLAIM = timedelta(minutes=10)


# An intent still pending after this long was written by a process that stopped before it
# claimed the row (it claims at once, so a few seconds would do; a minute is generous).
PENDING_GRACE = timedelta(minutes=1)


# MTurk forgets a UniqueRequestToken after 24 h. The token is never trusted alone: every
# re-send of a bonus that may have landed first checks ListBonusPayments, whatever the age
# of the first attempt on either clock (a safety margin of zero, so no clock can be wrong).
TOKEN_TRUSTED_FOR = timedelta(0)


# How far the marketplace's clock may lag ours when "since the intent was made" is judged
# on the marketplace's GrantTime: a bonus granted up to this long before the intent still
# counts as possibly ours (a generous, conservative allowance).
CLOCK_SKEW_ALLOWANCE = timedelta(hours=24)


DEFAULT_REJECT_FEEDBACK = "Your submission did not meet the requirements stated in the HIT."


_STATUS_AFTER = {"approve": Status.CREDITED, "unreject": Status.CREDITED, "bonus": Status.BONUSED}


_CHECK_STATUS = {"approve": "Approved", "unreject": "Approved", "reject": "Rejected"}


_APPROVALS = ("approve", "unreject")


def _claimant() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{threading.get_ident() % 10**6}:{uuid.uuid4().hex[:8]}"


def _claimant_dead(holder: str | None) -> bool:
    """True when ``holder`` was a process on this host that no longer exists.

    A claim by another host, or by this very process (another thread may be working on
    it), is left to the STALE_CLAIM timeout.
    """
    if not holder:
        return False
    parts = holder.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname()[:24] or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # it exists (another user's process) or we cannot tell
    return False


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


def _claim(ctx: MarketContext, entry_id: int, claimant: str) -> tuple[Any, str] | None:
    """Step 2: take the row for this process; returns (row, the state it was in), or None
    if someone else has it.

    The UPDATE is conditional on the state just read (and, for a claim left by a dead or
    stale process, on who held it), so it changes exactly one row for exactly one process.
    A row's amount and reason are never changed here: they belong to its token.
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
        elif prior == "claimed" and _claimant_dead(holder):
            condition = and_(L.state == "claimed", L.claimed_by == holder)
        else:
            return None
        changed = session.execute(
            update(L).where(L.id == entry_id, condition)
            .values(state="claimed", claimed_by=claimant, claimed_at=now, attempts=L.attempts + 1)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            return None
        entry = session.get(L, entry_id, populate_existing=True)
        if entry.first_sent_at is None:
            entry.first_sent_at = now
        return entry, prior


def _assignment_status(ctx: MarketContext, assignment_id: str) -> str | None:
    try:
        return ctx.port.get_assignment(assignment_id).status
    except MarketError:
        return None


def _unaccounted_bonuses(ctx: MarketContext, entry: Any) -> list[Decimal]:
    """Bonuses the marketplace paid to this row's worker and assignment since (about) when
    the row was made, that no other succeeded row of this ledger accounts for.

    Any amount counts, not only the row's: whatever is found means "do not send again".
    """
    L = ctx.db.models.LedgerEntry
    since = entry.created_at - CLOCK_SKEW_ALLOWANCE
    found = []
    for b in ctx.port.bonuses(assignment_id=entry.assignment_id):
        if b.worker_id not in (None, entry.worker_id):
            continue
        if isinstance(b.granted, datetime) and b.granted.tzinfo is not None and b.granted < since:
            continue
        found.append(b.amount)
    with ctx.db.begin() as session:
        known = [Decimal(a) for a in session.scalars(select(L.amount).where(
            L.mode == entry.mode, L.kind == "bonus", L.assignment_id == entry.assignment_id,
            L.state == "succeeded", L.id != entry.id)) if a]
    for amount in known:  # each of our other payments explains one marketplace bonus
        if amount in found:
            found.remove(amount)
    return found


def _bonus_check(ctx: MarketContext, entry: Any) -> tuple[str, CallFailure | None, str] | None:
    """Before re-sending a bonus that may have landed: did it? None means "send it"."""
    try:
        found = _unaccounted_bonuses(ctx, entry)
    except MarketError as exc:
        return "unknown", exc.failure, "could not check ListBonusPayments, so nothing was re-sent"
    if not found:
        return None
    if Decimal(entry.amount) in found:
        return "succeeded", None, "found in ListBonusPayments"
    paid = ", ".join(f"${money_str(a)}" for a in found)
    return "unknown", None, (f"the marketplace shows a bonus of {paid} to this worker that this ledger does not "
                             "account for; nothing was re-sent. Check it (turnout worker list) before paying again")


def _send(ctx: MarketContext, entry: Any, prior: str) -> tuple[str, CallFailure | None, str]:
    """Step 3: the marketplace call; returns (state, failure, note).

    ``prior`` is the state the row was claimed from: ``unknown`` or ``claimed`` (by a
    process that died) mean an earlier attempt may have been applied.
    """
    kind = entry.kind
    maybe_landed = prior in ("unknown", "claimed")
    if kind == "bonus" and maybe_landed:
        checked = _bonus_check(ctx, entry)
        if checked is not None:
            return checked
    market = ctx.port
    try:
        if kind == "approve":
            market.approve(entry.assignment_id)
        elif kind == "unreject":
            market.unreject(entry.assignment_id, feedback=entry.reason or None)
        elif kind == "reject":
            market.reject(entry.assignment_id, feedback=entry.reason or DEFAULT_REJECT_FEEDBACK)
        elif kind == "bonus":
            market.send_bonus(entry.worker_id, entry.assignment_id, entry.amount, entry.reason,
                              token=entry.request_token)
        else:  # pragma: no cover - kinds are fixed
            raise ValueError(kind)
        return "succeeded", None, ""
    except MarketError as exc:
        failure = exc.failure
    # An attempt without a clear answer may have been applied, whatever came after it.
    ambiguous = failure.ambiguous
    if kind == "bonus":
        if failure.kind == FailureKind.ALREADY_DONE:
            return "succeeded", None, "MTurk had already applied this request (duplicate UniqueRequestToken)"
        if failure.unknown or ambiguous:
            checked = _bonus_check(ctx, entry) if not failure.unknown else None
            if checked is not None and checked[0] == "succeeded":
                return checked
            note = f"an earlier attempt got {ambiguous}" if ambiguous else ""
            return "unknown", failure, note
        return "failed", failure, ""
    wanted = _CHECK_STATUS[kind]
    if not failure.unknown and (failure.kind == FailureKind.WRONG_STATE or kind == "unreject"):
        status = _assignment_status(ctx, entry.assignment_id)
        if status == wanted:
            if maybe_landed or ambiguous or kind == "reject":
                return "succeeded", None, f"the assignment was already {wanted}"
            other = _other_approval(ctx, entry) if kind in _APPROVALS else None
            if other is not None:
                return "noop", None, f"the assignment was already {wanted} under ledger #{other}; nothing paid again"
            return "succeeded", None, (f"the assignment was already {wanted} (MTurk's auto-approval or another "
                                       "tool); recorded here once")
        if status is not None and not ambiguous and not maybe_landed and kind != "unreject":
            return "failed", failure, f"the assignment is {status}"
    if failure.unknown or ambiguous:
        return "unknown", failure, f"an earlier attempt got {ambiguous}" if ambiguous else ""
    return "failed", failure, ""


def _other_approval(ctx: MarketContext, entry: Any) -> int | None:
    """Another approve/unreject row of this assignment that paid (or may have paid) its reward."""
    L = ctx.db.models.LedgerEntry
    with ctx.db.begin() as session:
        return session.scalar(select(L.id).where(
            L.mode == entry.mode, L.assignment_id == entry.assignment_id, L.kind.in_(_APPROVALS),
            L.id != entry.id, L.state.in_(("succeeded", "claimed", "unknown"))).order_by(L.id).limit(1))


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
                    error_message=((failure.text + (f" ({note})" if note else "")) if failure else (note or None)))
            .execution_options(synchronize_session=False))
        if state == "succeeded" and entry.kind in _STATUS_AFTER and entry.uniqueid:
            participant = session.scalar(select(P).where(P.uniqueid == entry.uniqueid).with_for_update())
            if participant is not None:
                transition(session, ctx.db.models, participant, _STATUS_AFTER[entry.kind], reason=entry.kind,
                           clock=ctx.clock, detail=f"ledger #{entry.id}")
        outcome = {"succeeded": "ok", "failed": "failed", "unknown": "unknown", "noop": "noop"}[state]
        audit.record(session, ctx, f"{entry.kind}", outcome=outcome, target=entry.assignment_id,
                     ledger_id=entry.id, amount=entry.amount, worker_id=entry.worker_id, hit_id=entry.hit_id,
                     attempt=entry.attempts, error=failure.text if failure else None, note=note or None)
    if state == "succeeded":
        message = {"approve": "approved", "reject": "rejected", "unreject": "approved (rejection overridden)",
                   "bonus": f"bonused ${entry.amount}"}[entry.kind] + (f" ({note})" if note else "")
    elif state == "noop":
        message = note
    elif state == "unknown":
        what = failure.text if failure else ""
        message = ("no clear answer from the marketplace" + (f" ({what})" if what else "")
                   + (f"; {note}" if note else "") + "; it may have gone through. Run `turnout ledger settle` "
                   "(or this command again) to finish it; it will not be paid twice")
    else:
        message = (failure.text if failure else "refused") + (f" ({note})" if note else "")
    item_outcome = {"succeeded": "ok", "noop": "already"}.get(state, state)
    return ItemResult(entry.kind, entry.assignment_id, item_outcome, message,
                      amount=entry.amount, worker_id=entry.worker_id, uniqueid=entry.uniqueid, ledger_id=entry.id)


def _execute(ctx: MarketContext, key: str, kind: str, target: Target, *, amount: Decimal | None = None,
             reason: str | None = None) -> ItemResult:
    """Intent, claim, call, outcome for one assignment; a database that is locked or gone
    ends this item (reported) and never the batch."""
    stage = "before anything was sent"
    try:
        entry = _intent(ctx, key, kind, target, amount=amount, reason=reason)
        common = {"worker_id": target.worker_id, "uniqueid": target.uniqueid, "ledger_id": entry.id}
        if entry.state == "succeeded":
            return ItemResult(kind, target.assignment_id, "already",
                              f"already {_done_word(kind)} (ledger #{entry.id})", amount=entry.amount, **common)
        claimant = _claimant()
        taken = _claim(ctx, entry.id, claimant)
        if taken is None:
            L = ctx.db.models.LedgerEntry
            with ctx.db.begin() as session:
                state = session.scalar(select(L.state).where(L.id == entry.id))
            if state in ("succeeded", "noop"):
                return ItemResult(kind, target.assignment_id, "already",
                                  f"already {_done_word(kind)} (ledger #{entry.id})", amount=entry.amount, **common)
            return ItemResult(kind, target.assignment_id, "busy",
                              f"another process is {kind.rstrip('e')}ing this assignment right now "
                              f"(ledger #{entry.id})", amount=entry.amount, **common)
        claimed, prior = taken
        stage = "after the marketplace call was prepared"
        state, failure, note = _send(ctx, claimed, prior)
        stage = f"after the marketplace answered ({state})"
        return _finish(ctx, claimed, claimant, state, failure, note)
    except Exception as exc:
        if not is_database_trouble(exc):
            raise
        text = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
        sent = stage != "before anything was sent"
        return ItemResult(kind, target.assignment_id, "unknown" if sent else "failed",
                          f"the database failed {stage}: {text}. "
                          + ("The payment may have gone through; `turnout ledger settle` finishes it once this "
                             "process has exited" if sent else "Nothing was sent; run it again"),
                          amount=money_str(amount) if amount is not None else None, worker_id=target.worker_id,
                          uniqueid=target.uniqueid)


def _done_word(kind: str) -> str:
    return {"approve": "approved", "reject": "rejected", "unreject": "unrejected", "bonus": "bonused"}[kind]


def _fee(amount: str | None, rate: Decimal) -> str | None:
    """MTurk's commission on one payment of ``amount`` at ``rate`` (at least a cent)."""
    if not amount:
        return None
    value = Decimal(amount)
    if value <= 0:
        return money_str(Decimal("0"))
    return money_str(max(CENT, (value * rate).quantize(CENT, rounding=ROUND_HALF_UP)))


def _reward_fee_rates(ctx: MarketContext, hit_ids: Sequence[str]) -> dict[str, Decimal]:
    """The marketplace's fee rate on each recorded HIT's reward (its size and Masters requirement)."""
    R = ctx.db.models.HitRecord
    found: dict[str, Decimal] = {}
    with ctx.db.begin() as session:
        for hit_id, size, quals in session.execute(select(R.hit_id, R.max_assignments, R.qualifications).where(
                R.mode == ctx.mode, R.hit_id.in_(list(hit_ids)))):
            found[hit_id] = ctx.port.fee_rate(assignments=size or 0, qualifications=quals)
    return found


def _audit_quietly(ctx: MarketContext, action: str, **detail: Any) -> None:
    """A batch's summary event; a locked database must not turn a finished batch into a
    traceback (each item's own event was written with its outcome)."""
    try:
        audit.write(ctx, action, **detail)
    except Exception as exc:
        if not is_database_trouble(exc):
            raise


def _summary_outcome(result: BatchResult) -> str:
    counts = result.counts()
    if not counts or set(counts) <= {"already", "skipped"}:
        return "noop"
    if result.ok:
        return "ok"
    return "partial" if counts.get("ok") else "failed"


def _waiting(entry: Any, now: datetime) -> bool:
    """Whether settling should take ``entry`` now: left unknown; claimed by a process that
    died or has held it too long; or pending (intent written, never sent) for longer than
    PENDING_GRACE, so its own process has given up on it (one that has not yet sends it
    itself; of the two, the claim lets exactly one call the marketplace)."""
    if entry.state == "unknown":
        return True
    if entry.state == "pending":
        return entry.created_at is not None and entry.created_at < now - PENDING_GRACE
    return (entry.claimed_at is not None and entry.claimed_at < now - STALE_CLAIM) or _claimant_dead(entry.claimed_by)


def settle_one(ctx: MarketContext, *, kinds: Sequence[str] = KINDS, skip: Iterable[int] = ()) -> ItemResult | None:
    """Retry one ledger row of this mode left unknown, claimed by a process that died or
    has held it too long, or pending (written, never sent) past PENDING_GRACE.

    Returns what happened, or None when nothing is waiting: call it in a loop, as
    healthchecks' sendalerts does, from as many processes as you like.
    """
    L = ctx.db.models.LedgerEntry
    now = ctx.clock.now()
    skipped = set(skip)
    with ctx.db.begin() as session:
        candidates = [e for e in session.scalars(select(L).where(
            L.study == ctx.study, L.mode == ctx.mode, L.kind.in_(list(kinds)),
            L.state.in_(UNSETTLED)).order_by(L.id))
            if e.id not in skipped and _waiting(e, now)]
    # No live confirmation here: settling only finishes a request a person already confirmed.
    for entry in candidates[:20]:
        claimant = _claimant()
        taken = _claim(ctx, entry.id, claimant)
        if taken is None:
            continue  # another process took it
        claimed, prior = taken
        state, failure, note = _send(ctx, claimed, prior)
        item = _finish(ctx, claimed, claimant, state, failure, note)
        if item.outcome == "ok":
            if claimed.kind == "bonus":
                item.fee = _fee(item.amount, ctx.port.bonus_fee_rate())
            elif claimed.kind in _APPROVALS and claimed.hit_id:
                rate = _reward_fee_rates(ctx, [claimed.hit_id]).get(claimed.hit_id)
                item.fee = _fee(item.amount, rate) if rate is not None else None
        return item
    return None


def settle_all(ctx: MarketContext, *, limit: int = 1000, kinds: Sequence[str] = KINDS,
               skip: Iterable[int] = ()) -> BatchResult:
    """Settle every row waiting, each at most once per run (one left unknown again is
    reported, and waits for the next run)."""
    result = BatchResult("ledger.settle", ctx.mode)
    for _ in range(limit):
        try:
            item = settle_one(ctx, kinds=kinds, skip=[*skip, *(i.ledger_id for i in result.items if i.ledger_id)])
        except Exception as exc:
            if not is_database_trouble(exc):
                raise
            result.items.append(ItemResult("settle", "-", "failed", f"the database failed: {exc}"[:300]))
            break
        if item is None:
            break
        result.items.append(item)
    if result.items:
        _audit_quietly(ctx, "ledger.settle", outcome=_summary_outcome(result), counts=result.counts())
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
