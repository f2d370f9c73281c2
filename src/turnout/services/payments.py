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
   MTurk takes one (SendBonus). Every attempt botocore makes is watched: if any of them
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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError

from turnout.errors import Forbidden, InvalidInput, TurnoutError
from turnout.experiment.status import Status, transition
from turnout.services import audit, participant_table
from turnout.services.participant_table import TableQuery
from turnout.services.recruitment import (
    CENT,
    CallFailure,
    MarketContext,
    classify,
    is_database_trouble,
    is_duplicate_token,
    is_wrong_assignment_state,
    money_str,
    paginate,
    parse_money,
    request_token,
    require_live_confirmation,
    watch_attempts,
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


# --- results --------------------------------------------------------------------------


@dataclass
class ItemResult:
    """What happened to one assignment. ``outcome``:

    ``ok`` (done by this call), ``already`` (done before; nothing sent), ``skipped``
    (not attempted, see message), ``busy`` (another process holds it right now),
    ``failed`` (the marketplace refused), ``unknown`` (no clear answer; retry later),
    ``refused`` (not attempted: it needs the person's explicit say-so, e.g. another
    project's assignment, or a bonus for work not yet approved).
    """

    kind: str
    assignment_id: str
    outcome: str
    message: str
    amount: str | None = None
    worker_id: str | None = None
    uniqueid: str | None = None
    ledger_id: int | None = None
    fee: str | None = None  # MTurk's commission on ``amount`` (estimated by its published rates)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "assignment_id": self.assignment_id, "outcome": self.outcome,
                "message": self.message, "amount": self.amount, "fee": self.fee, "worker_id": self.worker_id,
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
        return not any(i.outcome in ("failed", "unknown", "busy", "refused") for i in self.items)

    @property
    def paid(self) -> Decimal:
        """What this run paid to workers (rewards or bonuses), fees not included."""
        return sum((Decimal(i.amount) for i in self.items if i.outcome == "ok" and i.amount), Decimal("0.00"))

    @property
    def fees(self) -> Decimal:
        """MTurk's commission on what this run paid (20%; 40% on rewards of HITs of 10 or
        more assignments; +5% with Masters; at least $0.01 each), as MTURK_FACTS states it."""
        return sum((Decimal(i.fee) for i in self.items if i.outcome == "ok" and i.fee), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.paid + self.fees

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.outcome] = out.get(item.outcome, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "mode": self.mode, "ok": self.ok, "counts": self.counts(),
                "paid": money_str(self.paid), "fees": money_str(self.fees), "total": money_str(self.total),
                "items": [i.as_dict() for i in self.items]}


@dataclass(frozen=True)
class Target:
    """One assignment to act on, with what is known about it locally."""

    assignment_id: str
    worker_id: str | None = None
    hit_id: str | None = None
    participant: Any | None = None  # detached participant row, if this study has one
    status: str | None = None  # the marketplace's AssignmentStatus, when looked up

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
        return str(ctx.client.get_assignment(AssignmentId=assignment_id)["Assignment"]["AssignmentStatus"])
    except Exception as exc:
        if classify(exc) is None:
            raise
        return None


def _unaccounted_bonuses(ctx: MarketContext, entry: Any) -> list[Decimal]:
    """Bonuses the marketplace paid to this row's worker and assignment since (about) when
    the row was made, that no other succeeded row of this ledger accounts for.

    Any amount counts, not only the row's: whatever is found means "do not send again".
    """
    L = ctx.db.models.LedgerEntry
    since = entry.created_at - CLOCK_SKEW_ALLOWANCE
    found = []
    for b in paginate(ctx.client, "list_bonus_payments", "BonusPayments", AssignmentId=entry.assignment_id):
        if b.get("WorkerId") not in (None, entry.worker_id):
            continue
        granted = b.get("GrantTime")
        if isinstance(granted, datetime) and granted.tzinfo is not None and granted < since:
            continue
        found.append(Decimal(str(b.get("BonusAmount", "0"))))
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
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        return "unknown", failure, "could not check ListBonusPayments, so nothing was re-sent"
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
    with watch_attempts(ctx.client) as attempts:
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
    # An attempt without a clear answer may have been applied, whatever came after it.
    ambiguous = attempts.ambiguous if attempts.count > 1 else None
    if kind == "bonus":
        if not failure.unknown and is_duplicate_token(failure):
            return "succeeded", None, "MTurk had already applied this request (duplicate UniqueRequestToken)"
        if failure.unknown or ambiguous:
            checked = _bonus_check(ctx, entry) if not failure.unknown else None
            if checked is not None and checked[0] == "succeeded":
                return checked
            note = f"an earlier attempt got {ambiguous}" if ambiguous else ""
            return "unknown", failure, note
        return "failed", failure, ""
    wanted = _CHECK_STATUS[kind]
    if not failure.unknown and (is_wrong_assignment_state(failure) or kind == "unreject"):
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


OTHER_PROJECTS_FLAG = "--allow-other-projects"


def own_hit_ids(ctx: MarketContext) -> set[str]:
    """The HITs this project posted or knows (psiTurk's HIT table, turnout's records)."""
    from turnout.services.hits import _study_hit_ids

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
            found = ctx.client.get_assignment(AssignmentId=a)["Assignment"]
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            why = ("the marketplace does not know this assignment" if "does not exist" in failure.message
                   else f"could not look the assignment up ({failure.text}); nothing sent")
            refused.append(ItemResult(kind, a, "failed", why, uniqueid=p.uniqueid if p is not None else None))
            continue
        worker, hit_id, status = str(found["WorkerId"]), str(found["HITId"]), found.get("AssignmentStatus")
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


def _fee(amount: str | None, rate: Decimal) -> str | None:
    """MTurk's commission on one payment of ``amount`` at ``rate`` (at least a cent)."""
    if not amount:
        return None
    value = Decimal(amount)
    if value <= 0:
        return money_str(Decimal("0"))
    return money_str(max(CENT, (value * rate).quantize(CENT, rounding=ROUND_HALF_UP)))


BONUS_FEE_RATE = Decimal("0.20")  # MTURK_FACTS "Commission": 20% of every bonus


def _approved_in_ledger(ctx: MarketContext, assignment_ids: Sequence[str]) -> dict[str, int]:
    """Assignments whose reward this ledger already paid (an approve or unreject row that
    succeeded), with that row's id: approving them again would add a row for no money."""
    L = ctx.db.models.LedgerEntry
    ids = list(dict.fromkeys(assignment_ids))
    found: dict[str, int] = {}
    with ctx.db.begin() as session:
        for start in range(0, len(ids), 500):
            for assignment_id, entry_id in session.execute(select(L.assignment_id, L.id).where(
                    L.mode == ctx.mode, L.kind.in_(_APPROVALS), L.state == "succeeded",
                    L.assignment_id.in_(ids[start:start + 500])).order_by(L.id)):
                found.setdefault(assignment_id, entry_id)
    return found


def _run(ctx: MarketContext, action: str, kind: str, targets: Sequence[Target], *, reason: str | None = None,
         version: str | None = None, refused: Sequence[ItemResult] = ()) -> BatchResult:
    result = BatchResult(action, ctx.mode)
    result.items.extend(refused)
    rewards = _rewards(ctx, [t.hit_id for t in targets if t.hit_id]) if kind in _APPROVALS else {}
    rates = _reward_fee_rates(ctx, list(rewards)) if rewards else {}
    paid = _approved_in_ledger(ctx, [t.assignment_id for t in targets]) if kind in _APPROVALS else {}
    for target in targets:
        if version is not None and not _in_scope(target, version):
            result.items.append(ItemResult(kind, target.assignment_id, "skipped",
                                           f"participant is of codeversion {target.participant.codeversion}, "
                                           f"not {version}", worker_id=target.worker_id,
                                           uniqueid=target.uniqueid))
            continue
        if target.assignment_id in paid:
            result.items.append(ItemResult(kind, target.assignment_id, "already",
                                           f"already approved (ledger #{paid[target.assignment_id]}); "
                                           "its reward is not paid again", worker_id=target.worker_id,
                                           uniqueid=target.uniqueid, ledger_id=paid[target.assignment_id]))
            continue
        item = _execute(ctx, f"{kind}:{ctx.mode}:{target.assignment_id}", kind, target,
                        amount=rewards.get(target.hit_id or ""), reason=reason)
        if item.outcome == "ok" and target.hit_id in rates:
            item.fee = _fee(item.amount, rates[target.hit_id])
        result.items.append(item)
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


def _reward_fee_rates(ctx: MarketContext, hit_ids: Sequence[str]) -> dict[str, Decimal]:
    """MTurk's fee rate on each recorded HIT's reward (its size and Masters requirement)."""
    from turnout.services.hits import LARGE_HIT, MASTERS

    R = ctx.db.models.HitRecord
    found: dict[str, Decimal] = {}
    with ctx.db.begin() as session:
        for hit_id, size, quals in session.execute(select(R.hit_id, R.max_assignments, R.qualifications).where(
                R.mode == ctx.mode, R.hit_id.in_(list(hit_ids)))):
            masters = any(m in (quals or "") for m in MASTERS.values())
            found[hit_id] = (Decimal("0.20") + (Decimal("0.20") if (size or 0) >= LARGE_HIT else 0)
                             + (Decimal("0.05") if masters else 0))
    return found


def _audit_quietly(ctx: MarketContext, action: str, **detail: Any) -> None:
    """A batch's summary event; a locked database must not turn a finished batch into a
    traceback (each item's own event was written with its outcome)."""
    try:
        audit.write(ctx, action, **detail)
    except Exception as exc:
        if not is_database_trouble(exc):
            raise


def _after(ctx: MarketContext, result: BatchResult, targets: Sequence[Target]) -> None:
    from turnout.services import qualifications

    workers = {t.assignment_id: t.worker_id for t in targets}
    done = [workers.get(i.assignment_id) or i.worker_id for i in result.items
            if i.outcome in ("ok", "already") and i.kind in ("approve", "reject")]
    try:
        qualifications.after_participation(ctx, [w for w in done if w])
    except Exception as exc:
        if not is_database_trouble(exc):
            raise
    _audit_quietly(ctx, result.action, outcome=_summary_outcome(result), target=None, counts=result.counts(),
                   paid=money_str(result.paid), fees=money_str(result.fees))


def _summary_outcome(result: BatchResult) -> str:
    counts = result.counts()
    if not counts or set(counts) <= {"already", "skipped"}:
        return "noop"
    if result.ok:
        return "ok"
    return "partial" if counts.get("ok") else "failed"


def _with_settled(ctx: MarketContext, result: BatchResult, kinds: Sequence[str]) -> BatchResult:
    """Put first the rows of ``kinds`` left unknown earlier, settled now: "approve --all"
    lists only Submitted work, so an approval that went through unseen would never be
    looked at again otherwise."""
    settled = settle_all(ctx, kinds=kinds, skip=[i.ledger_id for i in result.items if i.ledger_id])
    result.items[:0] = settled.items
    return result


# --- bonus ---------------------------------------------------------------------------------

AUTO = "auto"
OVERRIDE_FLAG = "--override-bonused-status"


def auto_amount(value: Any) -> Decimal | None:
    """The participant's ``bonus`` column as dollars, or None when it is 0 or unset.

    The column is a float (psiTurk's schema) written by custom code, so 0.1 + 0.2 can
    arrive as 0.30000000000000004: float noise below a millionth of a cent is rounded
    away, anything else that is not whole cents is refused rather than guessed, and so
    are infinities, NaN, negative and absurd values (each is reported for its own
    participant; the batch goes on).
    """
    if value is None:
        return None
    try:
        amount = Decimal(repr(float(value))) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"bonus column holds {value!r}, which is not a dollar amount") from None
    if not amount.is_finite() or abs(amount) >= Decimal("1000000000"):
        raise InvalidInput(f"bonus column holds {value!r}, which is not a dollar amount that can be paid")
    rounded = amount.quantize(CENT)
    if abs(amount - rounded) > Decimal("0.00000001"):
        raise InvalidInput(f"bonus column holds {value!r}, which is not a whole number of cents")
    if rounded < 0:
        raise InvalidInput(f"bonus column holds {value!r}, which is negative")
    return rounded if rounded > 0 else None


