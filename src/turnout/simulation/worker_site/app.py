"""The worker site: act as an MTurk worker in the offline marketplace, in a browser.

Mounted by ``turnout serve`` (mode local) at ``/_mturk/worker``, beside the marketplace at
``/_mturk``. A person picks or creates a worker ID, lists the HITs that worker can find,
previews one (its ExternalQuestion in a frame, with ``assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE``),
accepts it and does the study in the frame, as on MTurk. The study's thanks page posts to
``/_mturk/mturk/externalSubmit`` (the experiment server rewrites psiTurk's mturk.com form in
local mode); the assignment page notices the submission and shows it.

Plain server-rendered pages: no build step, no CDN, one stylesheet and a few lines of
script for the status check. Everything that changes state is a POST carrying a
double-submit CSRF token (a random cookie echoed in a hidden field), so it works across
server processes without a shared secret. The worker ID lives in a cookie: this is a
rehearsal tool on loopback, not an identity system. Accepting a HIT gives the browser a
second cookie, scoped to the marketplace's ``/mturk/`` path, that ``externalSubmit`` wants
before it submits that assignment: the proof goes to the browser that accepted, once.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Flask, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from turnout.clock import Clock
from turnout.marketplace.local import MarketplaceState, WorkerActionRefused, WorkerSide
from turnout.marketplace.local.wsgi import submit_cookie_name

__all__ = ["create_worker_site"]

WORKER_COOKIE = "turnout_worker"
CSRF_COOKIE = "turnout_ws_csrf"
CSRF_FIELD = "csrf"
WORKER_ID = re.compile(r"^A[A-Z0-9]{1,63}$")
FRAME_HEIGHT = re.compile(r"<FrameHeight>\s*(\d+)\s*</FrameHeight>")
RECENT_WORKERS = 25
REFUSAL_STATUS = {"UnknownWorker": 404, "UnknownHIT": 404, "UnknownAssignment": 404,
                  "NotQualified": 403, "WrongWorker": 403}


def _money(value: Decimal) -> str:
    return f"${value:.2f}"


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} days".replace(".0 days", " days")


def create_worker_site(store_path: str, *, clock: Clock | None = None,
                       marketplace_root: str | None = None) -> Flask:
    """The worker site over the marketplace store at ``store_path``.

    ``marketplace_root`` is the path where the marketplace app is mounted (its
    ``/mturk/externalSubmit`` is turkSubmitTo); by default the site's own mount point
    minus its last segment, i.e. ``/_mturk`` for a site at ``/_mturk/worker``.
    """
    state = MarketplaceState(store_path, clock)
    app = Flask(__name__)
    app.config.update(JSON_SORT_KEYS=False, SEND_FILE_MAX_AGE_DEFAULT=60)
    app.extensions["turnout_worker_site"] = state
    app.jinja_env.filters["money"] = _money
    app.jinja_env.filters["duration"] = _duration

    def side() -> WorkerSide:
        return state.workers

    def open_slots(hit: Any) -> int:
        """Assignments a worker can still accept: the HIT's size less those accepted or done.

        Why not the HIT's NumberOfAssignmentsAvailable: in MTurk's counters a preview is
        pending, so the previewing worker's own preview (or another's) showed "0 available"
        on a one-slot HIT that Accept then took without trouble; previews never block an
        accept. Expired HITs have none.
        """
        if now() >= hit.expiration:
            return 0
        with state.transaction() as tx:
            row = tx.one("SELECT COUNT(*) FROM assignments WHERE hit_id = ? AND status IN "
                         "('Accepted', 'Submitted', 'Approved', 'Rejected')", hit.hit_id)
        return max(0, hit.max_assignments - (row[0] if row else 0))

    app.jinja_env.filters["open_slots"] = open_slots

    def now() -> datetime:
        return state.clock.now()

    def submit_root() -> str:
        root = marketplace_root
        if root is None:
            root = request.script_root.rsplit("/", 1)[0] if "/" in request.script_root else ""
        return root

    def turk_submit_to() -> str:
        return request.host_url.rstrip("/") + submit_root()

    def hold_submit_proof(response: Response, assignment: Any) -> Response:
        """Give this browser the proof externalSubmit wants for the assignment it accepted, on
        the marketplace's path only, so the study's thanks page (psiTurk's form posting
        assignmentId and hitId) submits from this browser and from no other."""
        seconds = max(60, int((assignment.deadline - now()).total_seconds()) + 3600)
        response.set_cookie(submit_cookie_name(assignment.assignment_id), side().submit_key(assignment.assignment_id),
                            path=submit_root() + "/mturk/", max_age=seconds, httponly=True, samesite="Lax")
        return response

    def current_worker() -> str | None:
        worker_id = request.cookies.get(WORKER_COOKIE, "")
        return worker_id if WORKER_ID.match(worker_id) else None

    def require_worker() -> str:
        worker_id = current_worker()
        if worker_id is None:
            abort(redirect(url_for("pick_worker"), 303))
        return worker_id

    def csrf_token() -> str:
        token = request.cookies.get(CSRF_COOKIE, "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", token):
            token = getattr(request, "_new_csrf", "") or secrets.token_urlsafe(24)
            request._new_csrf = token  # type: ignore[attr-defined]
        return token

    def cookie_path() -> str:
        return (request.script_root or "") + "/"

    @app.context_processor
    def page_globals() -> dict[str, Any]:
        return {"worker_id": current_worker(), "csrf_token": csrf_token, "csrf_field": CSRF_FIELD, "now": now()}

    @app.after_request
    def set_csrf_cookie(response: Response) -> Response:
        new = getattr(request, "_new_csrf", None)
        if new:
            response.set_cookie(CSRF_COOKIE, new, path=cookie_path(), httponly=True, samesite="Strict")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.before_request
    def check_csrf() -> None:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = request.form.get(CSRF_FIELD, "")
        if not cookie or not hmac.compare_digest(cookie, sent):
            abort(403, "This form is out of date (its security token does not match). Go back, reload the page "
                       "and try again.")

    @app.errorhandler(WorkerActionRefused)
    def refused(exc: WorkerActionRefused) -> Any:
        status = REFUSAL_STATUS.get(exc.code, 409)
        return render_template("message.html", title="Not done", message=exc.message, code=exc.code), status

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    def http_error(exc: Any) -> Any:
        return render_template("message.html", title=exc.name, message=exc.description,
                               code=str(exc.code)), exc.code

    # --- who am I ---------------------------------------------------------------------

    @app.get("/workers")
    def pick_worker() -> Any:
        workers = side().all()
        recent = list(reversed(workers[-RECENT_WORKERS:]))
        return render_template("workers.html", workers=recent, total=len(workers))

    @app.post("/workers")
    def choose_worker() -> Any:
        if request.form.get("action") == "new":
            worker = side().register()
        else:
            wanted = request.form.get("worker_id", "").strip().upper()
            if not WORKER_ID.match(wanted):
                abort(400, "A worker ID is A followed by capital letters and digits, like A2YUCJ28XANFOX.")
            try:
                worker = side().get(wanted)
            except WorkerActionRefused:
                worker = side().register(wanted)  # a new ID typed in: create that worker
        response = redirect(url_for("hits"), 303)
        response.set_cookie(WORKER_COOKIE, worker.worker_id, path=cookie_path(), samesite="Lax")
        return response

    @app.post("/signout")
    def sign_out() -> Any:
        response = redirect(url_for("pick_worker"), 303)
        response.delete_cookie(WORKER_COOKIE, path=cookie_path())
        return response

    # --- finding work -------------------------------------------------------------------

    @app.get("/")
    def hits() -> Any:
        worker_id = require_worker()
        try:
            found = side().assignable_hits(worker_id)
        except WorkerActionRefused:  # the cookie names a worker a reset forgot
            response = redirect(url_for("pick_worker"), 303)
            response.delete_cookie(WORKER_COOKIE, path=cookie_path())
            return response
        working = [a for a in side().assignments_of(worker_id) if a.status == "Accepted"]
        return render_template("hits.html", hits=found, working=working)

    @app.post("/hits/<hit_id>/preview")
    def preview(hit_id: str) -> Any:
        side().preview(require_worker(), hit_id)
        return redirect(url_for("show_hit", hit_id=hit_id), 303)

    @app.get("/hits/<hit_id>")
    def show_hit(hit_id: str) -> Any:
        require_worker()
        hit = side().hit(hit_id)
        frame = side().task_url_for(None, hit, turk_submit_to=turk_submit_to())
        return render_template("preview.html", hit=hit, frame_url=frame, frame_height=_frame_height(hit))

    @app.post("/hits/<hit_id>/accept")
    def accept(hit_id: str) -> Any:
        assignment = side().accept(require_worker(), hit_id)
        return hold_submit_proof(redirect(url_for("show_assignment", assignment_id=assignment.assignment_id), 303),
                                 assignment)

    # --- doing work ---------------------------------------------------------------------

    def own_assignment(assignment_id: str) -> Any:
        worker_id = require_worker()
        assignment = side().assignment(assignment_id)
        if assignment.worker_id != worker_id:
            abort(403, f"Assignment {assignment_id} belongs to another worker.")
        return assignment

    @app.get("/assignments")
    def assignments() -> Any:
        worker_id = require_worker()
        mine = list(reversed(side().assignments_of(worker_id)))
        titles = {}
        for a in mine[:100]:
            if a.hit_id not in titles:
                try:
                    titles[a.hit_id] = side().hit(a.hit_id).title
                except WorkerActionRefused:
                    titles[a.hit_id] = "(deleted HIT)"
        return render_template("assignments.html", assignments=mine[:100], titles=titles, total=len(mine))

    @app.get("/assignments/<assignment_id>")
    def show_assignment(assignment_id: str) -> Any:
        assignment = own_assignment(assignment_id)
        hit = side().hit(assignment.hit_id)
        frame = None
        if assignment.status == "Accepted":
            frame = side().task_url_for(assignment, hit, turk_submit_to=turk_submit_to())
        # The externalSubmit proof is not handed out again here: the worker cookie only names a
        # worker (anyone can pick any ID on this site), the accept POST is what binds a browser.
        return render_template("assignment.html", assignment=assignment, hit=hit, frame_url=frame,
                               frame_height=_frame_height(hit),
                               seconds_left=(assignment.deadline - now()).total_seconds())

    @app.get("/assignments/<assignment_id>/status")
    def assignment_status(assignment_id: str) -> Any:
        assignment = own_assignment(assignment_id)
        return jsonify(assignment_id=assignment.assignment_id, status=assignment.status,
                       deadline=assignment.deadline.isoformat())

    @app.post("/assignments/<assignment_id>/return")
    def return_assignment(assignment_id: str) -> Any:
        own_assignment(assignment_id)
        side().return_assignment(assignment_id, worker_id=require_worker())
        return redirect(url_for("hits"), 303)

    return app


def _frame_height(hit: Any) -> int:
    """The ExternalQuestion's FrameHeight (0 means "fit the page" on MTurk; we use 800)."""
    found = FRAME_HEIGHT.search(hit.question or "")
    height = int(found.group(1)) if found else 600
    return min(max(height, 300), 2000) if height else 800
