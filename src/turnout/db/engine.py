"""Engines and sessions for the three supported databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from turnout.config import TableNames
from turnout.db.models import Models, build_models
from turnout.errors import Unavailable

# Execution option asking SQLite for BEGIN IMMEDIATE: the write lock is taken at the start
# of the transaction, so a read-then-insert critical section cannot interleave.
IMMEDIATE = "turnout_begin_immediate"

# How long a SQLite writer waits for the database write lock before giving up (seconds).
SQLITE_BUSY_TIMEOUT_S = 30

# One queue per SQLite file and process for BEGIN IMMEDIATE transactions. SQLite waits for
# its write lock by sleeping and retrying (1, 2, 5 ... 100 ms), so writer threads that all
# wait inside SQLite leave the lock idle between sleeps, and whoever retries at the right
# moment wins: throughput drops and the latency tail grows with the number of waiters.
# Threads of one process queue here instead and get the lock handed straight over; only
# one connection per process polls SQLite against the other processes.
_sqlite_writers: dict[str, threading.Lock] = {}
_sqlite_writers_guard = threading.Lock()


class _SqliteWriterTurn:
    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock

    def __enter__(self) -> None:
        if not self.lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
            raise Unavailable("the database is busy with other writes; please retry")

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()


def _sqlite_writer_lock(url: str) -> threading.Lock | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    with _sqlite_writers_guard:
        return _sqlite_writers.setdefault(database, threading.Lock())


def make_engine(url: str, **kwargs: Any) -> Engine:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
                               **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event below decide how transactions start.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if make_url(url).database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
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
        # The request-scoped session that project code gets as psiTurk's ``db_session``.
        # Such code reads and then commits in one transaction; on SQLite that upgrade from
        # reader to writer fails at once ("database is locked") when another process wrote
        # in between, so its transactions take the write lock at BEGIN instead. psiTurk
        # left the session's autoflush off too.
        scoped_bind = (self.engine.execution_options(**{IMMEDIATE: True})
                       if self.engine.dialect.name == "sqlite" else self.engine)
        self.session = scoped_session(sessionmaker(bind=scoped_bind, autoflush=False, expire_on_commit=False))
        self._writer_lock = _sqlite_writer_lock(url) if self.backend == "sqlite" else None

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self, *, immediate: bool = False) -> Iterator[Session]:
        """A short session in one transaction, committed on success, rolled back on error.

        ``immediate`` marks a transaction that will write: on SQLite it takes the write lock
        at BEGIN (after queueing behind this process's other writers); elsewhere it is a no-op.
        """
        with self._writer_turn(immediate):
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

    def _writer_turn(self, immediate: bool) -> AbstractContextManager[Any]:
        if immediate and self._writer_lock is not None:
            return _SqliteWriterTurn(self._writer_lock)
        return nullcontext()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()
