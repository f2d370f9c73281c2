"""Project code's ``db_session`` survives concurrent read-then-write requests on SQLite.

psiTurk-style custom routes (the example's /compute_bonus) read a row and then commit a
change in one transaction. On SQLite, with several server processes, that reader-to-writer
upgrade used to fail at once with "database is locked" whenever another process committed
in between; the compat session now takes the write lock when its transaction begins.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import sqlalchemy as sa

from servers import running_server

CUSTOM = '''
from flask import Blueprint, jsonify
from sqlalchemy import Column, Integer, String
from psiturk.db import Base, db_session, init_db

custom_code = Blueprint("custom_code", __name__)


class Counter(Base):
    __tablename__ = "custom_counter"
    id = Column(Integer, primary_key=True)
    name = Column(String(20), unique=True)
    value = Column(Integer, nullable=False, default=0)


init_db()


@custom_code.route("/bump/<name>", methods=["POST"])
def bump(name):
    row = Counter.query.filter(Counter.name == name).first()   # read ...
    if row is None:
        row = Counter(name=name, value=0)
        db_session.add(row)
    row.value += 1                                              # ... then write
    db_session.commit()
    return jsonify(value=row.value)
'''


def test_read_then_commit_in_custom_code_never_fails_under_concurrent_requests(project_dir: Path) -> None:
    (project_dir / "custom.py").write_text(CUSTOM)
    db_path = project_dir / "participants.db"
    env = {"TURNOUT_DATABASE_URL": f"sqlite:///{db_path}"}
    with running_server(project_dir, env=env, workers=3) as base:
        names = [f"c{i % 4}" for i in range(120)]
        with ThreadPoolExecutor(max_workers=24) as pool:
            statuses = list(pool.map(lambda n: requests.post(f"{base}/bump/{n}", timeout=60).status_code, names))
    assert statuses.count(200) == len(names), sorted(set(statuses))
    engine = sa.create_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT SUM(value) FROM custom_counter")).scalar()
    engine.dispose()
    assert total == len(names)


WRAPPING_COMPLETE = '''
from flask import Blueprint, request
from psiturk.db import db_session
from psiturk.experiment import debug_complete
from psiturk.models import Participant

custom_code = Blueprint("custom_code", __name__)


@custom_code.route("/complete")
def complete_and_note():
    # Reads through db_session (on SQLite its transaction holds the write lock), then
    # hands over to psiTurk's own /complete view, as Prolific-style projects do.
    who = Participant.query.filter(Participant.uniqueid == request.args["uniqueId"]).one()
    who.bonus = 0.5
    return debug_complete()
'''


def test_custom_route_that_queries_then_calls_the_complete_view_does_not_deadlock(
        project_dir: Path, make_app, sqlite_url, make_participant, read_row) -> None:
    (project_dir / "custom.py").write_text(WRAPPING_COMPLETE)
    app = make_app(sqlite_url)
    p = make_participant(app)
    p.open_exp()
    response = p.complete()
    assert response.status_code == 200
    stored = read_row(app, p.uniqueid)
    assert (stored.status, stored.bonus) == (3, 0.5)
