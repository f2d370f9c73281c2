"""Named locks held for one transaction, on each supported database.

Counterbalancing reads counts and then inserts; two first visits at once must not both
see the same counts. PostgreSQL gets a transaction-scoped advisory lock, MariaDB/MySQL a
named lock released after the transaction ends, and SQLite takes its database write lock
at BEGIN (``BEGIN IMMEDIATE``), which serialises writers across processes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

from turnout.db.engine import Database
from turnout.errors import Unavailable

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(name: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(name, threading.Lock())


@contextmanager
def locked_session(db: Database, name: str, timeout_s: int = 20) -> Iterator[Session]:
    """Yield a session whose transaction holds the lock ``name``; commit on success."""
    # Threads of one process queue here first, so they do not all wait inside the database.
    with _process_lock(f"{db.url}|{name}"):
        backend = db.backend
        if backend == "sqlite":
            with db.begin(immediate=True) as session:
                yield session
            return
        if backend == "postgresql":
            # Transaction-scoped: released by the session's own COMMIT or ROLLBACK. Scoped to
            # the schema, so studies in other schemas of one database do not wait on each other.
            with db.begin() as session:
                schema = session.execute(text("SELECT current_schema()")).scalar() or ""
                digest = hashlib.sha256(f"{schema}|{name}".encode()).digest()
                key = int.from_bytes(digest[:8], "big", signed=True)
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                yield session
            return
        # MariaDB/MySQL named locks belong to the connection, not the transaction, so take,
        # use and release the lock on one connection. (Releasing it through a session after
        # COMMIT ran on whichever pooled connection came next, and the lock stayed held.)
        with db.engine.connect() as conn:
            # Named locks are server-wide: scope the name to this database, or every study
            # on the server would queue behind every other study's first visits.
            schema = conn.execute(text("SELECT DATABASE()")).scalar() or ""
            mysql_name = "turnout:" + hashlib.sha256(f"{schema}|{name}".encode()).hexdigest()[:40]
            got = conn.execute(text("SELECT GET_LOCK(:n, :t)"), {"n": mysql_name, "t": timeout_s}).scalar()
            conn.commit()
            if got != 1:
                raise Unavailable("the server is busy assigning conditions; please retry")
            try:
                session = db.sessionmaker(bind=conn)
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
                finally:
                    session.close()
            finally:
                try:
                    conn.rollback()
                    conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": mysql_name})
                    conn.commit()
                except Exception:  # the connection is broken; the lock dies with it
                    conn.invalidate()
