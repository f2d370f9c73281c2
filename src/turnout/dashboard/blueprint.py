"""The dashboard's blueprint, with what every page shares (login guard, layout values,
the ``money`` filter). The page modules (views, scheduling, reconcile_views) add their
routes to it; ``turnout.dashboard.init_app`` imports them and registers it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from turnout.config import MODES
from turnout.dashboard.auth import current_principal, guard_request, user_mode
from turnout.dashboard.market import state
from turnout.services.participant_table import status_name

__all__ = ["MODES", "bp"]

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates",
               static_folder="static/dashboard", static_url_path="/static")
bp.before_request(guard_request)


@bp.context_processor
def _layout() -> dict[str, Any]:
    principal = current_principal()
    from flask import current_app

    return {"principal": principal, "mode": user_mode() if principal else None,
            "codeversion": state().settings.codeversion, "modes": MODES,
            "nav_endpoints": set(current_app.view_functions), "status_label": status_name}


@bp.app_template_filter("money")
def money(value: Any) -> str:
    """Dollars with cents and thousands separators: ``$1,234.50``; blank for None."""
    from decimal import Decimal, InvalidOperation

    if value is None or value == "":
        return ""
    try:
        return f"${Decimal(str(value)):,.2f}"
    except InvalidOperation:
        return str(value)