def _free_key(entries: Sequence[Any], stem: str) -> str:
    """``stem``, or ``stem:2``, ``stem:3``... past the intents settled as not paid (failed).

    Deterministic from the ledger, so two processes making the same request meet on the
    same key. A failed intent is never re-sent under its token: a new try (any amount) is
    a new intent with a new token.
    """
    by_key = {e.idempotency_key: e for e in entries}
    n = 1
    key = stem
    while key in by_key and by_key[key].state == "failed":
        n += 1
        key = f"{stem}:{n}"
    return key


def override_stem(ctx: MarketContext, assignment_id: str, amount: Decimal, reason: str) -> str:
    """The key of one deliberate extra payment: this assignment, this amount, this reason.
    The same request made again (or by five processes at once) is the same intent."""
    digest = request_token("override", ctx.mode, assignment_id, money_str(amount), reason.strip())[-16:]
    return f"bonus:{ctx.mode}:{assignment_id}:override:{digest}"


def _bonus_key(ctx: MarketContext, target: Target, override: bool, amount: Decimal, reason: str,
               market_paid: list[Decimal] | None) -> tuple[str | None, str]:
    """The idempotency key for this bonus request of ``target``, or (None, why not).

    Order: an intent of this assignment not yet settled (pending, claimed, unknown) is
    finished first, with its own amount; then an override is its own deterministic intent;
    then anything paid (ledger, psiTurk's status 7, or the marketplace's own
    ListBonusPayments) refuses a plain bonus.
    """
    L = ctx.db.models.LedgerEntry
    with ctx.db.begin() as session:
        entries = list(session.scalars(select(L).where(
            L.mode == ctx.mode, L.kind == "bonus", L.assignment_id == target.assignment_id).order_by(L.id)))
    unsettled = [e for e in entries if e.state in UNSETTLED]
    if unsettled:
        return unsettled[0].idempotency_key, ""
    if override:
        return _free_key(entries, override_stem(ctx, target.assignment_id, amount, reason)), ""
    succeeded = [e for e in entries if e.state == "succeeded"]
    if succeeded:
        paid = ", ".join(f"${e.amount}" for e in succeeded)
        return None, f"already bonused {paid} (ledger #{succeeded[-1].id}); pass {OVERRIDE_FLAG} to pay another bonus"
    if target.participant is not None and target.participant.status == Status.BONUSED:
        return None, f"already bonused before turnout kept a ledger (status 7); pass {OVERRIDE_FLAG} to pay again"
    if market_paid:
        paid = ", ".join(f"${money_str(a)}" for a in market_paid)
        return None, (f"the marketplace shows a bonus of {paid} already paid for this assignment, not by this "
                      f"project's ledger (another project or tool on the same account?); pass {OVERRIDE_FLAG} "
                      "to pay again")
    return _free_key(entries, f"bonus:{ctx.mode}:{target.assignment_id}"), ""


