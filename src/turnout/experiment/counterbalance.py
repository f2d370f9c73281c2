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
    since = clock.now() - timedelta(minutes=cutoff_minutes)
    stmt = (
        select(Participant.cond, Participant.counterbalance, func.count())
        .where(Participant.codeversion == codeversion, Participant.mode == mode)
        .where(or_(Participant.status.in_([int(s) for s in COMPLETED_STATUSES]), Participant.beginhit > since))
        .group_by(Participant.cond, Participant.counterbalance)
    )
    return {(cond, counter): n for cond, counter, n in session.execute(stmt)}


def choose(cells: Sequence[tuple[int, int]], counts: dict[tuple[int, int], int],
           rng: random.Random) -> tuple[int, int]:
    """A uniformly random cell among the least-filled ones (cells outside the grid ignored)."""
    fill = {cell: counts.get(cell, 0) for cell in cells}
    low = min(fill.values())
    return rng.choice([cell for cell, n in fill.items() if n == low])
