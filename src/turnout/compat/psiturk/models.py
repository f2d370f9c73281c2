"""psiTurk's models (``Participant``, ``Hit``, ``Base``), bound to the running server's database."""

from __future__ import annotations

from typing import Any

from turnout.compat import runtime


def __getattr__(name: str) -> Any:
    db = runtime().db
    models = db.models
    if name in ("Participant", "Hit", "Base"):
        from turnout.compat.psiturk.db import _with_query

        _with_query(db)
        return getattr(models, name)
    if name == "db_session":
        return db.session
    raise AttributeError(name)
