"""``/api/participants``: the participant table's JSON and CSV twins, and one participant."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, stream_with_context

from turnout.api.blueprint import bp
from turnout.dashboard.auth import require_role
from turnout.dashboard.market import state
from turnout.services import participant_table
from turnout.services.participant_table import TableQuery


def table_query() -> TableQuery:
    return TableQuery.from_args(request.args, state().settings.codeversion)


@bp.get("/participants")
@require_role("viewer")
def participants() -> Any:
    return jsonify(participant_table.query(state().db, table_query()))


@bp.get("/participants.csv")
@require_role("viewer")
def participants_csv() -> Any:
    tq = table_query()  # parsed before streaming starts, so bad input is a clean 400
    body = stream_with_context(participant_table.stream_csv(state().db, tq))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="participants.csv"'})


@bp.get("/participants/<path:uniqueid>/<kind>.csv")
@require_role("viewer")
def participant_data_csv(uniqueid: str, kind: str) -> Any:
    """One participant's trialdata, eventdata or questiondata in ``turnout export``'s CSV
    layout (psiTurk's: no header row)."""
    from turnout.services import export

    rows = export.participant_rows(state().db, uniqueid, kind)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in uniqueid)
    return Response(export.rows_to_csv(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{kind}-{safe}.csv"'})


@bp.get("/participants/<path:uniqueid>")
@require_role("viewer")
def participant(uniqueid: str) -> Any:
    return jsonify(participant_table.participant_detail(state().db, uniqueid))
