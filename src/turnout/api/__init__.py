"""The JSON API at ``/api``: the contract scripts and the dashboard's pages share.

Scripts authenticate with ``Authorization: Bearer <token>``; pages with the session plus
the ``X-CSRFToken`` header. Errors are ``{"error": {"code", "message"}}`` with the right
4xx. Views parse input, call one service and return its result; no business rule is here.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint
from werkzeug.exceptions import HTTPException

from turnout.dashboard.auth import api_error, guard_request
from turnout.errors import TurnoutError

log = logging.getLogger("turnout.api")

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(guard_request)


@bp.errorhandler(TurnoutError)
def _turnout_error(exc: TurnoutError) -> Any:
    return api_error(exc.code, exc.message, exc.http_status, **(exc.detail or {}))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    code = (exc.name or "error").lower().replace(" ", "_")
    return api_error(code, exc.description or exc.name, exc.code or 400)


import turnout.api.scheduling  # noqa: E402,F401  (campaigns and tasks: registers their routes)
from turnout.api import actions, openapi, participants, single, views  # noqa: E402,F401  (registers the routes on bp)

__import__("turnout.api.reconciliation")  # issue 10: registers /api/reconciliation* (own line: merges cleanly)
__import__("turnout.api.accounts")  # Settings → Accounts: /api/accounts/, /api/tokens/ (own line)
__import__("turnout.api.tables")  # CSV twins of the Workers and HITs pages (own line)