def _market_bonuses(ctx: MarketContext, targets: Sequence[Target]) -> dict[str, list[Decimal]] | CallFailure:
    """What the marketplace itself paid in bonuses, per assignment (ListBonusPayments, one
    paginated call per HIT): the "already bonused" check must not trust this project's
    ledger alone."""
    found: dict[str, list[Decimal]] = {}
    try:
        for hit_id in dict.fromkeys(t.hit_id for t in targets if t.hit_id):
            for b in paginate(ctx.client, "list_bonus_payments", "BonusPayments", HITId=hit_id):
                found.setdefault(str(b["AssignmentId"]), []).append(Decimal(str(b.get("BonusAmount", "0"))))
        for t in targets:
            if not t.hit_id:
                for b in paginate(ctx.client, "list_bonus_payments", "BonusPayments", AssignmentId=t.assignment_id):
                    found.setdefault(t.assignment_id, []).append(Decimal(str(b.get("BonusAmount", "0"))))
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        return failure
    return found


def _bonus_targets(ctx: MarketContext, targets: Sequence[Target], amount: Any, reason: str, *,
                   override: bool, action: str, version: str | None = None,
                   refused: Sequence[ItemResult] = ()) -> BatchResult:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("a bonus needs a reason; MTurk shows it to the worker")
    fixed = None if amount == AUTO else parse_money(amount, what="bonus amount")
    result = BatchResult(action, ctx.mode)
    result.items.extend(refused)
    market = _market_bonuses(ctx, targets) if targets else {}
    for target in targets:
        common = {"worker_id": target.worker_id, "uniqueid": target.uniqueid}
        if version is not None and not _in_scope(target, version):
            result.items.append(ItemResult("bonus", target.assignment_id, "skipped",
                                           f"participant is of codeversion {target.participant.codeversion}, "
                                           f"not {version}", **common))
            continue
        if target.status == "Submitted":
            result.items.append(ItemResult("bonus", target.assignment_id, "refused",
                                           "this assignment is Submitted, not yet approved: bonuses are for "
                                           "approved work, so approve it first (turnout worker approve "
                                           f"{target.assignment_id})", **common))
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
            target = Target(target.assignment_id, worker_id, target.hit_id, target.participant, target.status)
        result.items.append(_bonus_one(ctx, target, value, text, override, market, common))
    _audit_quietly(ctx, action, outcome=_summary_outcome(result), counts=result.counts(),
                   paid=money_str(result.paid), fees=money_str(result.fees),
                   amount=amount if amount == AUTO else money_str(fixed) if fixed is not None else None,
                   override=override or None)
    return result


