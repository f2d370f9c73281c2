"""Making sure simulated workers have a HIT to take.

A HIT is posted the way a lab posts one (``services.hits.create_hit`` over an unmodified
boto3 client, with its HIT record and audit event), never by writing to the marketplace
store directly, so a rehearsal exercises the same path as a real study.
"""

from __future__ import annotations

import logging
from typing import Any

from turnout.clock import Clock
from turnout.config import Settings
from turnout.marketplace.local import MarketplaceState

__all__ = ["DEMO_ASSIGNMENTS", "DEMO_DURATION_HOURS", "DEMO_REWARD", "open_hits", "post_hit"]

log = logging.getLogger("turnout.simulation")

# Nine, not ten: MTurk charges 40% instead of 20% from ten assignments up.
DEMO_ASSIGNMENTS = 9
DEMO_REWARD = "1.00"
DEMO_DURATION_HOURS = 1
MAX_PAGES = 50


def open_hits(state: MarketplaceState) -> list[Any]:
    """HITs a worker could accept now: Assignable, with an ExternalURL to open."""
    found: list[Any] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        page = state.list_hits(max_results=100, next_token=token)
        found.extend(h for h in page.items if h.status == "Assignable" and h.external_url)
        token = page.next_token
        if not token:
            break
    return found


def post_hit(settings: Settings, *, clock: Clock | None = None, assignments: int = DEMO_ASSIGNMENTS,
             reward: str = DEMO_REWARD, duration_hours: float = DEMO_DURATION_HOURS,
             actor: str = "simulation") -> str:
    """Post one HIT for the project in local mode through the normal service; returns its ID."""
    from turnout.clock import SystemClock
    from turnout.db.engine import Database
    from turnout.services.context import open_market
    from turnout.services.hits import create_hit

    clock = clock or SystemClock()
    db = Database(settings.database_url, settings.tables)
    try:
        ctx = open_market(settings, db, "local", actor, clock)
        created = create_hit(ctx, max_assignments=assignments, reward=reward, duration_hours=duration_hours)
    finally:
        db.dispose()
    return str(created["hit_id"])
