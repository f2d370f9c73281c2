"""``psiturk.api``: psiTurk's REST API blueprint (``/api``), which turnout does not serve.

The same actions are the ``turnout`` CLI's, and, from project code, the mapped
``psiturk.amt_services_wrapper.MTurkServicesWrapper``.
"""

from __future__ import annotations

from turnout.compat.unsupported import cls, module_getattr

INSTEAD = ("turnout serves no /api; use the `turnout hit` / `turnout worker` commands, or "
           "psiturk.amt_services_wrapper.MTurkServicesWrapper from project code")

_RESOURCES = ("CustomApi", "PsiturkJSONEncoder", "ServicesManager", "AssignmentList", "AssignmentsAction",
              "Hits", "HitList", "HitsAction", "Campaigns", "CampaignList", "Tasks", "TaskList")
for _name in _RESOURCES:
    globals()[_name] = cls(f"psiturk.api.{_name}", INSTEAD)

__getattr__ = module_getattr("psiturk.api", {
    "api_blueprint": INSTEAD, "api": INSTEAD, "handle_exception": INSTEAD, "output_json": INSTEAD,
    "before_request": INSTEAD})
