"""psiTurk's models (``Participant``, ``Hit``, ``Base``), bound to the running server's database."""

from __future__ import annotations

from typing import Any

from turnout.compat import runtime
from turnout.compat.unsupported import cls

Campaign = cls("psiturk.models.Campaign",
               "turnout has no recruitment campaigns yet; post HITs with `turnout hit create`")


def object_as_dict(self: Any, filter_these: list[str] | None = None) -> dict[str, Any]:
    """A row's columns as a dict, less ``filter_these`` (every turnout model has this method)."""
    skip = set(filter_these or [])
    return {c.key: getattr(self, c.key) for c in self.__mapper__.column_attrs if c.key not in skip}


def __getattr__(name: str) -> Any:
    rt = runtime()
    db = rt.db
    models = db.models
    if name in ("Participant", "Hit", "Base"):
        from turnout.compat.psiturk.db import _with_query

        _with_query(db)
        return getattr(models, name)
    if name == "db_session":
        return db.session
    tables = {"ASSIGNMENTS_TABLENAME": db.tables.participants, "HITS_TABLENAME": db.tables.hits,
              "CAMPAIGNS_TABLENAME": db.tables.campaigns, "CODE_VERSION": rt.settings.codeversion}
    if name in tables:
        return tables[name]
    if name == "config":
        from turnout.compat.psiturk.psiturk_config import PsiturkConfig

        config = PsiturkConfig()
        config.load_config()
        return config
    raise AttributeError(name)