def _bonus_one(ctx: MarketContext, target: Target, value: Decimal, text: str, override: bool,
               market: dict[str, list[Decimal]] | CallFailure, common: dict[str, Any]) -> ItemResult:
    """One assignment's bonus request: finish an unsettled earlier intent first (with its
    own amount); if that one is settled as not paid, this request's amount is a new intent."""
    earlier: ItemResult | None = None
    for _ in range(3):
        try:
            paid = None if isinstance(market, CallFailure) else market.get(target.assignment_id, [])
            key, why = _bonus_key(ctx, target, override, value, text, paid)
            existing = None
            if key is not None:
                L = ctx.db.models.LedgerEntry
                with ctx.db.begin() as session:
                    existing = session.scalar(select(L).where(L.idempotency_key == key))
        except Exception as exc:
            if not is_database_trouble(exc):
                raise
            return ItemResult("bonus", target.assignment_id, "failed",
                              f"the database failed before anything was sent: {exc}"[:300], **common)
        if key is None:
            if earlier is not None:
                earlier.message += f"; ${money_str(value)} not sent: {why}"
                return earlier
            return ItemResult("bonus", target.assignment_id, "skipped", why, **common)
        if existing is None and isinstance(market, CallFailure) and not override:
            return ItemResult("bonus", target.assignment_id, "failed",
                              f"could not check ListBonusPayments ({market.text}); nothing sent", **common)
        item = _execute(ctx, key, "bonus", target, amount=value, reason=text)
        if item.outcome == "ok":
            item.fee = _fee(item.amount, BONUS_FEE_RATE)
        if existing is None or existing.state not in UNSETTLED:
            if override and item.outcome == "ok":
                item.message += " (paid again: --override-bonused-status)"
            return item
        # That was an earlier request, finished now with its own amount.
        if existing.amount != money_str(value) or (existing.reason or "") != text:
            item.message = f"earlier request for ${existing.amount} (ledger #{existing.id}): {item.message}"
        if item.outcome != "failed":
            if item.outcome == "ok" and existing.amount != money_str(value):
                item.message += f"; ${money_str(value)} not sent (already bonused; {OVERRIDE_FLAG} pays again)"
            return item
        earlier = item  # settled as not paid: go on with this request as a new intent
    return earlier if earlier is not None else ItemResult("bonus", target.assignment_id, "failed",
                                                          "could not settle earlier requests", **common)


