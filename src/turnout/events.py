"""Short lines for the events a researcher watches happen: the ``turnout.events`` logger.

HIT posted, worker accepted / returned / abandoned / submitted, participant completed,
assignment approved or rejected. Every process that serves a project logs them here (the
server's workers, the simulated-arrivals process, a scheduler); the records reach
server.log like any other (at INFO, whatever the log level), and with ``turnout serve
--demo`` each process also prints them on the terminal it was started from, so a demo
shows its simulated workers arriving instead of going quiet after the banner.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("turnout.events")
log.setLevel(logging.INFO)

#: Set to 1 by ``turnout serve --demo``; inherited by its workers and the arrivals process.
SHOW_ENV = "TURNOUT_SHOW_EVENTS"

_MARKETPLACE = {
    "HITCreated": "HIT {hit} posted in the offline marketplace",
    "AssignmentAccepted": "worker {worker} accepted HIT {hit}",
    "AssignmentReturned": "worker {worker} returned HIT {hit}",
    "AssignmentAbandoned": "worker {worker} ran out of time on HIT {hit} (abandoned)",
    "AssignmentSubmitted": "worker {worker} finished and submitted assignment {assignment}",
    "AssignmentApproved": "assignment {assignment} of worker {worker} approved",
    "AssignmentRejected": "assignment {assignment} of worker {worker} rejected",
    "HITExpired": "HIT {hit} expired",
}


def marketplace_event(event_type: str, *, hit_id: str | None = None, assignment_id: str | None = None,
                      worker_id: str | None = None) -> None:
    """One line for an offline-marketplace event worth watching (others are not shown)."""
    text = _MARKETPLACE.get(event_type)
    if text is not None:
        log.info(text.format(hit=hit_id, worker=worker_id, assignment=assignment_id))


def participant_completed(worker_id: str | None, assignment_id: str | None, mode: str | None) -> None:
    log.info("participant %s (assignment %s, mode %s) completed the study", worker_id, assignment_id, mode)


def show_on_terminal(stream: object = None) -> None:
    """Print the events on standard error too, if ``turnout serve --demo`` asked for it."""
    if os.environ.get(SHOW_ENV) != "1":
        return
    if any(getattr(h, "_turnout_terminal", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("  %(asctime)s  %(message)s", datefmt="%H:%M:%S"))
    handler._turnout_terminal = True  # type: ignore[attr-defined]
    log.addHandler(handler)
