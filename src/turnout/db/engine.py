"""Engines and sessions for the three supported databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from turnout.config import TableNames
from turnout.db.models import Models, build_models

# Execution option asking SQLite for BEGIN IMMEDIATE: the write lock is taken at the start
# of the transaction, so a read-then-insert critical section cannot interleave.
IMMEDIATE = "turnout_begin_immediate"


def make_engine(url: str, **kwargs: Any) -> Engine:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event below decide how transactions start.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if make_url(url).database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get(IMMEDIATE)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_recycle": 3600, "pool_size": 10,
                               "max_overflow": 20}
    if backend in ("mysql", "mariadb"):
        # Counts taken under a lock must see rows committed by others since BEGIN.
        options["isolation_level"] = "READ COMMITTED"
    options.update(kwargs)
    return create_engine(url, **options)


class Database:
    """An engine, its models and a scoped session: one per app (and per psiTurk shim)."""

    def __init__(self, url: str, tables: TableNames, *, engine: Engine | None = None) -> None:
        self.url = url
        self.tables = tables
        self.engine = engine or make_engine(url)
        self.models: Models = build_models(tables)
        self.sessionmaker = sessionmaker(bind=self.engine, autoflush=False, expire_on_commit=False)
        self.session = scoped_session(self.sessionmaker)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self, *, immediate: bool = False) -> Iterator[Session]:
        """A short session in one transaction, committed on success, rolled back on error."""
        session = self.sessionmaker()
        try:
            if immediate:
                session.connection(execution_options={IMMEDIATE: True})
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()
