"""The JSON API at ``/api``: the contract scripts and the dashboard's pages share.

Scripts authenticate with ``Authorization: Bearer <token>``; pages with the session plus
the ``X-CSRFToken`` header. Errors are ``{"error": {"code", "message"}}`` with the right
4xx. Views parse input, call one service and return its result; no business rule is here.
"""

from __future__ import annotations

from turnout.api import (  # noqa: F401
    accounts,
    actions,
    openapi,
    participants,
    reconciliation,
    scheduling,
    single,
    tables,
    views,
)
from turnout.api.blueprint import bp

# The view modules above add their routes to ``bp`` when imported; this is the one place
# they are loaded (a view module never imports this package).
__all__ = ["bp"]