def _worker_of(ctx: MarketContext, assignment_id: str) -> str | None:
    try:
        return str(ctx.client.get_assignment(AssignmentId=assignment_id)["Assignment"]["WorkerId"])
    except Exception as exc:
        if classify(exc) is None:
            raise
        return None


def preview_bonus(ctx: MarketContext, *, override: bool) -> str | None:
    """What a person must read before confirming a bonus run (the CLI and dashboard show it)."""
    if override:
        return (f"{OVERRIDE_FLAG}: assignments already bonused are paid AGAIN, one further bonus per "
                "assignment for this amount and reason (re-running the same request does not pay a third time)")
    return None


# --- one action over one selection ------------------------------------------------------------


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


@dataclass(frozen=True)
class Approve:
    """Approve Submitted work, paying its reward."""

    kind: ClassVar[str] = "approve"


@dataclass(frozen=True)
class Reject:
    """Reject Submitted work, telling the worker why (RequesterFeedback)."""

    feedback: str | None = None
    kind: ClassVar[str] = "reject"


@dataclass(frozen=True)
class Unreject:
    """Approve Rejected work (OverrideRejection), paying its reward."""

    kind: ClassVar[str] = "unreject"


@dataclass(frozen=True)
class Bonus:
    """Bonus approved work: ``amount`` in dollars ("1.25") or ``AUTO`` (the participant's
    ``bonus`` column), with a reason MTurk shows the worker. ``override`` pays again an
    assignment already bonused (one further payment per amount and reason)."""

    amount: Any
    reason: str
    override: bool = False
    kind: ClassVar[str] = "bonus"


