"""``turnout_cell_count`` (migration 0015): the per-cell counters the database keeps by
trigger equal a full recount after every kind of write, on every backend, and
counterbalancing answers exactly as it did when it counted the table."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from turnout.clock import ManualClock
from turnout.config import TableNames
from turnout.db import cell_counts
from turnout.db.engine import Database
from turnout.db.migrate import upgrade
from turnout.experiment import counterbalance

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _counters(db: Database) -> dict[Any, int]:
    with db.begin() as session:
        return cell_counts.read(session, db.models.CellCount, db.tables.participants)


def _recount(db: Database) -> dict[Any, int]:
    with db.begin() as session:
        return cell_counts.recount(session, db.models.Participant)


def _add(db: Database, n: int, rng: random.Random, prefix: str = "W") -> None:
    P = db.models.Participant
    with db.begin() as session:
        for i in range(n):
            session.add(P(uniqueid=f"{prefix}{i}:A", workerid=f"{prefix}{i}", assignmentid="A", hitid="H",
                          cond=rng.choice([0, 1, 2, None]), counterbalance=rng.choice([0, 1]),
                          status=rng.choice([1, 2, 3, 4, 5, 6, 7, None]), mode=rng.choice(["sandbox", "live"]),
                          codeversion=rng.choice(["1.0", "2.0", None]),
                          beginhit=NOW - timedelta(minutes=rng.choice([1, 5, 29, 31, 600]))))


@pytest.fixture
def db(shared_database_url: str) -> Any:
    database = Database(shared_database_url, TableNames())
    upgrade(database)
    try:
        yield database
    finally:
        database.dispose()


def test_counters_equal_a_full_recount_after_every_kind_of_write(db: Database) -> None:
    P = db.models.Participant
    rng = random.Random(8)
    _add(db, 40, rng)
    assert _counters(db) == _recount(db) and sum(_counters(db).values()) == 40
    with db.begin() as session:  # the ORM, as the state machine writes
        for p in session.scalars(sa.select(P).where(P.status == 2)):
            p.status = 3
        for p in session.scalars(sa.select(P).where(P.status == 3).limit(3)):
            p.status = 2  # psiTurk's /inexp after /complete goes back
    assert _counters(db) == _recount(db)
    with db.begin() as session:  # raw SQL that bypasses turnout: condition, mode and NULLs
        session.execute(sa.update(P).where(P.cond == 0).values(cond=1, counterbalance=None))
        session.execute(sa.update(P).where(P.mode == "live", P.status == 4).values(status=None, codeversion="3.0"))
        session.execute(sa.update(P).values(datastring="{}"))  # no key column: nothing moves
    assert _counters(db) == _recount(db)
    with db.begin() as session:
        session.delete(session.scalars(sa.select(P).limit(1)).one())
        session.execute(sa.delete(P).where(P.status.in_([5, 7])))
    assert _counters(db) == _recount(db)
    with db.begin() as session:
        session.execute(sa.delete(P))
    assert _counters(db) == {}


def test_counterbalancing_answers_as_the_full_count_did(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(12)
    _add(db, 60, rng)
    clock = ManualClock(NOW)
    with db.begin() as session:
        assert counterbalance.uses_counters(session, db.models.Participant)
        excluded = session.scalars(sa.select(db.models.Participant.uniqueid).limit(7)).all()
        for uid in excluded:  # reconciliation's exclusions are taken out either way
            session.add(db.models.Exclusion(study=db.tables.participants, uniqueid=uid, assignment_id="A",
                                            reason="test", actor="test", at=NOW))

    def counts() -> list[dict[Any, int]]:
        out = []
        with db.begin() as session:
            for cv in ("1.0", "2.0"):
                for mode in ("sandbox", "live"):
                    for cutoff in (0.5, 30, 100_000):
                        out.append(counterbalance.cell_counts(session, db.models.Participant, codeversion=cv,
                                                              mode=mode, cutoff_minutes=cutoff, clock=clock))
        return out

    with_counters = counts()
    monkeypatch.setattr(counterbalance, "uses_counters", lambda *a: False)
    by_scanning = counts()

    def nonzero(c: dict[Any, int]) -> dict[Any, int]:
        return {k: v for k, v in c.items() if v}

    assert [nonzero(c) for c in with_counters] == [nonzero(c) for c in by_scanning]
    assert any(sum(c.values()) for c in with_counters)


def test_tables_made_by_create_all_get_the_triggers_too(database_url: str) -> None:
    db = Database(database_url, TableNames(participants="made_by_create_all"))
    try:
        db.models.Base.metadata.create_all(db.engine)
        _add(db, 10, random.Random(1))
        assert _counters(db) == _recount(db) and sum(_counters(db).values()) == 10
    finally:
        db.dispose()


def test_upgrade_fills_the_counters_and_downgrade_removes_them(database_url: str) -> None:
    from alembic import command

    from turnout.db.migrate import alembic_config

    db = Database(database_url, TableNames())
    try:
        cfg = alembic_config(db)
        with db.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "0014")
        _add(db, 12, random.Random(3))  # rows written before the counters existed
        upgrade(db)
        assert _counters(db) == _recount(db) and sum(_counters(db).values()) == 12
        with db.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0014")
        assert cell_counts.TABLE not in sa.inspect(db.engine).get_table_names()
        _add(db, 3, random.Random(4), prefix="V")  # no trigger left behind
        upgrade(db)
        assert _counters(db) == _recount(db) and sum(_counters(db).values()) == 15
    finally:
        db.dispose()


VIEWS = [{}, {"codeversion": "*"}, {"complete": "true"}, {"mode": "live", "cond": "0,1"},
         {"status": "2,4", "codeversion": "2.0", "group_by": "cond,status"},
         {"group_by": "mode", "codeversion": "*", "complete": "true"}, {"q": "W1"}]


def test_dashboard_counts_are_those_of_the_table(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from turnout.services import participant_table, study_summary

    _add(db, 50, random.Random(80))

    def answers() -> list[Any]:
        views = [participant_table.query(db, participant_table.TableQuery.from_args(v, "1.0")) for v in VIEWS]
        return views + [study_summary.summary(db, codeversion=cv, mode=m) for cv in ("1.0", "2.0")
                        for m in ("live", "sandbox")]

    with_counters = answers()
    assert with_counters[0]["total"] > 0 and with_counters[4]["groups"]
    monkeypatch.setattr(cell_counts, "available", lambda *a: False)
    assert answers() == with_counters
