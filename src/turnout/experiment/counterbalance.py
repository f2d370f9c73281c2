"""Balanced random assignment of condition and counterbalance, as psiTurk does it, in SQL.

Counted: participants of the same codeversion and mode who finished (status 3, 4, 5, 7)
or began within the last ``cutoff_time`` minutes, less the rows reconciliation excluded
(``turnout_exclusion``, see services/reconciliation.py). The least-filled cells of the
num_conds x num_counters grid are candidates; one is chosen at random. Everyone who
began within the cutoff (which includes every concurrent first visit) is counted under a
named lock (turnout.db.locks), so concurrent first visits cannot all pick the same cell;
the finished participants who began earlier, the part that grows with the table, can be
counted before taking it (``Settled``).

Where the database keeps ``turnout_cell_count`` (migration 0015, turnout.db.cell_counts),
the finished part is read from those few rows instead, under the lock, and only the
participants who began within the cutoff and have not finished are counted from the
participant table (from ``ix_<table>_recent``): the same count, psiTurk's
``finished OR recent``, as ``finished + (recent AND NOT finished)``, at a cost that does
not grow with the table.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from turnout.clock import Clock
from turnout.db import cell_counts as counters
from turnout.experiment.status import COMPLETED_STATUSES

_FINISHED = [int(s) for s in sorted(COMPLETED_STATUSES)]
EXCLUSION_TABLE = "turnout_exclusion"  # turnout.db.reconcile_models; named here to import nothing


def _subtract_excluded(session: Session, Participant: Any, counts: dict[tuple[int, int], int],
                       *conditions: Any) -> None:
    """Take the rows excluded by reconciliation (``turnout_exclusion``) that match
    ``conditions`` out of ``counts``. The exclusion table is small, so this is one join query
    on it rather than an anti-join over the participants that would defeat the balance index."""
    P = Participant
    X = P.metadata.tables.get(EXCLUSION_TABLE)
    if X is None:
        return
    stmt = (select(P.cond, P.counterbalance, func.count())
            .select_from(X).join(P, and_(P.uniqueid == X.c.uniqueid, X.c.study == P.__table__.name))
            .where(*conditions).group_by(P.cond, P.counterbalance))
    for cond, counter, n in session.execute(stmt):
        counts[(cond, counter)] = max(0, counts.get((cond, counter), 0) - n)


def grid(num_conds: int, num_counters: int) -> list[tuple[int, int]]:
    return [(c, k) for c in range(num_conds) for k in range(num_counters)]


@dataclass(frozen=True)
class Settled:
    """Finished participants who began at or before ``since``, per (cond, counterbalance).

    This part of the count only grows, and only when someone who began before ``since``
    finishes, so it may be taken before the counterbalancing lock: the work that grows
    with the table then runs in parallel and holds no lock (on SQLite, not the write
    lock that every save waits for). A participant who began more than ``cutoff_time``
    ago and finishes in the moment between this count and the locked one is missed by
    that one decision, as if they had finished just after it.
    """

    since: datetime
    counts: dict[tuple[int, int], int]


def settled_counts(session: Session, Participant: Any, *, codeversion: str, mode: str,
                   cutoff_minutes: float, clock: Clock) -> Settled:
    """Read from the ``ix_<table>_balance`` index alone (codeversion, mode, status, cond,
    counterbalance, beginhit), grouped in index order."""
    P = Participant
    since = clock.now() - timedelta(minutes=cutoff_minutes)
    stmt = (select(P.status, P.cond, P.counterbalance, func.count())
            .where(P.codeversion == codeversion, P.mode == mode, P.status.in_(_FINISHED),
                   or_(P.beginhit <= since, P.beginhit.is_(None)))
            .group_by(P.status, P.cond, P.counterbalance))
    counts: dict[tuple[int, int], int] = {}
    for _status, cond, counter, n in session.execute(stmt):
        counts[(cond, counter)] = counts.get((cond, counter), 0) + n
    _subtract_excluded(session, P, counts, P.codeversion == codeversion, P.mode == mode, P.status.in_(_FINISHED),
                       or_(P.beginhit <= since, P.beginhit.is_(None)))
    return Settled(since=since, counts=counts)


def uses_counters(session: Session, Participant: Any) -> bool:  # noqa: N803 - a class
    """Whether this table's finished part comes from ``turnout_cell_count`` (then there is
    no ``Settled`` part worth taking outside the lock)."""
    models_counter = getattr(Participant, "_turnout_cell_count", None)
    return models_counter is not None and counters.available(session, Participant.__table__.name)


def _counted_from_counters(session: Session, Participant: Any, *, codeversion: str, mode: str,
                           cutoff_minutes: float, clock: Clock) -> dict[tuple[int, int], int]:
    P = Participant
    since = clock.now() - timedelta(minutes=cutoff_minutes)
    counts: dict[tuple[int, int], int] = {}
    cells = counters.read(session, P._turnout_cell_count, P.__table__.name, codeversion=codeversion, mode=mode)
    for (_cv, _mode, status, cond, counter), n in cells.items():
        if status in _FINISHED:
            counts[(cond, counter)] = counts.get((cond, counter), 0) + n
    _subtract_excluded(session, P, counts, P.codeversion == codeversion, P.mode == mode, P.status.in_(_FINISHED))
    unfinished = or_(P.status.not_in(_FINISHED), P.status.is_(None))
    recent = (select(P.cond, P.counterbalance, func.count())
              .where(P.codeversion == codeversion, P.mode == mode, P.beginhit > since, unfinished)
              .group_by(P.cond, P.counterbalance))
    for cond, counter, n in session.execute(recent):
        counts[(cond, counter)] = counts.get((cond, counter), 0) + n
    _subtract_excluded(session, P, counts, P.codeversion == codeversion, P.mode == mode, P.beginhit > since,
                       unfinished)
    return counts


def cell_counts(session: Session, Participant: Any, *, codeversion: str, mode: str,
                cutoff_minutes: float, clock: Clock, settled: Settled | None = None
                ) -> dict[tuple[int, int], int]:
    """Participants per (cond, counterbalance): finished ones, plus any who began within the
    cutoff (psiTurk's rule), as the settled part plus everyone who began after ``since``.

    One ``finished OR recent`` query would read every row of the table: no database
    answers that OR from an index (0.35 s per first visit at 100k participants on SQLite,
    with the write lock held). The recent part comes from ``ix_<table>_recent`` and is
    small; pass ``settled`` taken earlier, outside the lock, or it is counted here.
    With ``turnout_cell_count`` in place, ``settled`` is not needed and is ignored.
    """
    P = Participant
    if uses_counters(session, P):
        return _counted_from_counters(session, P, codeversion=codeversion, mode=mode,
                                      cutoff_minutes=cutoff_minutes, clock=clock)
    if settled is None:
        settled = settled_counts(session, P, codeversion=codeversion, mode=mode,
                                 cutoff_minutes=cutoff_minutes, clock=clock)
    counts = dict(settled.counts)
    recent = (select(P.cond, P.counterbalance, func.count())
              .where(P.codeversion == codeversion, P.mode == mode, P.beginhit > settled.since)
              .group_by(P.cond, P.counterbalance))
    for cond, counter, n in session.execute(recent):
        counts[(cond, counter)] = counts.get((cond, counter), 0) + n
    _subtract_excluded(session, P, counts, P.codeversion == codeversion, P.mode == mode,
                       P.beginhit > settled.since)
    return counts


def choose(cells: Sequence[tuple[int, int]], counts: dict[tuple[int, int], int],
           rng: random.Random) -> tuple[int, int]:
    """A uniformly random cell among the least-filled ones (cells outside the grid ignored)."""
    fill = {cell: counts.get(cell, 0) for cell in cells}
    low = min(fill.values())
    return rng.choice([cell for cell, n in fill.items() if n == low])
