"""``db_session``, ``engine``, ``Base`` and ``init_db`` bound to the running server's database."""

from __future__ import annotations

from typing import Any

from turnout.compat import runtime


def init_db() -> None:
    """Create the tables that project code declared on ``Base`` (turnout's own are migrated)."""
    from turnout.db.migrate import create_custom_tables

    create_custom_tables(runtime().db)


def truncate_tables() -> None:
    raise RuntimeError("turnout never deletes participant data from project code; "
                       "drop the database yourself if you really mean it")


def migrate_db() -> str:
    from turnout.db.migrate import backfill_hits

    return f"{backfill_hits(runtime().db)} HIT ids copied from participants into the HIT table"


def _with_query(db: Any) -> Any:
    """psiTurk's ``Base.query``: every model (the project's own too) gets ``Model.query``."""
    base = db.models.Base
    if "query" not in base.__dict__:
        base.query = db.session.query_property()
    return base


def __getattr__(name: str) -> Any:
    db = runtime().db
    if name == "db_session":
        return db.session
    if name == "engine":
        return db.engine
    if name == "Base":
        return _with_query(db)
    if name == "DATABASE":
        return db.engine.url.render_as_string(hide_password=False)
    if name == "config":
        from turnout.compat.psiturk.psiturk_config import PsiturkConfig

        config = PsiturkConfig()
        config.load_config()
        return config
    raise AttributeError(name)
