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


def activate(settings: Any, db: Any) -> None:
    """Bind the shim to a project's settings and database, and install the import hook."""
    global _runtime
    _runtime = Runtime(settings=settings, db=db)
    db.models.Participant.default_codeversion = settings.codeversion
    for name in [m for m in sys.modules if m == "psiturk" or m.startswith("psiturk.")]:
        module = sys.modules[name]
        if not getattr(module, "__name__", "").startswith(SHIM_PACKAGE):
            del sys.modules[name]  # an installed real psiTurk must not answer for us
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
