"""Write transactions (``Database.begin(immediate=True)``) under concurrency, on each database.

On a SQLite file they run on one shared connection per process and are committed in
groups (db/engine.py, ``SqliteGroupWriter``); these tests pin what every caller relies on,
whatever the backend: each successful write is stored and visible once ``begin`` returns,
a write that fails is rolled back alone (never taking writes of other threads in the
same group with it), and its exception reaches its own caller.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from sqlalchemy import func, select

from turnout.config import TableNames
from turnout.db.engine import Database
from turnout.db.migrate import upgrade

pytestmark = [pytest.mark.db]


class Refused(Exception):
    pass


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, TableNames())
    upgrade(database)
    yield database
    database.dispose()


def _row(db: Database, uniqueid: str) -> object:
    return db.models.Participant(uniqueid=uniqueid, assignmentid=uniqueid, workerid=uniqueid, hitid="H",
                                 cond=0, counterbalance=0, codeversion="1", mode="sandbox", status=1,
                                 beginhit=datetime(2026, 1, 1), trial_count=0)


def _stored(db: Database) -> set[str]:
    P = db.models.Participant
    with db.begin() as session:
        return set(session.scalars(select(P.uniqueid)))


def test_concurrent_writes_are_all_stored_and_failed_ones_alone_are_not(db: Database) -> None:
    start = threading.Barrier(12)

    def write(i: int) -> str:
        start.wait() if i < 12 else None
        try:
            with db.begin(immediate=True) as session:
                session.add(_row(db, f"u{i:03d}"))
                session.flush()
                if i % 3 == 0:
                    raise Refused(i)
        except Refused:
            return "refused"
        # Committed before begin() returned: a fresh session sees it.
        P = db.models.Participant
        with db.begin() as session:
            assert session.scalar(select(func.count()).where(P.uniqueid == f"u{i:03d}")) == 1
        return "stored"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(write, range(60)))
    assert outcomes.count("refused") == 20
    assert _stored(db) == {f"u{i:03d}" for i in range(60) if i % 3}


def test_an_error_at_commit_reaches_its_own_caller_only(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with db.begin(immediate=True) as session:
        session.add(_row(db, "taken"))
    with pytest.raises(IntegrityError), db.begin(immediate=True) as session:
        session.add(_row(db, "taken"))  # the duplicate key surfaces at flush, on leaving the block
    with db.begin(immediate=True) as session:
        session.add(_row(db, "next"))
    assert _stored(db) == {"taken", "next"}
