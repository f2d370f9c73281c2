"""`turnout db upgrade`: a fresh database, or one psiTurk 3.x made, to the current schema
without losing a row, on every backend.

The psiTurk database is built here the way psiTurk 3.3.1's models.py builds it: the
participant table's 18 columns with no secondary index, naive UTC datetimes, the amt_hit
and campaign tables, and rows in the states a running study leaves behind.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from servers import turnout_cli
from turnout.config import ConfigError
from turnout.db.engine import Database
from turnout.db.migrate import current_revision, head_revision, is_current, upgrade

PSITURK_COLUMNS = ["uniqueid", "assignmentid", "workerid", "hitid", "ipaddress", "browser", "platform",
                   "language", "cond", "counterbalance", "codeversion", "beginhit", "beginexp", "endhit",
                   "bonus", "status", "mode", "datastring"]


def datastring(trials: int, **extra: Any) -> str:
    uid = extra.pop("uid", "W:A")
    return json.dumps({
        "condition": 0, "counterbalance": 0, "assignmentId": uid.split(":")[1], "workerId": uid.split(":")[0],
        "hitId": "HITOLD", "currenttrial": trials, "bonus": 0, "useragent": "Mozilla/5.0", "mode": "live",
        "data": [{"uniqueid": uid, "current_trial": i, "dateTime": 1564425799481 + i,
                  "trialdata": {"phase": "TEST", "rt": 500 + i}} for i in range(trials)],
        "questiondata": {"engagement": "5"},
        "eventdata": [{"eventtype": "initialized", "value": None, "timestamp": 1564425799000, "interval": 0}],
        **extra})


T0 = datetime(2024, 3, 1, 9, 30, 0)  # naive UTC, as psiTurk stored it
T1 = datetime(2024, 3, 1, 9, 35, 0)
T2 = datetime(2024, 3, 1, 10, 5, 0)

PSITURK_ROWS: list[dict[str, Any]] = [
    dict(uniqueid="WDONE:ADONE", assignmentid="ADONE", workerid="WDONE", hitid="HITOLD", ipaddress="10.0.0.1",
         browser="chrome", platform="windows", language="en-US", cond=1, counterbalance=0, codeversion="1.0",
         beginhit=T0, beginexp=T1, endhit=T2, bonus=0.42, status=5, mode="live",
         datastring=datastring(40, uid="WDONE:ADONE")),
    dict(uniqueid="WMID:AMID", assignmentid="AMID", workerid="WMID", hitid="HITOLD", ipaddress="10.0.0.2",
         browser="firefox", platform="macos", language="de", cond=0, counterbalance=0, codeversion="1.0",
         beginhit=T0, beginexp=T1, endhit=None, bonus=0.0, status=2, mode="live",
         datastring=datastring(12, uid="WMID:AMID")),
    dict(uniqueid="WNEW:ANEW", assignmentid="ANEW", workerid="WNEW", hitid="HITOLD", ipaddress="UNKNOWN",
         browser="UNKNOWN", platform="UNKNOWN", language="UNKNOWN", cond=1, counterbalance=0, codeversion="1.0",
         beginhit=T0, beginexp=None, endhit=None, bonus=0.0, status=1, mode="live", datastring=None),
    dict(uniqueid="WNULL:ANULL", assignmentid="ANULL", workerid="WNULL", hitid="HITOLD2", ipaddress="10.0.0.4",
         browser="safari", platform="ios", language="fr", cond=0, counterbalance=0, codeversion="0.9",
         beginhit=T0, beginexp=T1, endhit=None, bonus=0.0, status=6, mode="sandbox", datastring="null"),
    dict(uniqueid="debugAB12CD:debugEF34GH", assignmentid="debugEF34GH", workerid="debugAB12CD",
         hitid="debugIJ56KL", ipaddress="127.0.0.1", browser="chrome", platform="linux", language="en",
         cond=0, counterbalance=0, codeversion="1.0", beginhit=T0, beginexp=T1, endhit=T2, bonus=0.0,
         status=3, mode="debug", datastring=datastring(3, uid="debugAB12CD:debugEF34GH", big="é" * 70_000)),
]


def build_psiturk_database(url: str, table: str = "assignments") -> None:
    """Create the tables psiTurk 3.3.1 creates with ``create_all``, and fill them."""
    metadata = sa.MetaData()
    long_text = sa.Text().with_variant(sa.Text(4294967295), "mysql", "mariadb")
    participants = sa.Table(
        table, metadata,
        sa.Column("uniqueid", sa.String(128), primary_key=True),
        sa.Column("assignmentid", sa.String(128), nullable=False),
        sa.Column("workerid", sa.String(128), nullable=False),
        sa.Column("hitid", sa.String(128), nullable=False),
        sa.Column("ipaddress", sa.String(128)), sa.Column("browser", sa.String(128)),
        sa.Column("platform", sa.String(128)), sa.Column("language", sa.String(128)),
        sa.Column("cond", sa.Integer), sa.Column("counterbalance", sa.Integer),
        sa.Column("codeversion", sa.String(128)),
        sa.Column("beginhit", sa.DateTime), sa.Column("beginexp", sa.DateTime), sa.Column("endhit", sa.DateTime),
        sa.Column("bonus", sa.Float, default=0), sa.Column("status", sa.Integer, default=1),
        sa.Column("mode", sa.String(128)),
        sa.Column("datastring", long_text),
    )
    hits = sa.Table("amt_hit", metadata, sa.Column("hitid", sa.String(128), primary_key=True))
    campaigns = sa.Table(
        "campaign", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("codeversion", sa.String(128), nullable=False), sa.Column("mode", sa.String(128), nullable=False),
        sa.Column("goal", sa.Integer, nullable=False), sa.Column("minutes_between_rounds", sa.Integer, nullable=False),
        sa.Column("assignments_per_round", sa.Integer, nullable=False),
        sa.Column("hit_reward", sa.Float, nullable=False), sa.Column("hit_duration_hours", sa.Float, nullable=False),
        sa.Column("is_active", sa.Boolean, default=True), sa.Column("created", sa.DateTime),
        sa.Column("ended", sa.DateTime),
    )
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(participants.insert(), PSITURK_ROWS)
            conn.execute(hits.insert(), [{"hitid": "HITOLD"}, {"hitid": "HITOLD2"}])
            conn.execute(campaigns.insert(), [dict(codeversion="1.0", mode="live", goal=100, minutes_between_rounds=30,
                                                   assignments_per_round=9, hit_reward=1.5, hit_duration_hours=1.0,
                                                   is_active=False, created=T0, ended=T2)])
    finally:
        engine.dispose()


def snapshot(url: str, table: str = "assignments") -> dict[str, Any]:
    """Every psiTurk column of every row, plus the other psiTurk tables, read with plain SQL."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            t = sa.Table(table, sa.MetaData(), autoload_with=conn)
            rows = conn.execute(sa.select(*[t.c[c] for c in PSITURK_COLUMNS]).order_by(t.c.uniqueid)).all()
            hits = conn.execute(sa.text("SELECT hitid FROM amt_hit ORDER BY hitid")).all()
            campaigns = conn.execute(sa.text("SELECT id, goal, is_active FROM campaign")).all()
        return {"rows": [dict(r._mapping) for r in rows], "hits": [tuple(h) for h in hits],
                "campaigns": [tuple(c) for c in campaigns]}
    finally:
        engine.dispose()


