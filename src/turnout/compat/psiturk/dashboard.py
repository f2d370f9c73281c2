"""``psiturk.dashboard``: psiTurk's web dashboard, which turnout does not serve (yet).

``login_required`` is mapped: project routes that psiTurk guarded with the dashboard
login are guarded here with HTTP Basic auth on the same ``login_username`` and
``login_pw`` (``psiturk.user_utils.PsiTurkAuthorization``), and, as there, the server
does not start when those are not set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from turnout.compat.unsupported import cls, function, module_getattr

INSTEAD = ("turnout has no web dashboard yet; use the `turnout hit` / `turnout worker` / "
           "`turnout mode` commands")
SESSION_SERVICES_MANAGER_MODE_KEY = "services_manager_mode"


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Guard ``view`` with the project's login (HTTP Basic auth here, a login form in psiTurk)."""
    from turnout.compat.psiturk.psiturk_config import PsiturkConfig
    from turnout.compat.psiturk.user_utils import PsiTurkAuthorization

    config = PsiturkConfig()
    config.load_config()
    return PsiTurkAuthorization(config).requires_auth(view)


DashboardUser = cls("psiturk.dashboard.DashboardUser", INSTEAD)
for _name in ("init_app", "load_user", "is_static_resource_call", "is_login_route", "try_amt_services_wrapper",
              "warn_if_scheduler_not_running", "before_request", "mode", "index", "hits_list",
              "assignments_list", "campaigns_list", "tasks_list", "login", "logout"):
    globals()[_name] = function(f"psiturk.dashboard.{_name}", INSTEAD)

__getattr__ = module_getattr("psiturk.dashboard", {"dashboard": INSTEAD, "login_manager": INSTEAD,
                                                   "myauth": INSTEAD, "config": INSTEAD})
