"""The ``/api`` blueprint and its error handlers; the view modules add their routes to it
and ``turnout.api`` loads them all."""

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