Action = Approve | Reject | Unreject | Bonus

# What a person confirms in live mode, and the marketplace status a set of assignments is
# drawn from, per action.
_CONFIRMS = {"approve": "approving work", "reject": "rejecting work", "unreject": "overriding rejections",
             "bonus": "paying bonuses"}
SOURCE_STATUS = {"approve": "Submitted", "reject": "Submitted", "unreject": "Rejected", "bonus": "Approved"}
_SCOPE_NAMES = {Ids: "assignments", OneHit: "hit", AllOf: "all", TableFilter: "filter"}


def check_action(action: Action) -> Action:
    """The action with its inputs checked (InvalidInput otherwise), before anything is looked up."""
    if isinstance(action, Reject):
        return Reject(_feedback(action.feedback))
    if isinstance(action, Bonus):
        if action.amount != AUTO:
            parse_money(action.amount, what="bonus amount")
        if not (action.reason or "").strip():
            raise InvalidInput("a bonus needs a reason; MTurk shows it to the worker")
    return action


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


def run(ctx: MarketContext, action: Action, selection: Selection, *, confirm_live: bool = False,
        allow_other_projects: bool = False) -> BatchResult:
    """Do ``action`` to every assignment of ``selection``, inline, each through the ledger.

    Approving a HIT or all of a codeversion also settles approvals left unknown earlier:
    "approve --all" lists only Submitted work, so an approval that went through unseen
    would never be looked at again otherwise. Assignments of HITs that are not this
    project's are refused unless ``allow_other_projects``.
    """
    require_live_confirmation(ctx, confirm_live, _CONFIRMS[action.kind])
    action = check_action(action)
    name = f"{action.kind}.{_SCOPE_NAMES[type(selection)]}"
    targets, refused, version = select_targets(ctx, action.kind, selection,
                                               allow_other_projects=allow_other_projects)
    if isinstance(action, Bonus):
        return _bonus_targets(ctx, targets, action.amount, action.reason, override=action.override, action=name,
                              version=version, refused=refused)
    reason = action.feedback if isinstance(action, Reject) else None
    result = _run(ctx, name, action.kind, targets, reason=reason, version=version, refused=refused)
    if isinstance(action, Approve) and isinstance(selection, (OneHit, AllOf)):
        return _with_settled(ctx, result, _APPROVALS)
    return result