def index_columns(url: str, table: str) -> set[tuple[str, ...]]:
    engine = sa.create_engine(url)
    try:
        return {tuple(ix["column_names"]) for ix in sa.inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


@pytest.fixture
def database(make_settings, database_url: str) -> Any:
    settings = make_settings(database_url)
    db = Database(settings.database_url, settings.tables)
    yield db
    db.dispose()


def naive_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["uniqueid"])


# --- a fresh database --------------------------------------------------------------------


def test_fresh_database_upgrades_to_head_with_every_table_and_index(database, database_url: str) -> None:
    assert current_revision(database) is None
    upgrade(database)
    assert current_revision(database) == head_revision(database)
    inspector = sa.inspect(database.engine)
    tables = set(inspector.get_table_names())
    assert {"assignments", "amt_hit", "turnout_status_transition"} <= tables
    columns = [c["name"] for c in inspector.get_columns("assignments")]
    assert columns[:18] == PSITURK_COLUMNS
    assert {"turnout_token", "turnout_trials"} <= set(columns)
    indexed = index_columns(database_url, "assignments")
    assert {("workerid",), ("assignmentid",), ("hitid",),
            ("codeversion", "mode", "status", "cond", "counterbalance", "beginhit")} <= indexed


def test_second_upgrade_changes_nothing(database) -> None:
    upgrade(database)
    before = sa.inspect(database.engine).get_indexes("assignments")
    upgrade(database)
    assert is_current(database)
    assert sa.inspect(database.engine).get_indexes("assignments") == before


def test_app_refuses_a_database_that_is_not_upgraded(make_settings, database_url: str) -> None:
    from turnout.app import create_app

    build_psiturk_database(database_url)
    settings = make_settings(database_url)
    with pytest.raises(ConfigError, match="turnout db upgrade"):
        create_app(settings)


# --- a psiTurk 3.x database ------------------------------------------------------------------


def test_psiturk_database_keeps_every_row_and_value(database, database_url: str) -> None:
    build_psiturk_database(database_url)
    assert index_columns(database_url, "assignments") == set()  # as psiTurk left it
    before = snapshot(database_url)
    upgrade(database)
    after = snapshot(database_url)
    assert naive_rows(after["rows"]) == naive_rows(before["rows"])
    assert after["hits"] == [("HITOLD",), ("HITOLD2",)]
    assert after["campaigns"] == before["campaigns"]
    assert len(after["rows"]) == len(PSITURK_ROWS)
    assert is_current(database)


