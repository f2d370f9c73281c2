"""Errors as values with codes. Services raise these; the web layer maps them to 4xx."""

from __future__ import annotations

from typing import Any


class TurnoutError(Exception):
    """A failure the caller can act on. ``code`` is stable; ``message`` is for people."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


class InvalidInput(TurnoutError):
    code = "invalid_input"
    http_status = 400


class Forbidden(TurnoutError):
    code = "forbidden"
    http_status = 403


class NotFound(TurnoutError):
    code = "not_found"
    http_status = 404


class Conflict(TurnoutError):
    code = "conflict"
    http_status = 409


class PayloadTooLarge(TurnoutError):
    code = "payload_too_large"
    http_status = 413


class Unavailable(TurnoutError):
    code = "unavailable"
    http_status = 503
