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


def __getattr__(name: str) -> Any:
    db = runtime().db
    if name == "db_session":
        return db.session
    if name == "engine":
        return db.engine
    if name == "Base":
        return db.models.Base
    raise AttributeError(name)
