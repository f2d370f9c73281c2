"""The overview of one codeversion in one mode: funnel, conditions, completions, money.

Everything is counted in the database, never by loading participants: the funnel and the
conditions from the per-cell counters the database keeps (turnout.db.cell_counts; a
GROUP BY over the indexed columns where a database has none), completions per day and
money by GROUP BY over indexed columns and the ledger; nothing here calls
the marketplace, so the overview can refresh itself every few seconds cheaply.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, and_, cast, func, select

from turnout.db import cell_counts as counters
from turnout.db.engine import Database
from turnout.services.participant_table import status_name
from turnout.services.recruitment import money_str

# Each step and the statuses that have reached it (status only moves forward, see
# experiment/status.py; 6 = quit early has left the funnel after "started").
FUNNEL = (
    ("loaded", "Experiment loaded", (1, 2, 3, 4, 5, 6, 7)),
    ("started", "Task started", (2, 3, 4, 5, 6, 7)),
    ("completed", "Completed", (3, 4, 5, 7)),
    ("submitted", "Submitted", (4, 5, 7)),
    ("approved", "Approved", (5, 7)),
    ("bonused", "Bonused", (7,)),
)
BONUS_FEE = Decimal("0.20")
HOURLY_SPAN = timedelta(days=3)


def _as_utc(value: Any) -> datetime:
    """A stored time as an aware UTC datetime (SQLite may hand back a string)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _hour(db: Database, column: Any) -> Any:
    """``column`` truncated to its hour, as ISO text, on each database."""
    if db.backend == "sqlite":
        return func.strftime("%Y-%m-%dT%H:00:00", column)
    if db.backend == "postgresql":
        return func.to_char(func.date_trunc("hour", column), 'YYYY-MM-DD"T"HH24:00:00')
    return func.date_format(column, "%Y-%m-%dT%H:00:00")


def _fee_rate(max_assignments: int | None) -> Decimal:
    """MTurk's commission: 20%, 40% on HITs of 10 or more assignments (MTurk's pricing)."""
    return Decimal("0.40") if (max_assignments or 0) >= 10 else Decimal("0.20")


def _fee(amount: Decimal, rate: Decimal) -> Decimal:
    if amount <= 0:
        return Decimal("0.00")
    return max(Decimal("0.01"), (amount * rate).quantize(Decimal("0.01")))


def summary(db: Database, *, codeversion: str, mode: str) -> dict[str, Any]:
    P, L, R = db.models.Participant, db.models.LedgerEntry, db.models.HitRecord
    study = db.tables.participants
    scope = and_(P.codeversion == codeversion, P.mode == mode)
    with db.begin() as session:
        if counters.available(session, study):
            # From the per-cell counters (turnout.db.cell_counts): a few rows, not the table.
            cells = counters.read(session, db.models.CellCount, study, codeversion=codeversion, mode=mode)
            by_status: dict[Any, int] = {}
            cond_status: dict[tuple[Any, Any], int] = {}
            for (_cv, _mode, status, cond, _counter), n in cells.items():
                by_status[status] = by_status.get(status, 0) + n
                cond_status[(cond, status)] = cond_status.get((cond, status), 0) + n
            by_cond = [(c, st, n) for (c, st), n in cond_status.items()]
        else:
            by_status = dict(session.execute(select(P.status, func.count()).where(scope).group_by(P.status)).all())
            by_cond = session.execute(select(P.cond, P.status, func.count()).where(scope)
                                      .group_by(P.cond, P.status)).all()
        day = func.date(P.endhit) if db.backend == "sqlite" else cast(P.endhit, Date)
        per_day = session.execute(select(day, func.count()).where(scope, P.status.in_((3, 4, 5, 7)),
                                                                  P.endhit.is_not(None))
                                  .group_by(day).order_by(day)).all()
        span = session.execute(select(func.min(P.endhit), func.max(P.endhit)).where(
            scope, P.status.in_((3, 4, 5, 7)), P.endhit.is_not(None))).one()
        per_hour = None
        if span[0] is not None and _as_utc(span[1]) - _as_utc(span[0]) <= HOURLY_SPAN:
            hour = _hour(db, P.endhit)
            per_hour = session.execute(select(hour, func.count()).where(
                scope, P.status.in_((3, 4, 5, 7)), P.endhit.is_not(None)).group_by(hour).order_by(hour)).all()
        paid = session.execute(select(L.kind, L.hit_id, L.amount).where(
            L.study == study, L.mode == mode, L.codeversion == codeversion, L.state == "succeeded",
            L.kind.in_(("approve", "unreject", "bonus")))).all()
        hits = session.execute(select(R.hit_id, R.max_assignments, R.reward).where(
            R.study == study, R.mode == mode, R.codeversion == codeversion, R.state == "created")).all()
    total = sum(by_status.values())
    funnel = []
    previous = total
    for key, label, statuses in FUNNEL:
        n = sum(by_status.get(s, 0) for s in statuses)
        funnel.append({"step": key, "label": label, "count": n, "dropped": max(previous - n, 0)})
        previous = n
    conditions: dict[Any, dict[str, Any]] = {}
    for cond, status, n in by_cond:
        row = conditions.setdefault(cond, {"cond": cond, "total": 0, "completed": 0})
        row["total"] += n
        if status in (3, 4, 5, 7):
            row["completed"] += n
    sizes = {h.hit_id: h.max_assignments for h in hits}
    rewards = spent_fees = bonuses = Decimal("0.00")
    approved_per_hit: dict[str, int] = {}
    for kind, hit_id, amount in paid:
        value = Decimal(amount or "0")
        if kind == "bonus":
            bonuses += value
            spent_fees += _fee(value, BONUS_FEE)
        else:
            rewards += value
            spent_fees += _fee(value, _fee_rate(sizes.get(hit_id)))
            approved_per_hit[hit_id or ""] = approved_per_hit.get(hit_id or "", 0) + 1
    committed = committed_fees = Decimal("0.00")
    for h in hits:
        open_slots = max(h.max_assignments - approved_per_hit.get(h.hit_id or "", 0), 0)
        reward = Decimal(h.reward)
        committed += reward * open_slots
        committed_fees += _fee(reward, _fee_rate(h.max_assignments)) * open_slots
    return {
        "codeversion": codeversion, "mode": mode, "total": total,
        "statuses": [{"status": s, "name": status_name(s), "count": n} for s, n in sorted(
            by_status.items(), key=lambda kv: -1 if kv[0] is None else kv[0])],
        "funnel": funnel,
        "conditions": sorted(conditions.values(), key=lambda r: (r["cond"] is None, r["cond"] or 0)),
        "completions": [{"day": str(d), "count": n} for d, n in per_day],
        # Hour by hour (UTC, "2026-12-01T09:00:00") while the completions span at most
        # three days, so a study's first afternoon plots as more than one point; else None.
        "completions_hourly": None if per_hour is None else [{"hour": str(h), "count": n} for h, n in per_hour],
        "money": {"rewards": money_str(rewards), "bonuses": money_str(bonuses), "fees": money_str(spent_fees),
                  "spent": money_str(rewards + bonuses + spent_fees),
                  "committed": money_str(committed), "committed_fees": money_str(committed_fees),
                  "committed_total": money_str(committed + committed_fees)},
    }