def test_psiturk_database_gains_turnouts_columns_and_indexes(database, database_url: str) -> None:
    build_psiturk_database(database_url)
    upgrade(database)
    inspector = sa.inspect(database.engine)
    columns = {c["name"] for c in inspector.get_columns("assignments")}
    assert {"turnout_token", "turnout_trials"} <= columns
    assert ("workerid",) in index_columns(database_url, "assignments")
    assert "turnout_status_transition" in inspector.get_table_names()


def test_upgrade_of_a_psiturk_database_is_idempotent(database, database_url: str) -> None:
    build_psiturk_database(database_url)
    upgrade(database)
    first = snapshot(database_url)
    upgrade(database)
    assert snapshot(database_url) == first


def test_cli_db_upgrade_migrates_a_psiturk_database(project_dir: Path, database_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    build_psiturk_database(database_url)
    before = snapshot(database_url)
    monkeypatch.setenv("TURNOUT_DATABASE_URL", database_url)
    result = turnout_cli(project_dir, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "upgraded from schema none to" in result.output
    assert naive_rows(snapshot(database_url)["rows"]) == naive_rows(before["rows"])
    again = turnout_cli(project_dir, "db", "upgrade")
    assert again.exit_code == 0 and "already at schema" in again.output


def test_psiturk_participants_carry_on_after_the_upgrade(make_app, database_url: str, make_participant,
                                                          read_row, clock) -> None:
    build_psiturk_database(database_url)
    app = make_app(database_url)  # make_app upgrades first
    done = read_row(app, "WDONE:ADONE")
    assert done.beginhit == T0.replace(tzinfo=UTC)  # naive UTC reads back as aware UTC
    assert done.bonus == pytest.approx(0.42) and done.status == 5

    # A participant in the middle of the task (no token: psiTurk issued none) keeps going.
    mid = make_participant(app, worker="WMID", assignment="AMID", hit="HITOLD", mode="live")
    assert len(mid.load().json["data"]) == 12
    assert mid.save(11).status_code == 409  # the stale-save guard covers old rows too
    assert mid.save(13).status_code == 200
    assert mid.complete().status_code == 200
    finished = read_row(app, "WMID:AMID")
    assert finished.status == 3 and finished.endhit == clock.now()

    # Restarting is still refused, and a paid participant sees the submit page again.
    assert b"<b>Error</b>: 1008" in mid.open_exp().data
    paid = make_participant(app, worker="WDONE", assignment="ADONE", hit="HITOLD", mode="live")
    assert b'id="mturk_form"' in paid.ad().data
    assert paid.complete().status_code == 200
    assert read_row(app, "WDONE:ADONE").status == 5

    # psiTurk's "null" datastring falls back to the column fields.
    broken = make_participant(app, worker="WNULL", assignment="ANULL", hit="HITOLD2", mode="sandbox")
    assert broken.load().json == {"assignmentId": "ANULL", "bonus": 0.0, "condition": 0, "counterbalance": 0,
                                  "hitId": "HITOLD2", "workerId": "WNULL"}


def test_psiturk_database_with_a_custom_table_name(make_settings, database_url: str, project_dir: Path) -> None:
    build_psiturk_database(database_url, table="StroopStudy")
    before = snapshot(database_url, "StroopStudy")
    settings = make_settings(database_url, assignments_table_name="StroopStudy")
    db = Database(settings.database_url, settings.tables)
    try:
        upgrade(db)
        assert naive_rows(snapshot(database_url, "StroopStudy")["rows"]) == naive_rows(before["rows"])
        assert ("workerid",) in index_columns(database_url, "StroopStudy")
        assert is_current(db)
    finally:
        db.dispose()


def test_longest_allowed_table_name_upgrades_twice(make_settings, database_url: str) -> None:
    name = "s" * 40  # the longest name config.py accepts
    settings = make_settings(database_url, table_name=name)
    db = Database(settings.database_url, settings.tables)
    try:
        upgrade(db)
        upgrade(db)
        assert is_current(db)
        # workerid, assignmentid, hitid, balance, recent, newest (0007)
        assert len({tuple(ix["column_names"]) for ix in sa.inspect(db.engine).get_indexes(name)}) == 6
    finally:
        db.dispose()


def test_two_studies_share_one_database_with_separate_schema_versions(make_settings, database_url: str) -> None:
    first = make_settings(database_url, table_name="study_one")
    second = make_settings(database_url, table_name="study_two")
    one, two = Database(first.database_url, first.tables), Database(second.database_url, second.tables)
    try:
        upgrade(one)
        assert is_current(one) and not is_current(two)
        upgrade(two)
        assert is_current(two)
    finally:
        one.dispose()
        two.dispose()
