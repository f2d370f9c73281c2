"""Participant-facing routes with psiTurk's URLs, parameters, JSON shapes and template variables.

Each view parses the request, calls one service in turnout.services.participants, and
renders. psiTurk's wire details that projects depend on are kept on purpose (HTTP 200
numbered error pages, the exact ``{"status": ...}`` bodies, raw template files at
``/<path>``), as psiTurk serves them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    make_response,
    render_template,
    render_template_string,
    request,
    send_from_directory,
)
from markupsafe import escape
from user_agents import parse as parse_user_agent

from turnout.errors import InvalidInput, NotFound
from turnout.experiment.errors import ExperimentError
from turnout.experiment.status import COMPLETED_STATUSES, Outcome
from turnout.services import participants as svc
from turnout.services.browsers import browser_excluded
from turnout.services.participants import ExperimentContext, RequestInfo

bp = Blueprint("experiment", __name__)

TOKEN_HEADER = "X-Turnout-Token"
TOKEN_PARAM = "turnout_token"
SAVE_HEADER = "X-Turnout-Save"
MODE_MARKER = "workerId={{ workerid }}"
_ID = re.compile(r"^[A-Za-z0-9_.@+\-]{1,100}$")
_MODE = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
_MTURK_SUBMIT = re.compile(r"https://(?:www|workersandbox)\.mturk\.com/mturk/externalSubmit")
LOCAL_SUBMIT_PATH = "/_mturk/mturk/externalSubmit"


@bp.before_app_request
def refuse_nul_characters() -> None:
    """A NUL in the path or the query string is refused (400) before any view runs.

    No participant ID, mode or page name holds one; a file path cannot, and PostgreSQL
    refuses such text in a query, so it used to end in a 500 deep inside a view. Every
    route of the app is covered, the project's custom.py routes included (they look up
    participants by query parameters too).
    """
    if "\x00" in request.path or any("\x00" in key or "\x00" in value
                                       for key, value in request.args.items(multi=True)):
        raise InvalidInput("the request's path or query string holds a NUL character")


def form_uniqueid() -> str | None:
    """The ``uniqueId`` form field of /inexp and /quitter (NUL refused, as in the query)."""
    uniqueid = request.form.get("uniqueId")
    if uniqueid and "\x00" in uniqueid:
        raise InvalidInput("the form field uniqueId holds a NUL character")
    return uniqueid


def ctx() -> ExperimentContext:
    return current_app.extensions["turnout"]


def nocache(response: Any) -> Response:
    response = make_response(response)
    response.headers["Cache-Control"] = "no-cache, no-store"
    return response


def _valid_id(value: str | None) -> bool:
    return bool(value) and bool(_ID.match(value or ""))


def _valid_mode(value: str | None) -> bool:
    return bool(value) and bool(_MODE.match(value or ""))


def token_cookie_name(uniqueid: str) -> str:
    return "turnout_t_" + hashlib.sha256(uniqueid.encode()).hexdigest()[:16]


def offered_tokens(uniqueid: str) -> Iterator[str | None]:
    """Every place a participant token may arrive: header, form/query field, cookie.

    Lazily, in that order: psiturk.js sends the header, and a check that finds the token
    there (``any`` stops at the first match) never parses the form or the cookies.
    """
    yield request.headers.get(TOKEN_HEADER)
    yield request.values.get(TOKEN_PARAM)
    yield request.cookies.get(token_cookie_name(uniqueid))


# psiTurk stored the names Werkzeug 1's user-agent parser gave; analysis scripts compare
# against them, so user_agents' families are mapped back to those names where they differ.
_BROWSER_NAMES = {"chrome": "chrome", "chromium": "chrome", "chrome mobile": "chrome",
                  "headlesschrome": "chrome", "firefox": "firefox", "firefox mobile": "firefox",
                  "safari": "safari", "mobile safari": "safari", "ie": "msie", "edge": "edge",
                  "opera": "opera", "samsung internet": "samsungbrowser"}
_PLATFORM_NAMES = {"mac os x": "macos", "windows": "windows", "linux": "linux", "ubuntu": "linux",
                   "fedora": "linux", "debian": "linux", "android": "android", "chrome os": "chromeos",
                   "freebsd": "freebsd"}


def _psiturk_name(family: str | None, names: dict[str, str]) -> str:
    key = (family or "").strip().lower()
    if not key or key == "other":
        return "UNKNOWN"
    return names.get(key, key)[:128]


def request_info() -> RequestInfo:
    user_agent = request.headers.get("User-Agent", "")
    ua = parse_user_agent(user_agent)
    platform = _psiturk_name(ua.os.family, _PLATFORM_NAMES)
    if platform == "ios":
        platform = "ipad" if "iPad" in user_agent else "iphone"
    return RequestInfo(
        ipaddress=request.remote_addr or "UNKNOWN",
        browser=_psiturk_name(ua.browser.family, _BROWSER_NAMES),
        platform=platform,
        language=(request.accept_languages.best or "UNKNOWN")[:128],
    )


def insert_mode(source: str, page: str) -> str:
    """Add ``&mode={{ mode }}`` after the last ``workerId={{ workerid }}``, as psiTurk does."""
    at = source.rfind(MODE_MARKER)
    if at < 0:
        raise ExperimentError("insert_mode_failed", page=page)
    at += len(MODE_MARKER)
    return source[:at] + "&mode={{ mode }}" + source[at:]


def _project_template(name: str) -> str:
    return (ctx().project.templates_dir / name).read_text(encoding="utf-8")


# --- pages -----------------------------------------------------------------------------


@bp.get("/")
def index() -> Any:
    return nocache(render_template("default.html"))


@bp.get("/favicon.ico")
def favicon() -> Any:
    return send_from_directory(ctx().project.static_dir, "favicon.ico")


@bp.get("/static/js/psiturk.js")
def psiturk_js() -> Any:
    source = resources.files("turnout.experiment").joinpath("static/psiturk.js").read_bytes()
    response = make_response(source)
    response.headers["Content-Type"] = "application/javascript; charset=utf-8"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/ad")
@bp.get("/pub")
def advertisement() -> Any:
    c = ctx()
    if browser_excluded(c.settings.browser_exclude_rules, request.headers.get("User-Agent", "")):
        raise ExperimentError("browser_type_not_allowed")
    args = request.args
    hit_id, assignment_id, worker_id, mode = (args.get("hitId"), args.get("assignmentId"),
                                              args.get("workerId"), args.get("mode"))
    if not (_valid_id(hit_id) and _valid_id(assignment_id) and _valid_mode(mode)):
        raise ExperimentError("hit_assign_worker_id_not_set_in_mturk")
    if worker_id is not None and not _valid_id(worker_id):
        raise ExperimentError("hit_assign_worker_id_not_set_in_mturk")
    page = svc.ad_decision(c, hit_id=hit_id, assignment_id=assignment_id, worker_id=worker_id)
    if page is svc.AdPage.DEBUG_DONE:
        # Debug mode never talks to MTurk: no "Submit HIT" form posting to mturk.com.
        return debug_done_page(worker_id)
    if page is svc.AdPage.THANKS:
        mode = svc.stored_mode(c, worker_id=worker_id, assignment_id=assignment_id) or mode
        return nocache(thanks_page(mode=mode, hit_id=hit_id, assignment_id=assignment_id, worker_id=worker_id))
    html = render_template_string(insert_mode(_project_template("ad.html"), "ad.html"),
                                  mode=mode, hitid=hit_id, assignmentid=assignment_id, workerid=worker_id)
    return nocache(html)


def debug_done_page(worker_id: str | None) -> Any:
    """The end of a debug run (the project's complete.html): it has finished, with a link
    to start again as a new participant."""
    return nocache(render_template("complete.html", allow_repeats=ctx().settings.allow_repeats,
                                   worker_id=worker_id))


def thanks_page(*, mode: str, hit_id: str, assignment_id: str, worker_id: str | None) -> str:
    html = render_template("thanks-mturksubmit.html", using_sandbox=mode == "sandbox", hitid=hit_id,
                           assignmentid=assignment_id, workerid=worker_id, mode=mode)
    if mode == "local":
        # psiTurk templates post to mturk.com; in local mode the offline marketplace takes it.
        html = _MTURK_SUBMIT.sub(LOCAL_SUBMIT_PATH, html)
    return html


@bp.get("/consent")
def give_consent() -> Any:
    args = request.args
    hit_id, assignment_id, worker_id, mode = (args.get("hitId"), args.get("assignmentId"),
                                              args.get("workerId"), args.get("mode"))
    if not (_valid_id(hit_id) and _valid_id(assignment_id) and _valid_id(worker_id) and _valid_mode(mode)):
        raise ExperimentError("hit_assign_worker_id_not_set_in_consent")
    html = render_template_string(insert_mode(_project_template("consent.html"), "consent.html"),
                                  mode=mode, hitid=hit_id, assignmentid=assignment_id, workerid=worker_id)
    return nocache(html)


def inject_token(html: str, token: str, page_load_ms: int | None = None) -> str:
    """Put the participant token where psiturk.js looks for it: first thing in <head>.

    With it goes the server's time of this page load, which psiturk.js uses in its save
    stamps instead of the browser's clock: a browser whose clock is wrong still makes
    stamps the server accepts (see ``SAVE_STAMP_MAX_AHEAD``) and orders correctly.
    """
    meta = f'<meta name="turnout-participant-token" content="{escape(token)}">'
    if page_load_ms is not None:
        meta += f'<meta name="turnout-page-load" content="{int(page_load_ms)}">'
    match = re.search(r"<head(?:\s[^>]*)?>", html, flags=re.IGNORECASE)
    if match:
        return html[: match.end()] + meta + html[match.end():]
    return meta + html


@bp.get("/exp")
def start_exp() -> Any:
    c = ctx()
    args = request.args
    hit_id, assignment_id, worker_id, mode = (args.get("hitId"), args.get("assignmentId"),
                                              args.get("workerId"), args.get("mode"))
    if not (_valid_id(hit_id) and _valid_id(assignment_id) and _valid_id(worker_id) and _valid_mode(mode)):
        raise ExperimentError("hit_assign_worker_id_not_set_in_exp")
    try:
        participant = svc.start_experiment(c, hit_id=hit_id, assignment_id=assignment_id, worker_id=worker_id,
                                           mode=mode, info=request_info(),
                                           offered=offered_tokens(f"{worker_id}:{assignment_id}"))
    except svc.FinishedDebugRun as done:
        return debug_done_page(done.participant.workerid)
    html = render_template(
        "exp.html", uniqueId=participant.uniqueid, condition=participant.cond,
        counterbalance=participant.counterbalance, adServerLoc="/complete", mode=participant.mode or mode,
        contact_address=c.settings.contact_email, codeversion=participant.codeversion,
    )
    page_load_ms = int(c.clock.now().timestamp() * 1000)
    response = nocache(inject_token(html, participant.token, page_load_ms) if participant.token else html)
    if participant.token:
        response.set_cookie(token_cookie_name(participant.uniqueid), participant.token, httponly=True,
                            samesite="None" if request.is_secure else "Lax", secure=request.is_secure,
                            max_age=7 * 24 * 3600)
    return response


# --- data ------------------------------------------------------------------------------


#: The server's clock (ms) on every record load: psiturk.js uses it as the page-load time of
#: a page that has no ``turnout-page-load`` meta tag (a page of the project's own route, not
#: /exp), so all of a participant's save stamps come from one clock.
SERVER_TIME_HEADER = "X-Turnout-Server-Time"


@bp.get("/sync/<path:uniqueid>")
def load(uniqueid: str) -> Any:
    c = ctx()
    response = jsonify(svc.load_data(c, uniqueid, offered_tokens(uniqueid)))
    response.headers[SERVER_TIME_HEADER] = str(int(c.clock.now().timestamp() * 1000))
    return response


def request_body() -> bytes:
    """The raw body, refused with 413 when it is over ``max_request_bytes``.

    A body with a Content-Length over the limit is refused by werkzeug before reading. A
    chunked one (no length) is only cut off at the limit, silently; a byte beyond the
    cut means the body was too large, and a truncated save must not be stored.
    """
    body = request.get_data(cache=False)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and request.content_length is None and len(body) >= limit \
            and request.environ["wsgi.input"].read(1):
        abort(413)
    return body


@bp.put("/sync/<path:uniqueid>")
def update(uniqueid: str) -> Any:
    svc.save_data(ctx(), uniqueid, request_body(), offered_tokens(uniqueid),
                  order=request.headers.get(SAVE_HEADER))
    # The bytes jsonify(status="user data saved") gives, without serialising them per save.
    return Response(_SAVED_BODY, mimetype="application/json")


_SAVED_BODY = b'{"status":"user data saved"}\n'


# --- status changes --------------------------------------------------------------------


@bp.post("/inexp")
def enterexp() -> Any:
    uniqueid = form_uniqueid()
    if not uniqueid:
        raise ExperimentError("improper_inputs")
    svc.enter_experiment(ctx(), uniqueid, offered_tokens(uniqueid))
    return jsonify(status="success")


@bp.post("/quitter")
def quitter() -> Any:
    uniqueid = form_uniqueid()
    if not uniqueid:
        raise InvalidInput("the form field uniqueId is required")
    try:
        outcome = svc.quit_experiment(ctx(), uniqueid, offered_tokens(uniqueid))
    except NotFound:
        raise ExperimentError("tried_to_quit") from None
    if outcome is None:
        return jsonify(status="didn't mark as quitter since this is debugging")
    if outcome is Outcome.REFUSED:
        return jsonify(status="not marked as quitter: this participant has already finished")
    return jsonify(status="marked as quitter")


@bp.get("/complete")
def debug_complete() -> Any:
    c = ctx()
    uniqueid, mode = request.args.get("uniqueId"), request.args.get("mode")
    if not uniqueid or not _valid_mode(mode):
        raise ExperimentError("improper_inputs")
    try:
        svc.complete_experiment(c, uniqueid, offered_tokens(uniqueid))
    except NotFound:
        raise ExperimentError("error_setting_worker_complete") from None
    if mode in ("sandbox", "live", "local"):
        return nocache(render_template("closepopup.html"))
    worker_id = uniqueid.split(":", 1)[0]
    return nocache(render_template("complete.html", allow_repeats=c.settings.allow_repeats,
                                   worker_id=worker_id))


@bp.get("/worker_complete")
def worker_complete() -> Any:
    uniqueid = request.args.get("uniqueId")
    if not uniqueid:
        return jsonify(status="bad request"), 400
    try:
        svc.complete_experiment(ctx(), uniqueid, offered_tokens(uniqueid), reason="worker_complete")
    except NotFound:
        return jsonify(status="database error", error={"code": "not_found",
                                                        "message": f"no participant {uniqueid!r}"}), 404
    return jsonify(status="success")


@bp.get("/worker_submitted")
def worker_submitted() -> Any:
    uniqueid = request.args.get("uniqueId")
    if not uniqueid:
        return jsonify(status="bad request"), 400
    try:
        outcome, status = svc.mark_submitted(ctx(), uniqueid)
    except NotFound:
        return jsonify(status="database error", error={"code": "not_found",
                                                        "message": f"no participant {uniqueid!r}"}), 404
    if outcome is Outcome.REFUSED and status not in COMPLETED_STATUSES:
        return jsonify(status="error", error={"code": "conflict", "message":
                                              "this participant has not completed the experiment"}), 409
    return jsonify(status="success")


@bp.get("/check_worker_status")
def check_worker_status() -> Any:
    worker_id = request.args.get("workerId")
    if not worker_id:
        return jsonify(status="bad request"), 400
    status = svc.worker_status(ctx(), worker_id=worker_id, assignment_id=request.args.get("assignmentId"))
    return jsonify(status=status)


# --- raw template files ----------------------------------------------------------------


@bp.get("/<path:path>")
def regularpage(path: str) -> Any:
    """A file under templates/, byte for byte (psiturk.js preloadPages fetches these)."""
    templates = ctx().project.templates_dir
    try:
        target = (templates / path).resolve()
        found = templates.resolve() in target.parents and target.is_file()
    except (ValueError, OSError):  # a name no file system accepts (too long, say)
        found = False
    if not found:
        abort(404)
    return send_from_directory(templates, path)
