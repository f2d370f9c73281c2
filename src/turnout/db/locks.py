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
        session = db.sessionmaker()
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        mysql_name = "turnout:" + hashlib.sha256(name.encode()).hexdigest()[:40]
        try:
            if backend == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            else:
                got = session.execute(text("SELECT GET_LOCK(:n, :t)"), {"n": mysql_name, "t": timeout_s}).scalar()
                if got != 1:
                    raise Unavailable("the server is busy assigning conditions; please retry")
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            if backend not in ("postgresql", "sqlite"):
                try:
                    session.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": mysql_name})
                    session.commit()
                except Exception:  # the connection may be gone; the lock dies with it
                    session.rollback()
            session.close()
