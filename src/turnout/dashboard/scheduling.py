"""The Campaigns and Tasks pages, and the runner warning the pages share.

Both pages read through ``services.campaigns`` / ``services.tasks`` and change things only
through the JSON API (``/api/campaigns/``, ``/api/tasks/``) from ``scheduling.js``, so the
page and a script are held to the same rules, roles and CSRF check.
"""

from __future__ import annotations

from typing import Any

from flask import render_template

from turnout.dashboard.auth import require_role, user_mode
from turnout.dashboard.blueprint import bp
from turnout.dashboard.market import state

START_COMMAND = "turnout scheduler"


def runner() -> dict[str, Any]:
    """The runner's heartbeat, plus whether anything is waiting for a runner."""
    from turnout.services import campaigns, tasks

    st = state()
    status = tasks.runner_status(st.db, st.clock)
    status["waiting"] = bool(campaigns.active_campaign_ids(st.db) or tasks.active_task_ids(st.db))
    status["command"] = START_COMMAND
    return status


@bp.context_processor
def _runner_status() -> dict[str, Any]:
    """``runner_status()`` for templates: called only by the pages that show the warning."""
    return {"runner_status": runner}


@bp.get("/campaigns")
@require_role("viewer")
def campaigns_page() -> Any:
    from turnout.services import campaigns

    st = state()
    rows = campaigns.list_campaigns(st.db)
    active = [r for r in rows if r["active"]]
    for row in active:
        row["forecast"] = campaigns.forecast(st.db, st.settings, st.clock, row["id"])
        row["round_list"] = campaigns.rounds(st.db, row["id"])[-5:]
    past = [r for r in rows if not r["active"]]
    return render_template("dashboard/campaigns.html", active=active, past=past, runner=runner(),
                           default_mode=user_mode(), default_codeversion=st.settings.codeversion)


@bp.get("/tasks")
@require_role("viewer")
def tasks_page() -> Any:
    from turnout.services import tasks

    st = state()
    return render_template("dashboard/tasks.html", rows=tasks.list_tasks(st.db), runner=runner(),
                           default_mode=user_mode(), default_codeversion=st.settings.codeversion,
                           min_interval=tasks.MIN_INTERVAL_MINUTES)
