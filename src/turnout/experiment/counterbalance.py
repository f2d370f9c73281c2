"""Balanced random assignment of condition and counterbalance, as psiTurk does it, in SQL.

Counted: participants of the same codeversion and mode who finished (status 3, 4, 5, 7)
or began within the last ``cutoff_time`` minutes. The least-filled cells of the
num_conds x num_counters grid are candidates; one is chosen at random. The count runs as
one GROUP BY under a named lock (turnout.db.locks), so concurrent first visits cannot
all pick the same cell.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from turnout.clock import Clock
from turnout.experiment.status import COMPLETED_STATUSES


def grid(num_conds: int, num_counters: int) -> list[tuple[int, int]]:
    return [(c, k) for c in range(num_conds) for k in range(num_counters)]


def cell_counts(session: Session, Participant: Any, *, codeversion: str, mode: str,
                cutoff_minutes: float, clock: Clock) -> dict[tuple[int, int], int]:
    """Participants per (cond, counterbalance): finished ones, plus unfinished ones who began
    within the cutoff.

    Two queries rather than one ``finished OR recent``: no database answers that OR from an
    index, so it read every row of the table (0.35 s at 100k participants on SQLite, while
    holding the write lock). Finished rows are counted from the ``ix_<table>_balance`` index
    alone (codeversion, mode, status, cond, counterbalance), grouped in index order; the
    recent unfinished ones come from the ``ix_<table>_recent`` index and are few.
    """
    P = Participant
    since = clock.now() - timedelta(minutes=cutoff_minutes)
    finished = [int(s) for s in sorted(COMPLETED_STATUSES)]
    scope = (P.codeversion == codeversion, P.mode == mode)
    counts: dict[tuple[int, int], int] = {}
    done = (select(P.status, P.cond, P.counterbalance, func.count())
            .where(*scope, P.status.in_(finished))
            .group_by(P.status, P.cond, P.counterbalance))
    for _status, cond, counter, n in session.execute(done):
        counts[(cond, counter)] = counts.get((cond, counter), 0) + n
    recent = (select(P.cond, P.counterbalance, func.count())
              .where(*scope, P.beginhit > since, or_(P.status.is_(None), P.status.not_in(finished)))
              .group_by(P.cond, P.counterbalance))
    for cond, counter, n in session.execute(recent):
        counts[(cond, counter)] = counts.get((cond, counter), 0) + n
    return counts


def choose(cells: Sequence[tuple[int, int]], counts: dict[tuple[int, int], int],
           rng: random.Random) -> tuple[int, int]:
    """A uniformly random cell among the least-filled ones (cells outside the grid ignored)."""
    fill = {cell: counts.get(cell, 0) for cell in cells}
    low = min(fill.values())
    return rng.choice([cell for cell, n in fill.items() if n == low])
