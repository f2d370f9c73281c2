"""The dashboard's pages: server-rendered, one view per page, each calling one service."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, session, url_for

from turnout.dashboard.auth import (
    current_principal,
    login_session,
    require_role,
    safe_next,
    user_mode,
)
from turnout.dashboard.blueprint import MODES, bp
from turnout.dashboard.market import balance, state
from turnout.services import accounts


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = safe_next(request.values.get("next"), url_for("dashboard.index"))
    if request.method == "GET":
        if current_principal() is not None:
            return redirect(target)
        return render_template("dashboard/login.html", next=target)
    st = state()
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    try:
        principal = accounts.authenticate(st.db, st.settings, username, password,
                                          address=request.remote_addr or "unknown", clock=st.clock)
    except accounts.TooManyAttempts as exc:
        flash(exc.message, "danger")
        return render_template("dashboard/login.html", next=target), 429
    if principal is None:
        flash("Incorrect username or password.", "danger")
        return render_template("dashboard/login.html", next=target)  # 200 with the form again, as psiTurk
    login_session(principal)
    return redirect(target)


@bp.post("/logout")
def logout() -> Any:
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("dashboard.login"))


@bp.get("/")
@require_role("viewer")
def index() -> Any:
    from turnout.dashboard.market import accepted_count
    from turnout.services.study_summary import summary

    mode = user_mode()
    data = summary(state().db, codeversion=state().settings.codeversion, mode=mode)
    accepted = accepted_count(mode, state().settings.codeversion)
    # MTurk's count is "accepted and not returned": a worker who loaded the task and then
    # returned the HIT leaves it, so it can be below "loaded" and is shown beside the
    # funnel, not as its first step.
    data["accepted"] = accepted
    partial = request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request")
    template = "dashboard/_overview_body.html" if partial else "dashboard/overview.html"
    return render_template(template, s=data)


@bp.route("/settings", methods=["GET", "POST"])
@require_role("viewer")
def settings_page() -> Any:
    if request.method == "POST":
        mode = request.form.get("mode")
        if mode not in MODES:
            flash(f"unknown mode {mode!r}", "danger")
            return redirect(url_for("dashboard.settings_page"), 303)
        session["mode"] = mode  # this user's session only
        flash(f"Your dashboard now works on the {mode} marketplace.", "success")
        return redirect(url_for("dashboard.settings_page"), 303)
    st = state()
    s = st.settings
    mode = user_mode()
    from sqlalchemy.engine import make_url

    db_shown = make_url(s.database_url).render_as_string(hide_password=True)
    return render_template("dashboard/settings.html", balance=balance(mode), db_url=db_shown,
                           do_scheduler=s.do_scheduler, threads=s.threads, default_mode=s.default_mode)


# --- participants ------------------------------------------------------------------------

@bp.get("/participants")
@require_role("viewer")
def participants() -> Any:
    from turnout.errors import InvalidInput
    from turnout.services import participant_table
    from turnout.services.participant_table import TableQuery

    current = state().settings.codeversion
    try:
        tq = TableQuery.from_args(request.args, current)
        error = None
    except InvalidInput as exc:
        tq, error = TableQuery(codeversion=current), exc.message
    result = participant_table.query(state().db, tq)
    pages = max(1, -(-result["total"] // tq.per_page))

    def link(**changes: Any) -> str:
        return url_for("dashboard.participants", **tq.to_args(current, **changes))

    def api_link(endpoint: str) -> str:
        return url_for(endpoint, **tq.to_args(current, page=None, per_page=None))

    def batch_url(action: str) -> str:  # the same filter, as a batch over its participants
        return url_for("api.participants_action", action=action, **tq.to_args(current, page=None, per_page=None,
                                                                              sort=None, group_by=None))

    context = {"tq": tq, "result": result, "pages": pages, "link": link, "error": error, "batch_url": batch_url,
               "csv_url": api_link("api.participants_csv"), "json_url": api_link("api.participants"),
               "columns": participant_table.COLUMNS, "current": current}
    partial = request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request")
    template = "dashboard/_participants_table.html" if partial \
        else "dashboard/participants.html"
    headers = {"HX-Push-Url": link()} if partial else {}  # the tidy URL, without empty fields
    return render_template(template, **context), 400 if error else 200, headers


@bp.get("/participants/<path:uniqueid>")
@require_role("viewer")
def participant(uniqueid: str) -> Any:
    from turnout.errors import NotFound
    from turnout.services import participant_table

    try:
        p = participant_table.participant_detail(state().db, uniqueid)
    except NotFound as exc:
        return render_template("dashboard/error.html", message=exc.message, status=404), 404
    return render_template("dashboard/participant.html", p=p, columns=participant_table.COLUMNS)


# --- workers (batch actions) and HITs ------------------------------------------------------

BATCH_BUTTONS = (
    ("assignments-approve_all", "/api/assignments/action/approve_all", "Approve all",
     "Every Submitted assignment of this mode and codeversion.", False),
    ("assignments-bonus_all", "/api/assignments/action/bonus_all", "Bonus all (auto)",
     "Each approved participant's bonus column, once, with the reason below.", True),
    ("hits-approve_all", "/api/hits/action/approve_all", "Approve all workers for all HITs",
     "Every Submitted assignment on this study's HITs, local row or not.", False),
    ("hits-expire_all", "/api/hits/action/expire_all", "Expire all HITs",
     "Stop every active HIT of this study now.", False),
    ("hits-delete_all", "/api/hits/action/delete_all", "Delete all HITs",
     "Those MTurk lets go: Reviewable, with no work left to review.", False),
)


@bp.get("/workers")
@require_role("viewer")
def workers() -> Any:
    from turnout.dashboard.market import market
    from turnout.dashboard.tables import assignment_rows
    from turnout.errors import TurnoutError
    from turnout.services import batches

    rows: list[dict[str, Any]] = []
    recent: list[dict[str, Any]] = []
    error = None
    status = request.args.get("status") or ""
    try:
        ctx = market()
        recent = batches.recent(ctx, limit=10)
        rows = assignment_rows(status or None, ctx=ctx)
    except TurnoutError as exc:
        error = exc.message
    running = next((b for b in recent if b["state"] == "running"), None)
    twins = {"csv_url": url_for("api.assignments_csv", status=status or None),
             "json_url": url_for("api.assignment_list", status=status or None)}
    return render_template("dashboard/workers.html", rows=rows[:500], total=len(rows), error=error,
                           recent=recent, running=running, buttons=BATCH_BUTTONS, status=status, **twins)


@bp.get("/hits")
@require_role("viewer")
def hits_page() -> Any:
    from turnout.dashboard.tables import HIT_SHOWS, hit_rows
    from turnout.errors import TurnoutError

    show = request.args.get("show", "all")
    if show not in HIT_SHOWS:
        show = "all"
    rows: list[dict[str, Any]] = []
    error = None
    try:
        rows = hit_rows(show)
    except TurnoutError as exc:
        error = exc.message
    return render_template("dashboard/hits.html", rows=rows, show=show, error=error,
                           csv_url=url_for("api.hits_csv", status=show),
                           json_url=url_for("api.hit_list", status=show))


@bp.get("/activity")
@require_role("viewer")
def activity() -> Any:
    from turnout.errors import InvalidInput
    from turnout.services.activity import ActivityQuery, list_events

    try:
        aq = ActivityQuery.from_args(request.args)
        error = None
    except InvalidInput as exc:
        aq, error = ActivityQuery(), exc.message
    page = list_events(state().db, aq)
    from turnout.services.audit import OUTCOMES

    choices = {"mode": [*MODES, "-"], "outcome": list(OUTCOMES)}
    return render_template("dashboard/activity.html", aq=aq, page=page, error=error, choices=choices,
                           csv_url=url_for("api.activity_csv", **aq.args()),
                           json_url=url_for("api.activity", **aq.args())), 400 if error else 200
