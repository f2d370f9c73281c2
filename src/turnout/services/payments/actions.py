"""One action (approve, reject, unreject, bonus) over one selection, inline (``run``,
the CLI's door) or listed item by item for a background batch (``plan``; services/batches.py
runs each item with ``run`` over that one id). The ten entry points the doors called
before (approve, approve_hit, approve_all...) are each one action over one selection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import select

from turnout.errors import InvalidInput
from turnout.services.payments.bonus_rules import (
    AUTO,
    _bonus_targets,
    auto_amount,
)
from turnout.services.payments.ledger import (
    _APPROVALS,
    DEFAULT_REJECT_FEEDBACK,
    _audit_quietly,
    _execute,
    _fee,
    _reward_fee_rates,
    _summary_outcome,
    settle_all,
)
from turnout.services.payments.results import BatchResult, ItemResult, Target
from turnout.services.payments.selections import (
    AllOf,
    Ids,
    OneHit,
    Selection,
    TableFilter,
    _in_scope,
    select_targets,
)
from turnout.services.recruitment import (
    MarketContext,
    is_database_trouble,
    money_str,
    parse_money,
    require_live_confirmation,
)


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


def _with_settled(ctx: MarketContext, result: BatchResult, kinds: Sequence[str]) -> BatchResult:
    """Put first the rows of ``kinds`` left unknown earlier, settled now: "approve --all"
    lists only Submitted work, so an approval that went through unseen would never be
    looked at again otherwise."""
    settled = settle_all(ctx, kinds=kinds, skip=[i.ledger_id for i in result.items if i.ledger_id])
    result.items[:0] = settled.items
    return result


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
    rate = ctx.port.bonus_fee_rate()
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
        out.append(Planned(t.assignment_id, t.worker_id, amount, Decimal(_fee(money_str(amount), rate))))
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