@dataclass(frozen=True)
class Planned:
    """One item a background batch will run: an assignment, and what it pays before fees."""

    assignment_id: str
    worker_id: str | None
    amount: Decimal | None
    fee: Decimal


def plan(ctx: MarketContext, action: Action, selection: Selection) -> list[Planned]:
    """What ``run`` would act on, one assignment each, with what each pays and its fee
    (for a preview, and for a background batch's items). Changes nothing; leaves out what
    ``run`` would skip for certain (another codeversion, a reward or bonus the ledger
    already paid, an auto bonus of nothing)."""
    action = check_action(action)
    targets, _refused, version = select_targets(ctx, action.kind, selection)
    targets = [t for t in targets if version is None or _in_scope(t, version)]
    if isinstance(action, Bonus):
        return _plan_bonus(ctx, action, targets)
    if isinstance(action, Reject):
        return [Planned(t.assignment_id, t.worker_id, None, Decimal("0.00")) for t in targets]
    rewards = _rewards(ctx, [t.hit_id for t in targets if t.hit_id])
    rates = _reward_fee_rates(ctx, list(rewards)) if rewards else {}
    paid = _approved_in_ledger(ctx, [t.assignment_id for t in targets])
    out = []
    for t in targets:
        if t.assignment_id in paid:
            continue
        reward = rewards.get(t.hit_id or "")
        fee = _fee(money_str(reward), rates[t.hit_id or ""]) if reward is not None and t.hit_id in rates else None
        out.append(Planned(t.assignment_id, t.worker_id, reward, Decimal(fee or "0.00")))
    return out


def _plan_bonus(ctx: MarketContext, action: Bonus, targets: Sequence[Target]) -> list[Planned]:
    fixed = None if action.amount == AUTO else parse_money(action.amount, what="bonus amount")
    L = ctx.db.models.LedgerEntry
    ids = [t.assignment_id for t in targets]
    with ctx.db.begin() as session:
        bonused = set(session.scalars(select(L.assignment_id).where(
            L.mode == ctx.mode, L.kind == "bonus", L.state == "succeeded", L.assignment_id.in_(ids)))) if ids else set()
    out = []
    for t in targets:
        if t.status == "Submitted" or (t.assignment_id in bonused and not action.override):
            continue
        amount = fixed
        if amount is None:
            try:
                amount = auto_amount(t.participant.bonus) if t.participant is not None else None
            except InvalidInput:
                amount = None
            if amount is None:
                continue
        out.append(Planned(t.assignment_id, t.worker_id, amount, Decimal(_fee(money_str(amount), BONUS_FEE_RATE))))
    return out


# The entry points each door has called so far: one action over one selection each.


def approve(ctx: MarketContext, assignment_ids: Sequence[str], *, confirm_live: bool = False,
            allow_other_projects: bool = False) -> BatchResult:
    """Approve these assignments (paying their reward)."""
    return run(ctx, Approve(), Ids(tuple(assignment_ids)), confirm_live=confirm_live,
               allow_other_projects=allow_other_projects)


def approve_hit(ctx: MarketContext, hit_id: str, *, confirm_live: bool = False,
                allow_other_projects: bool = False) -> BatchResult:
    """Approve the Submitted assignments of one HIT."""
    return run(ctx, Approve(), OneHit(hit_id), confirm_live=confirm_live, allow_other_projects=allow_other_projects)


