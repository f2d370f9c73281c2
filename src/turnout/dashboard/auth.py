"""Authentication, roles and CSRF for the dashboard and the API, reusable by any blueprint.

Another blueprint (campaigns, tasks) protects its views the same way::

    from turnout.dashboard.auth import require_role

    @bp.post("/api/campaigns/")
    @require_role("payer")
    def create_campaign(): ...

``require_role`` answers an API request (a path under ``/api/``) with 401/403 JSON and a
page request with a redirect to the login page (or a 403 page). Every state-changing
request made with the session cookie must carry the CSRF token (form field
``csrf_token`` or header ``X-CSRFToken``); requests with ``Authorization: Bearer`` carry
no cookie a browser could replay, so they are exempt.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from turnout.services import accounts
from turnout.services.accounts import Principal

F = TypeVar("F", bound=Callable[..., Any])
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_SESSION_KEY = "csrf"
CSRF_HEADER = "X-CSRFToken"


def is_api_request() -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def api_error(code: str, message: str, status: int, **detail: Any) -> Response:
    """The API's error shape: ``{"error": {"code", "message"}}`` with the given status."""
    from flask import jsonify

    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if detail:
        body["error"]["detail"] = detail
    response = jsonify(body)
    response.status_code = status
    return response


def _page_error(message: str, status: int) -> Response:
    from flask import render_template

    return Response(render_template("dashboard/error.html", message=message, status=status), status,
                    mimetype="text/html")


def csrf_token() -> str:
    """This session's CSRF token (made on first use); pages put it in ``<meta name="csrf-token">``."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def csrf_ok() -> bool:
    expected = session.get(CSRF_SESSION_KEY)
    offered = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token") or ""
    return isinstance(expected, str) and hmac.compare_digest(expected.encode(), offered.encode())


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def current_principal() -> Principal | None:
    """Who is calling: a bearer token or the session's account; None if neither holds."""
    if "principal" in g:
        return g.principal  # type: ignore[no-any-return]
    state = current_app.extensions["turnout.dashboard"]
    token = bearer_token()
    if token is not None:
        found = accounts.principal_for_token(state.db, token, clock=state.clock)
        g.principal_via = "token"
    else:
        data = session.get("auth")
        found = accounts.load_principal(state.db, state.settings, data) if isinstance(data, dict) else None
        g.principal_via = "session"
    g.principal = found
    return found


def login_session(principal: Principal) -> None:
    """Start a fresh session for ``principal`` (a new CSRF token too: no fixation)."""
    mode = session.get("mode")
    session.clear()
    session["auth"] = {"username": principal.username, "source": principal.source,
                       "fingerprint": principal.fingerprint}
    if mode:
        session["mode"] = mode
    session.permanent = False
    csrf_token()


def safe_next(target: str | None, default: str) -> str:
    """Only a path of this site: ``/dashboard/x`` yes; ``//evil``, ``https://evil``, ``\\evil`` no."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")) \
            or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target


def guard_request() -> Response | None:
    """``before_request`` for the dashboard and API blueprints: CSRF on state changes made
    with the session. Authentication and roles are checked per view by ``require_role``."""
    if request.method in SAFE_METHODS:
        return None
    if bearer_token() is not None:
        return None
    signed_in = request.endpoint == "dashboard.login" or current_principal() is not None
    if signed_in and not csrf_ok():
        message = "missing or wrong CSRF token; reload the page and try again"
        if is_api_request() or request.is_json:
            return api_error("csrf_failed", message, 400)
        return _page_error(message, 400)
    return None


def require_role(role: str) -> Callable[[F], F]:
    """Refuse callers below ``role`` (viewer < payer < admin), checked on the server."""
    accounts.check_role(role)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal is None:
                if is_api_request():
                    return api_error("unauthorized", "sign in or send Authorization: Bearer <token>", 401)
                target = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for("dashboard.login", next=target))
            if not principal.can(role):
                message = f"this needs the {role} role; {principal.username} is a {principal.role}"
                if is_api_request():
                    return api_error("forbidden", message, 403)
                return _page_error(message, 403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def user_mode() -> str:
    """The caller's marketplace mode: their session's choice, else the project's launch_in_mode.
    Never process-wide (psiTurk wrote each request's mode into a global)."""
    state = current_app.extensions["turnout.dashboard"]
    mode = session.get("mode")
    if g.get("principal_via") == "token":
        mode = request.args.get("mode") or None
    return mode if mode in ("local", "sandbox", "live") else state.settings.default_mode


def install(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token
