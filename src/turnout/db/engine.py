"""Engines and sessions for the three supported databases."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
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

# Writes to one SQLite file from one process go through one shared connection and are
# committed in groups (``SqliteGroupWriter``). SQLite has a single write lock and, in WAL
# mode with synchronous=FULL, a commit costs an fsync (3-6 ms on this kind of disk) while
# the lock is held. Each writer on its own connection with BEGIN IMMEDIATE (the earlier
# design) paid one fsync per request and waited for the lock by sleeping and polling
# (1, 2, 5 ... 100 ms), so the lock sat idle between sleeps and the tail grew with the
# number of waiters. With the group writer, the threads that arrive while a commit is
# being synced run their statements one after another on the shared connection (each in
# its own SAVEPOINT, so a failing one rolls back alone), and the next commit makes all of
# them durable at once: one fsync per group, and no thread of this process ever polls.
# Every caller still returns only after its own writes are committed.
_writers_guard = threading.Lock()


class SqliteGroupWriter:
    """Write transactions of one process on one SQLite file, committed in groups."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pid = os.getpid()  # a forked child makes its own (see Database.begin)
        self.turn_lock = threading.Lock()  # who may use the connection now
        self.state = threading.Condition()  # guards the generation counters below
        self.conn: Connection | None = None
        self.generation = 0  # the number of the transaction that turns join now
        self.committed = -1  # every generation up to this one has ended
        self.committing = False
        self.failures: dict[int, BaseException] = {}

    @contextmanager
    def turn(self, sessionmaker: sessionmaker[Session]) -> Iterator[Session]:
        """A session on the shared transaction, in a savepoint; returns after the commit."""
        if not self.turn_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
            raise Unavailable("the database is busy with other writes; please retry")
        error: BaseException | None = None
        try:
            try:
                conn = self._connection()
            except Exception as exc:  # e.g. another process held the write lock too long
                raise Unavailable("the database is busy with other writes; please retry") from exc
            generation = self.generation
            session = sessionmaker(bind=conn, join_transaction_mode="create_savepoint")
            try:
                yield session
                session.commit()  # releases this turn's savepoint only
            except BaseException as exc:
                error = exc
                try:
                    session.rollback()  # back to this turn's savepoint (a failed flush did so already)
                except Exception as broken:
                    self._abandon(broken)
            finally:
                session.close()
        finally:
            self.turn_lock.release()
        self._wait_for_commit(generation)  # even after an error: the transaction must end
        if error is not None:
            raise error

    @contextmanager
    def turn_connection(self) -> Iterator[Connection]:
        """The shared connection for one write turn, without an ORM session; returns after the commit.

        The same turn as ``turn`` (one savepoint, rolled back alone on error, then the
        group commit), for callers that run Core statements only: the hot save path.
        A session per turn (its transaction objects, events and savepoint bookkeeping)
        cost more CPU than the save's own two statements.
        """
        if not self.turn_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
            raise Unavailable("the database is busy with other writes; please retry")
        error: BaseException | None = None
        try:
            try:
                conn = self._connection()
            except Exception as exc:  # e.g. another process held the write lock too long
                raise Unavailable("the database is busy with other writes; please retry") from exc
            generation = self.generation
            driver = conn.connection.driver_connection
            try:
                driver.execute("SAVEPOINT turnout_turn")
            except Exception as exc:  # the connection broke: this generation fails
                self._abandon(exc)
                raise Unavailable("the database could not start this write; please retry") from exc
            try:
                yield conn
                driver.execute("RELEASE SAVEPOINT turnout_turn")
            except BaseException as exc:
                error = exc
                try:
                    driver.execute("ROLLBACK TO SAVEPOINT turnout_turn")
                    driver.execute("RELEASE SAVEPOINT turnout_turn")
                except Exception as broken:
                    self._abandon(broken)
        finally:
            self.turn_lock.release()
        self._wait_for_commit(generation)  # even after an error: the transaction must end
        if error is not None:
            raise error

    def _connection(self) -> Connection:
        if self.conn is None:
            self.conn = self.engine.connect().execution_options(**{IMMEDIATE: True})
        if not self.conn.in_transaction():
            self.conn.begin()  # BEGIN IMMEDIATE: the only wait for other processes' writers
        return self.conn

    def _abandon(self, exc: BaseException) -> None:
        """The connection broke mid-transaction (turn_lock held): the open generation failed."""
        with self.state:
            self.failures[self.generation] = exc
        self.generation += 1
        if self.conn is not None:
            try:
                self.conn.invalidate()
                self.conn.close()
            except Exception:  # already broken
                pass
            self.conn = None

    def _wait_for_commit(self, generation: int) -> None:
        """Return once ``generation`` is committed, leading the commit if nobody is."""
        with self.state:
            while self.committed < generation and self.committing:
                self.state.wait()
            if self.committed >= generation:
                failure = self.failures.get(generation)
                if failure is not None:
                    raise Unavailable("the database could not commit this write; please retry") from failure
                return
            self.committing = True
        # Lead: commit everything written so far, other threads' turns included.
        with self.turn_lock:
            done = self.generation
            self.generation += 1
            try:
                if self.conn is not None and self.conn.in_transaction():
                    self.conn.commit()
            except BaseException as exc:
                self._abandon(exc)
                with self.state:
                    self.failures[done] = exc
        with self.state:
            self.committed = done
            self.committing = False
            for old in [g for g in self.failures if g < done - 1000]:
                del self.failures[old]
            self.state.notify_all()
        self._wait_for_commit(generation)  # committed >= generation now: report its outcome


