"""The ``psiturk`` import surface that real psiTurk projects' custom.py files rely on.

Project code does ``from psiturk.db import db_session`` and friends at import time. While a
turnout server runs a project, an import hook maps ``psiturk`` and ``psiturk.<module>`` to
``turnout.compat.psiturk.<module>``, which hand out the server's own session, models and
configuration. Nothing is written into site-packages, so an installed psiTurk is untouched;
in a turnout server process the shim simply takes precedence.

The shim is inherently global (psiTurk's API is), so that global lives here and nowhere
else: ``activate`` binds it to one running project.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

SHIM_PACKAGE = "turnout.compat.psiturk"


@dataclass
class Runtime:
    settings: Any
    db: Any
    app: Any = None    # the Flask app being built or served (psiTurk's ``psiturk.experiment.app``)
    clock: Any = None  # the server's clock, for the marketplace calls project code makes


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the psiturk compatibility layer is used outside a running turnout project")
    return _runtime


class _PsiturkAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve ``psiturk[.x]`` to the shim module of the same name."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "psiturk" and not fullname.startswith("psiturk."):
            return None
        real = SHIM_PACKAGE + fullname[len("psiturk"):]
        if importlib.util.find_spec(real) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=fullname == "psiturk")

    def create_module(self, spec: Any) -> ModuleType:
        return importlib.import_module(SHIM_PACKAGE + spec.name[len("psiturk"):])

    def exec_module(self, module: ModuleType) -> None:  # the shim module is already executed
        return None


_finder = _PsiturkAlias()


def activate(settings: Any, db: Any, *, app: Any = None, clock: Any = None) -> None:
    """Bind the shim to a project's settings, database, app and clock, and install the import hook.

    The app exists before custom.py is imported, because psiTurk's did: project code does
    ``from psiturk.experiment import app`` at import time.
    """
    global _runtime
    _runtime = Runtime(settings=settings, db=db, app=app, clock=clock)
    db.models.Participant.default_codeversion = settings.codeversion
    for name in [m for m in sys.modules if m == "psiturk" or m.startswith("psiturk.")]:
        module = sys.modules[name]
        if not getattr(module, "__name__", "").startswith(SHIM_PACKAGE):
            del sys.modules[name]  # an installed real psiTurk must not answer for us
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


# psiTurk's endpoint names (its views were on the app itself), with the URL variables its
# rules used where they differ from turnout's. ``static`` is Flask's own endpoint on both.
PSITURK_ENDPOINTS: dict[str, tuple[str, dict[str, str]]] = {
    name: (f"experiment.{name}", {}) for name in (
        "index", "favicon", "psiturk_js", "check_worker_status", "advertisement", "give_consent",
        "start_exp", "enterexp", "quitter", "debug_complete", "worker_complete", "worker_submitted",
        "regularpage")
}
PSITURK_ENDPOINTS["load"] = ("experiment.load", {"uid": "uniqueid"})
PSITURK_ENDPOINTS["update"] = ("experiment.update", {"uid": "uniqueid"})


def install_psiturk_app_surface(app: Any) -> None:
    """Let ``url_for`` build URLs from psiTurk's endpoint names (``url_for('start_exp')``),
    and give the app psiTurk's ``apscheduler`` attribute (a clear error when used).

    turnout's views live on the ``experiment`` blueprint, so their endpoints are
    ``experiment.start_exp`` and so on. Rather than register every route twice, a URL
    build error handler answers psiTurk's bare names. It is consulted only when the name
    is not an endpoint of the app, so an endpoint the project defines itself with one of
    these names (``app.add_url_rule(..., endpoint='load')`` in ``init_app``) still wins.
    """
    from flask import url_for

    from turnout.compat.unsupported import UnsupportedObject

    # psiTurk hung its APScheduler on the app; turnout runs none.
    app.apscheduler = UnsupportedObject(
        "app.apscheduler", "turnout runs no scheduler; run `turnout worker approve --all` from cron or a timer")

    def psiturk_endpoint(error: Exception, endpoint: str, values: dict[str, Any]) -> str | None:
        target = PSITURK_ENDPOINTS.get(endpoint)
        if target is None or endpoint in app.view_functions:
            return None
        name, renames = target
        args = {renames.get(key, key): value for key, value in values.items()}
        return url_for(name, **args)

    app.url_build_error_handlers.append(psiturk_endpoint)
