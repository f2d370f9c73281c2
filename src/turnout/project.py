"""A psiTurk-format project folder: templates/, static/, custom.py and conditions.json."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from turnout.config import ConfigError

log = logging.getLogger("turnout.project")

# Pages the participant flow cannot work without. psiTurk checked only the last two at
# start-up; a project missing the first three failed later, in front of a participant.
REQUIRED_TEMPLATES = ("ad.html", "consent.html", "exp.html", "thanks-mturksubmit.html", "closepopup.html")


class ProjectError(ConfigError):
    """The project folder cannot be served as it is; the message names the file and the fix."""


@dataclass
class Project:
    root: Path
    conditions: list[str] | None = None
    custom_module: ModuleType | None = None
    custom_error: str | None = field(default=None, repr=False)

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def static_dir(self) -> Path:
        return self.root / "static"

    @property
    def custom_blueprint(self) -> Any | None:
        return getattr(self.custom_module, "custom_code", None) if self.custom_module else None

    @property
    def custom_init_app(self) -> Any | None:
        return getattr(self.custom_module, "init_app", None) if self.custom_module else None

    @property
    def custom_get_condition(self) -> Any | None:
        return getattr(self.custom_module, "custom_get_condition", None) if self.custom_module else None


def check_templates(root: Path) -> None:
    templates = root / "templates"
    if not templates.is_dir():
        raise ProjectError(f"{templates}: the project has no templates/ folder "
                           "(is this a psiTurk project? `turnout init DIR` makes a new one)")
    missing = [name for name in REQUIRED_TEMPLATES if not (templates / name).is_file()]
    if missing:
        raise ProjectError(f"{templates}: missing required template(s) {', '.join(missing)} "
                           "(copy them from a project made by `turnout init`)")


def load_conditions(root: Path) -> list[str] | None:
    """psiTurk's conditions.json: its keys name the conditions and override num_conds."""
    path = root / "conditions.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise ProjectError(f"{path}: must be a non-empty JSON object whose keys name the conditions")
    return list(data)


def forget_project_modules(root: Path) -> None:
    """Drop custom.py and every module imported from the project folder.

    An app may be built twice in one process (``turnout serve`` checks custom.py in the
    parent before the workers build theirs); the project's helper modules must then be
    imported afresh, or their models stay bound to the first build's database session.
    """
    # Project modules are imported through the sys.path entry import_custom adds, so their
    # __file__ starts with that folder. A string test, not Path.resolve() on each of the
    # hundreds of loaded modules (that cost a third of a second per app build).
    prefixes = tuple({str(root) + os.sep, str(root.resolve()) + os.sep})
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if name == "custom" or (isinstance(filename, str) and filename.startswith(prefixes)):
            del sys.modules[name]


def import_custom(root: Path) -> ModuleType | None:
    """Import the project's custom.py as the module ``custom``, as psiTurk does.

    A ModuleNotFoundError is logged and the server runs without custom code (psiTurk's
    behaviour, which projects that import an optional driver rely on); any other error
    stops start-up with the error shown.
    """
    path = root / "custom.py"
    if not path.is_file():
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    forget_project_modules(root)
    spec = importlib.util.spec_from_file_location("custom", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom"] = module
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        sys.modules.pop("custom", None)
        if (exc.name or "").split(".")[0] == "psiturk":
            # Under psiTurk a psiturk.* module always existed, so dropping custom.py here
            # would silently remove the project's routes; say what is missing instead.
            raise ProjectError(f"{path}: custom.py imports {exc.name}, which turnout does not provide; "
                               "please report it, or import what you need from elsewhere") from None
        log.warning("custom.py imports a module that is not installed (%s); running without custom.py", exc)
        return None
    except BaseException as exc:
        sys.modules.pop("custom", None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise custom_error(exc, path, "custom.py failed to import") from None
    return module


def custom_error(exc: BaseException, path: Path, what: str) -> ProjectError:
    """One line naming the custom.py line that raised, the error and its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f"{f.filename}:{f.lineno}" for f in reversed(frames) if f.filename == str(path)), str(path))
    first = (str(exc).splitlines() or [""])[0]
    return ProjectError(f"{where}: {what}: {exc.__class__.__name__}: {first}")


def load_project(root: Path, *, with_custom: bool = True) -> Project:
    check_templates(root)
    project = Project(root=root, conditions=load_conditions(root))
    if with_custom:
        project.custom_module = import_custom(root)
    return project