def approve_all(ctx: MarketContext, *, codeversion: str | None = None, confirm_live: bool = False) -> BatchResult:
    """Approve every Submitted assignment of this study's HITs in this mode and codeversion.

    psiTurk's "approve all" approved every submitted row of any mode and codeversion; the
    scope here is one mode (the context's) and one codeversion (the project's unless given).
    """
    return run(ctx, Approve(), AllOf(codeversion), confirm_live=confirm_live)


def reject(ctx: MarketContext, assignment_ids: Sequence[str], *, feedback: str | None = None,
           confirm_live: bool = False, allow_other_projects: bool = False) -> BatchResult:
    """Reject these assignments, telling the worker why (RequesterFeedback, recorded here)."""
    return run(ctx, Reject(feedback), Ids(tuple(assignment_ids)), confirm_live=confirm_live,
               allow_other_projects=allow_other_projects)


def reject_hit(ctx: MarketContext, hit_id: str, *, feedback: str | None = None,
               confirm_live: bool = False, allow_other_projects: bool = False) -> BatchResult:
    """Reject the Submitted assignments of one HIT (psiTurk rejected every submitted row)."""
    return run(ctx, Reject(feedback), OneHit(hit_id), confirm_live=confirm_live,
               allow_other_projects=allow_other_projects)


def _feedback(feedback: str | None) -> str:
    text = (feedback or "").strip() or DEFAULT_REJECT_FEEDBACK
    if len(text) > 1024:
        raise InvalidInput("feedback to the worker must be at most 1024 characters")
    return text


def unreject(ctx: MarketContext, assignment_ids: Sequence[str], *, confirm_live: bool = False,
             allow_other_projects: bool = False) -> BatchResult:
    """Approve rejected assignments (OverrideRejection), reporting failures as failures.

    psiTurk reported "unrejected" and set the local status even when MTurk refused. An
    assignment whose reward this ledger already paid is "already" approved, with no new row.
    """
    return run(ctx, Unreject(), Ids(tuple(assignment_ids)), confirm_live=confirm_live,
               allow_other_projects=allow_other_projects)


def unreject_hit(ctx: MarketContext, hit_id: str, *, confirm_live: bool = False,
                 allow_other_projects: bool = False) -> BatchResult:
    return run(ctx, Unreject(), OneHit(hit_id), confirm_live=confirm_live, allow_other_projects=allow_other_projects)


def bonus(ctx: MarketContext, assignment_ids: Sequence[str], *, amount: Any, reason: str,
          override: bool = False, confirm_live: bool = False, allow_other_projects: bool = False) -> BatchResult:
    """Bonus these assignments. An assignment already bonused (by this ledger, or as the
    marketplace's ListBonusPayments shows) is refused unless ``override``. A Submitted
    assignment is refused (approve it first)."""
    return run(ctx, Bonus(amount, reason, override), Ids(tuple(assignment_ids)), confirm_live=confirm_live,
               allow_other_projects=allow_other_projects)


def bonus_hit(ctx: MarketContext, hit_id: str, *, amount: Any, reason: str, override: bool = False,
              confirm_live: bool = False, allow_other_projects: bool = False) -> BatchResult:
    """Bonus the approved assignments of one HIT."""
    return run(ctx, Bonus(amount, reason, override), OneHit(hit_id), confirm_live=confirm_live,
               allow_other_projects=allow_other_projects)


def bonus_all(ctx: MarketContext, *, amount: Any, reason: str, codeversion: str | None = None,
              override: bool = False, confirm_live: bool = False) -> BatchResult:
    """Bonus every approved assignment of this study's HITs in this mode and codeversion."""
    return run(ctx, Bonus(amount, reason, override), AllOf(codeversion), confirm_live=confirm_live)


# --- settling what was left unknown (a claimable step for the scheduler) ------------------------


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
                item.fee = _fee(item.amount, BONUS_FEE_RATE)
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
