"""The rows of the Workers and HITs pages, shared by the pages and their JSON/CSV twins
(``/api/assignments/``, ``/api/hits/``, ``/api/assignments.csv``, ``/api/hits.csv``)."""

from __future__ import annotations

from typing import Any

from turnout.dashboard.market import market
from turnout.errors import InvalidInput
from turnout.services import hits
from turnout.services.participant_table import status_name

HIT_SHOWS = ("all", "active", "reviewable")


def assignment_rows(status: str | None, hit_id: str | None = None, *, ctx: Any = None) -> list[dict[str, Any]]:
    """The Workers page's rows: this study's assignments in the caller's mode, with
    ``local_status_name`` added; ``status`` is Submitted, Approved or Rejected (or None)."""
    rows = hits.list_assignments(ctx or market(), hit_ids=[hit_id] if hit_id else None, status=status or None)
    for row in rows:
        row["local_status_name"] = status_name(row["local_status"]) if row["local_status"] is not None else ""
    return rows


def hit_rows(show: str) -> list[dict[str, Any]]:
    """The HITs page's rows: ``show`` is all, active or reviewable."""
    if show not in HIT_SHOWS:
        raise InvalidInput(f"status must be one of {', '.join(HIT_SHOWS)}, got {show!r}")
    return hits.list_hits(market(), active=show == "active", reviewable=show == "reviewable")