class DriverStatement:
    """A Core statement that, on SQLite, runs straight through the driver.

    Compiled once to SQLite's SQL and parameter order; each run then costs the sqlite3
    call alone, not SQLAlchemy's per-execution work (cache lookup, parameter processing,
    events, result wrapping), which was most of what the participant save spent around
    its two statements. Only for statements whose values need no type conversion
    (strings and integers). On other databases it is ``conn.execute`` as usual.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._sqlite: tuple[str, tuple[str, ...]] | None = None

    def _driver(self, conn: Connection) -> tuple[Any, str, tuple[str, ...]] | None:
        if conn.dialect.name != "sqlite":
            return None
        if self._sqlite is None:
            compiled = self.statement.compile(dialect=conn.dialect)
            self._sqlite = (compiled.string, tuple(compiled.positiontup or ()))
        sql, names = self._sqlite
        return conn.connection.driver_connection, sql, names

    def first(self, conn: Connection, params: dict[str, Any]) -> Any:
        """The first row (a tuple), or None."""
        driver = self._driver(conn)
        if driver is None:
            return conn.execute(self.statement, params).first()
        raw, sql, names = driver
        return raw.execute(sql, [params[name] for name in names]).fetchone()

    def rowcount(self, conn: Connection, params: dict[str, Any]) -> int:
        """Run a write; the number of rows it matched."""
        driver = self._driver(conn)
        if driver is None:
            return conn.execute(self.statement, params).rowcount
        raw, sql, names = driver
        return raw.execute(sql, [params[name] for name in names]).rowcount


def _plain_savepoints(engine: Engine) -> None:
    """Send SAVEPOINT, RELEASE and ROLLBACK TO as plain SQL on this engine.

    SQLAlchemy compiles a new statement object for each of them every time; every write
    turn of the SQLite group writer takes a savepoint, and those compilations were a
    sixth of a save's CPU time. The names are SQLAlchemy's own (``sa_savepoint_N``).
    """
    dialect: Any = engine.dialect
    dialect.do_savepoint = lambda conn, name: conn.exec_driver_sql(f"SAVEPOINT {name}")
    dialect.do_release_savepoint = lambda conn, name: conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
    dialect.do_rollback_to_savepoint = lambda conn, name: conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")


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

        _plain_savepoints(engine)
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
        database = make_url(url).database if self.backend == "sqlite" else None
        self._sqlite_file = bool(database) and database != ":memory:" and not database.startswith("file:")
        self._writer: SqliteGroupWriter | None = None

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self, *, immediate: bool = False) -> Iterator[Session]:
        """A short session in one transaction, committed on success, rolled back on error.

        ``immediate`` marks a transaction that will write: on SQLite it takes the write lock
        at BEGIN (after queueing behind this process's other writers); elsewhere it is a no-op.
        """
        if immediate and self._sqlite_file:
            with self._group_writer().turn(self.sessionmaker) as session:
                yield session
            return
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

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection in one write transaction, committed on success, rolled back on error.

        ``begin(immediate=True)`` without the ORM session, for callers that run Core
        statements only (the participant save). On a SQLite file it is a turn of this
        process's group writer; elsewhere a pooled connection in its own transaction
        (SQLite in memory: BEGIN IMMEDIATE).
        """
        if self._sqlite_file:
            with self._group_writer().turn_connection() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            if self.backend == "sqlite":
                conn = conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                yield conn

    def _group_writer(self) -> SqliteGroupWriter:
        writer = self._writer
        if writer is None or writer.pid != os.getpid():  # none yet, or inherited through fork
            with _writers_guard:
                if self._writer is None or self._writer.pid != os.getpid():
                    self._writer = SqliteGroupWriter(self.engine)
                writer = self._writer
        return writer

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None and writer.conn is not None and writer.pid == os.getpid():
            with writer.turn_lock:
                writer.conn.close()
                writer.conn = None
        self.session.remove()
        self.engine.dispose()
