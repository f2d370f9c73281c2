"""``db_session``, ``engine``, ``Base`` and ``init_db`` bound to the running server's database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func

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


COMPLETED = (3, 4, 5, 7)


def _count_completed(cls: Any, codeversion: str, mode: str) -> int:
    """Participants of ``codeversion`` and ``mode`` who finished (statuses 3, 4, 5, 7)."""
    return int(cls.query.filter(cls.status.in_(COMPLETED), cls.codeversion == codeversion,
                                cls.mode == mode).with_entities(func.count()).scalar() or 0)


def _count_workers_grouped(cls: Any, query: Any = None, group_bys: list[str] | None = None) -> list[dict[str, Any]]:
    """Row counts grouped by ``group_bys`` (default codeversion, mode, status), one dict per group."""
    names = list(group_bys) if group_bys is not None else ["codeversion", "mode", "status"]
    columns = [getattr(cls, name) for name in names]
    query = query if query is not None else cls.query
    for column in columns:
        query = query.group_by(column).order_by(column.desc())
    return [dict(zip([*names, "count"], row, strict=True))
            for row in query.with_entities(*columns, func.count()).all()]


def _all_but_datastring(cls: Any) -> list[Any]:
    """Every participant's psiTurk columns except the data blob (turnout's own columns,
    the participant token among them, are left out too)."""
    columns = [c for c in cls.__table__.c if c.name != "datastring" and not c.name.startswith("turnout_")]
    return list(cls.query.with_entities(*columns).all())


def _with_query(db: Any) -> Any:
    """psiTurk's ``Base.query``: every model (the project's own too) gets ``Model.query``;
    ``Participant`` also gets psiTurk's class helpers (``count_completed`` and friends)."""
    base = db.models.Base
    if "query" not in base.__dict__:
        base.query = db.session.query_property()
    participant = db.models.Participant
    if "count_completed" not in participant.__dict__:
        participant.count_completed = classmethod(_count_completed)
        participant.count_workers_grouped = classmethod(_count_workers_grouped)
        participant.all_but_datastring = classmethod(_all_but_datastring)
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
