"""The participant status state machine.

psiTurk overwrote ``status`` unconditionally, so a paid participant who reloaded
/complete became "completed" again. Here every change goes through ``transition``, which
refuses to move a finished participant backwards and records each change as a row.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy.orm import Session

from turnout.clock import Clock


class Status(enum.IntEnum):
    NOT_ACCEPTED = 0
    ALLOCATED = 1
    STARTED = 2
    COMPLETED = 3
    SUBMITTED = 4
    CREDITED = 5
    QUITEARLY = 6
    BONUSED = 7


COMPLETED_STATUSES = frozenset({Status.COMPLETED, Status.SUBMITTED, Status.CREDITED, Status.BONUSED})

# Which status may follow which. A quitter may come back and finish: psiturk.js reports
# "quitter" from beforeunload even when the participant then chooses to stay on the page.
# CREDITED is reachable from unfinished states because the marketplace may approve (pay)
# an assignment whose local row never reached /complete, e.g. by auto-approval.
ALLOWED: dict[Status, frozenset[Status]] = {
    Status.NOT_ACCEPTED: frozenset({Status.ALLOCATED}),
    Status.ALLOCATED: frozenset({Status.STARTED, Status.COMPLETED, Status.QUITEARLY, Status.CREDITED}),
    Status.STARTED: frozenset({Status.COMPLETED, Status.QUITEARLY, Status.CREDITED}),
    Status.QUITEARLY: frozenset({Status.STARTED, Status.COMPLETED, Status.CREDITED}),
    Status.COMPLETED: frozenset({Status.SUBMITTED, Status.CREDITED, Status.BONUSED}),
    Status.SUBMITTED: frozenset({Status.CREDITED, Status.BONUSED}),
    Status.CREDITED: frozenset({Status.BONUSED}),
    Status.BONUSED: frozenset(),
}


class Outcome(enum.Enum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"  # already in that status: a repeat, harmless
    REFUSED = "refused"  # would move the participant backwards or sideways


def can_transition(old: int | None, new: Status) -> bool:
    """Whether ``old`` may become ``new``. A stored status outside psiTurk's 0-7 (left by
    some other tool) is never overwritten: refusing is safe, guessing is not."""
    try:
        current = Status(old if old is not None else Status.NOT_ACCEPTED)
    except ValueError:
        return False
    return new in ALLOWED[current]


def transition(session: Session, models: Any, participant: Any, new: Status, *, reason: str,
               clock: Clock, detail: str | None = None) -> Outcome:
    """Move ``participant`` to ``new`` if the state machine allows it; record the change.

    The caller commits. Nothing else in turnout assigns ``participant.status``.
    """
    old = participant.status
    if old == new:
        return Outcome.UNCHANGED
    if not can_transition(old, new):
        return Outcome.REFUSED
    participant.status = int(new)
    session.add(models.StatusTransition(
        table_name=participant.__tablename__, uniqueid=participant.uniqueid,
        old_status=old, new_status=int(new), reason=reason, at=clock.now(), detail=detail,
    ))
    return Outcome.CHANGED


def record_insert(session: Session, models: Any, participant: Any, *, clock: Clock) -> None:
    """Record the first status of a new participant row (NOT_ACCEPTED -> ALLOCATED)."""
    session.add(models.StatusTransition(
        table_name=participant.__tablename__, uniqueid=participant.uniqueid, old_status=None,
        new_status=int(participant.status), reason="exp", at=clock.now(),
    ))
