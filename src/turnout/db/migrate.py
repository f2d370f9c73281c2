"""Schema upgrades with Alembic, driven from Python (``turnout db upgrade``).

A project's table names come from its config, so the migration scripts read them from
``config.attributes["tables"]`` instead of hard-coding them. Each project (participant
table) keeps its own version table, so two studies may share one database as in psiTurk.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select

from turnout.db.engine import Database


def version_table(db: Database) -> str:
    return f"turnout_schema_{db.tables.participants}"[:64]


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("turnout.db").joinpath("migrations")))
    cfg.attributes["db"] = db
    cfg.attributes["tables"] = db.tables
    cfg.attributes["version_table"] = version_table(db)
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    with db.engine.begin() as connection:
        cfg = alembic_config(db)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    create_custom_tables(db)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": version_table(db)})
        return context.get_current_revision()


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


def is_current(db: Database) -> bool:
    return current_revision(db) == head_revision(db)


def managed_tables(db: Database) -> set[str]:
    from turnout.db.marketplace_models import MARKETPLACE_TABLES
    from turnout.db.models import TRANSITIONS_TABLE
    from turnout.db.scheduler_models import SCHEDULER_TABLES

    return {db.tables.participants, db.tables.hits, TRANSITIONS_TABLE, *MARKETPLACE_TABLES, *SCHEDULER_TABLES}


def create_custom_tables(db: Database) -> None:
    """Create tables that project code (custom.py) declared on ``Base``; ours are migrated."""
    managed = managed_tables(db)
    custom = [t for name, t in db.models.Base.metadata.tables.items() if name not in managed]
    if custom:
        db.models.Base.metadata.create_all(db.engine, tables=custom, checkfirst=True)


def backfill_hits(db: Database) -> int:
    """psiTurk's ``migrate db``: record every non-debug participant HIT id in the HIT table."""
    P, H = db.models.Participant, db.models.Hit
    with db.begin() as session:
        known = set(session.scalars(select(H.hitid)))
        found = set(session.scalars(select(P.hitid).where(~P.uniqueid.contains("debug")).distinct()))
        new = sorted(found - known)
        session.add_all(H(hitid=h) for h in new)
    return len(new)
