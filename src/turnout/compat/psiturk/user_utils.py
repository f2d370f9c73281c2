"""``nocache`` and ``PsiTurkAuthorization`` (HTTP Basic auth for a project's own routes)."""

from __future__ import annotations

import hmac
import logging
from functools import wraps
from typing import Any

from flask import Response, make_response, request

from turnout.compat.psiturk.psiturk_exceptions import PsiturkException


def print_to_log(stuff_to_print: Any) -> None:
    logging.getLogger("turnout.custom").info("%s", stuff_to_print)


def nocache(func: Any) -> Any:
    """Mark a view's response as not cacheable."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        response = make_response(func(*args, **kwargs))
        response.headers["Cache-Control"] = "no-cache"
        return response

    return wrapper


class PsiTurkAuthorization:
    def __init__(self, config: Any) -> None:
        self.queryname = config.get("Server Parameters", "login_username", fallback="")
        self.querypw = config.get("Server Parameters", "login_pw", fallback="")
        secret = config.get("Server Parameters", "secret_key", fallback="")
        if not (self.queryname and self.querypw and secret):
            raise PsiturkException(message="login_username, login_pw and secret_key must be set in "
                                           "[Server Parameters] to use PsiTurkAuthorization")

    def check_auth(self, username: str, password: str) -> bool:
        # Constant-time comparisons: psiTurk's plain == leaked timing.
        return (hmac.compare_digest(username.encode(), self.queryname.encode())
                & hmac.compare_digest(password.encode(), self.querypw.encode()))

    @staticmethod
    def authenticate() -> Response:
        return Response("This page needs a login.", 401,
                        {"WWW-Authenticate": 'Basic realm="Login Required"'})

    def requires_auth(self, func: Any) -> Any:
        @wraps(func)
        def decorated(*args: Any, **kwargs: Any) -> Any:
            auth = request.authorization
            if not auth or not self.check_auth(auth.username or "", auth.password or ""):
                return self.authenticate()
            return func(*args, **kwargs)

        return decorated
