"""psiTurk's models (``Participant``, ``Hit``, ``Base``), bound to the running server's database."""

from __future__ import annotations

from typing import Any

from turnout.compat import runtime


def __getattr__(name: str) -> Any:
    db = runtime().db
    models = db.models
    if name in ("Participant", "Hit", "Base"):
        cls = getattr(models, name)
        if not hasattr(cls, "query"):
            cls.query = db.session.query_property()  # psiTurk's Model.query
        return cls
    if name == "db_session":
        return db.session
    raise AttributeError(name)
