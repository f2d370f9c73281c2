"""CSV twins of the Workers and HITs pages: ``GET /api/assignments.csv`` and
``GET /api/hits.csv`` give exactly the rows the page (and ``/api/assignments/``,
``/api/hits/``) lists for the same filters, every row rather than one page, streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from flask import Response, request, stream_with_context

from turnout.api.blueprint import bp
from turnout.dashboard.auth import require_role
from turnout.dashboard.tables import assignment_rows, hit_rows

ASSIGNMENT_FIELDS = ("hitId", "assignmentId", "workerId", "status", "accept_time", "submit_time", "uniqueid",
                     "codeversion", "local_status", "local_status_name", "bonus", "bonuses_paid",
                     "bonuses_marketplace", "bonus_mismatch")
HIT_FIELDS = ("hitid", "title", "status", "max_assignments", "number_assignments_completed",
              "number_assignments_available", "number_assignments_pending", "number_submissions_needing_action",
              "reward", "creation_time", "expiration", "is_expired", "codeversion", "mode")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return value


def csv_lines(fields: Sequence[str], rows: Iterable[dict[str, Any]], chunk: int = 500) -> Iterator[str]:
    """The header, then the rows ``chunk`` at a time, as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    pending = 0
    for row in rows:
        writer.writerow([_cell(row.get(f)) for f in fields])
        pending += 1
        if pending >= chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def csv_response(fields: Sequence[str], rows: Iterable[dict[str, Any]], filename: str) -> Response:
    return Response(stream_with_context(csv_lines(fields, rows)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/assignments.csv")
@require_role("viewer")
def assignments_csv() -> Any:
    rows = assignment_rows(request.args.get("status"), request.args.get("hit_id"))  # errors before streaming
    return csv_response(ASSIGNMENT_FIELDS, rows, "assignments.csv")


@bp.get("/hits.csv")
@require_role("viewer")
def hits_csv() -> Any:
    return csv_response(HIT_FIELDS, hit_rows(request.args.get("status") or "all"), "hits.csv")


CAMPAIGN_FIELDS = ("id", "mode", "codeversion", "goal", "completed", "active", "created", "ended", "end_reason",
                   "rounds", "spent", "per_round", "interval_minutes", "reward", "duration_hours", "budget",
                   "next_round")
TASK_FIELDS = ("id", "kind", "mode", "codeversion", "interval_minutes", "created", "next_run", "last_started",
               "last_finished", "last_outcome", "last_error")
DIFFERENCE_FIELDS = ("kind", "assignment_id", "worker_id", "hit_id", "local_status", "marketplace_status", "detail",
                     "remedies", "uniqueids")


@bp.get("/campaigns.csv")
@require_role("viewer")
def campaigns_csv() -> Any:
    """The Campaigns page's rows (active and past, newest first) as CSV."""
    from turnout.dashboard.market import state
    from turnout.services import campaigns

    return csv_response(CAMPAIGN_FIELDS, campaigns.list_campaigns(state().db), "campaigns.csv")


@bp.get("/tasks.csv")
@require_role("viewer")
def tasks_csv() -> Any:
    """The Tasks page's rows (running campaigns included) with their last run, as CSV."""
    from turnout.dashboard.market import state
    from turnout.services import tasks

    rows = []
    for row in tasks.list_tasks(state().db):
        last = row.get("last_run") or {}
        rows.append({**row, "last_started": last.get("started"), "last_finished": last.get("finished"),
                     "last_outcome": last.get("outcome"), "last_error": last.get("error")})
    return csv_response(TASK_FIELDS, rows, "tasks.csv")


@bp.get("/reconciliation/last.csv")
@require_role("viewer")
def reconciliation_csv() -> Any:
    """Every difference the last stored check of the caller's mode found (the page shows
    them grouped by kind), as CSV; no marketplace call."""
    from turnout.dashboard.auth import user_mode
    from turnout.dashboard.market import actor, state
    from turnout.services import reconcile_jobs
    from turnout.services.recruitment import MarketContext

    st = state()
    records = MarketContext(db=st.db, settings=st.settings, clock=st.clock, mode=user_mode(), client=None,
                            actor=actor())
    last = reconcile_jobs.latest(records)["last"] or {}
    differences = (last.get("report") or {}).get("differences") or []
    return csv_response(DIFFERENCE_FIELDS, differences, "differences.csv")
