"""Shared fixtures: real databases (SQLite, PostgreSQL, MariaDB), projects, apps, clients.

The PostgreSQL and MariaDB servers on 127.0.0.1 are required: when one does not answer,
the tests that use it fail (they are never skipped), because CI must prove all three.

Test modules reach the helpers below through fixtures (``make_participant``, ``read_row``,
``force_status``, ``transitions``...), not through ``from conftest import``: another
folder's conftest.py (tests/js/) is also imported as ``conftest``, so that import resolves
to whichever was collected last.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from servers import copy_project, init_project, turnout_cli
from turnout.clock import ManualClock
from turnout.config import Settings, load_settings
from turnout.db.engine import Database
from turnout.db.migrate import upgrade

PG_ADMIN = os.environ.get("TURNOUT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN = os.environ.get("TURNOUT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")
BACKENDS = ("sqlite", "postgresql", "mariadb")

_ENV_PREFIXES = ("TURNOUT_", "PSITURK_")
_ENV_NAMES = ("PORT", "DATABASE_URL", "ON_CLOUD", "ON_HEROKU", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's environment or ~/.psiturkconfig."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PSITURK_GLOBAL_CONFIG_LOCATION", str(tmp_path_factory.mktemp("globalcfg")))


@pytest.fixture(autouse=True)
def _fresh_marketplaces() -> Iterator[None]:
    """Each test starts with no marketplace opened by the process-wide factory, and the
    offline marketplace threads a test's CLI calls or app started are stopped after it."""
    yield
    from turnout.marketplace import factory

    if factory.cached():
        factory.reset()


def _fresh_namespace(backend: str, tmp_path: Path) -> tuple[str, Any]:
    """A URL to an empty database of ``backend`` and a function that drops it."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'participants.db'}", lambda: None
    name = "t_" + uuid.uuid4().hex[:12]
    if backend == "postgresql":
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {name}"))
        url = f"{PG_ADMIN}?options=-csearch_path%3D{name}"

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
            admin.dispose()

        return url, drop
    admin = sa.create_engine(MARIADB_ADMIN)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    url = re.sub(r"/test$", f"/{name}", MARIADB_ADMIN)

    def drop_db() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()

    return url, drop_db


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each supported backend in turn."""
    url, drop = _fresh_namespace(request.param, tmp_path)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'participants.db'}"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A fresh copy of the small psiTurk-format test project."""
    return copy_project(tmp_path / "project")


@pytest.fixture
def new_project(tmp_path: Path) -> Path:
    """A new project as ``turnout init`` makes it (the Stroop example), in ``tmp_path/study``."""
    return init_project(tmp_path / "study")


@pytest.fixture
def cli(project_dir: Path):
    """``cli(*args, input=None, project=project_dir)``: the turnout CLI in-process, by
    default on the test project (``project=None``: no ``-C``)."""

    def run(*args: str, input: str | None = None, project: Path | None = project_dir) -> Any:
        return turnout_cli(project, *args, input=input)

    return run


@pytest.fixture
def make_settings(project_dir: Path):
    def make(database_url: str | None = None, **env: str) -> Settings:
        environ = {f"TURNOUT_{k.upper()}": str(v) for k, v in env.items()}
        if database_url:
            environ["TURNOUT_DATABASE_URL"] = database_url
        environ["PSITURK_GLOBAL_CONFIG_LOCATION"] = str(project_dir / "no-global")
        return load_settings(project_dir, environ=environ)

    return make


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_app(make_settings, clock: ManualClock):
    """Build an upgraded database and an app for it; ``make_app(url, **config_overrides)``."""
    made: list[Database] = []

    def make(database_url: str | None = None, **env: str) -> Any:
        from turnout.app import create_app

        settings = make_settings(database_url, **env)
        db = Database(settings.database_url, settings.tables)
        upgrade(db)
        made.append(db)
        app = create_app(settings, db=db, clock=clock)
        app.config["TESTING"] = True
        return app

    yield make
    for db in made:
        db.dispose()




@pytest.fixture(scope="session")
def _shared_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One database per backend for the whole run, made on first use and dropped at the end.

    Creating a schema and running the migrations for every test costs more than the test;
    tests that need an empty or un-migrated database use ``database_url`` instead.
    """
    made: dict[str, str] = {}
    drops: list[Any] = []

    class Cache(dict):
        def __missing__(self, backend: str) -> str:
            url, drop = _fresh_namespace(backend, tmp_path_factory.mktemp(f"shared-{backend}"))
            drops.append(drop)
            self[backend] = url
            return url

    cache = Cache(made)
    yield cache
    for drop in drops:
        drop()


_DELETE_ORDER: dict[str, list[str]] = {}


def _empty_tables(url: str) -> None:
    """Delete every row (keeping the schema and its version stamp) after a test.

    Children before parents, so foreign keys between tables do not get in the way; the
    order is worked out once per database.
    """
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            order = _DELETE_ORDER.get(url)
            if order is None or set(order) != set(sa.inspect(conn).get_table_names()) - _versions(conn):
                metadata = sa.MetaData()
                metadata.reflect(conn)
                order = [t.name for t in reversed(metadata.sorted_tables) if not t.name.startswith("turnout_schema_")]
                _DELETE_ORDER[url] = order
            for table in order:
                conn.execute(sa.text(f"DELETE FROM {engine.dialect.identifier_preparer.quote(table)}"))
    finally:
        engine.dispose()


def _versions(conn: Any) -> set[str]:
    return {t for t in sa.inspect(conn).get_table_names() if t.startswith("turnout_schema_")}


@pytest.fixture(params=BACKENDS)
def shared_database_url(request: pytest.FixtureRequest, _shared_databases: dict[str, str]) -> Iterator[str]:
    """A migrated database on each backend in turn, emptied of rows after the test."""
    url = _shared_databases[request.param]
    try:
        yield url
    finally:
        _empty_tables(url)


@pytest.fixture
def shared_sqlite_url(_shared_databases: dict[str, str]) -> Iterator[str]:
    """The shared SQLite database alone, emptied of rows after the test (for a module that
    overrides ``shared_database_url`` to run on SQLite only)."""
    url = _shared_databases["sqlite"]
    try:
        yield url
    finally:
        _empty_tables(url)


@pytest.fixture(scope="session")
def _standard_apps() -> Iterator[dict[str, Any]]:
    apps: dict[str, Any] = {}
    yield apps
    for built in apps.values():
        built.extensions["turnout"].db.dispose()


def _standard_app(url: str, apps: dict[str, Any], factory: pytest.TempPathFactory, clock: ManualClock) -> Any:
    """The minimal project's app with the default configuration on ``url``, built once per
    run: building an app costs more than most tests. Each test gets its own clock, and the
    rows are deleted after it (``shared_database_url``), so tests stay independent.
    Tests that change the project or its configuration build their own with ``make_app``."""
    from turnout import compat
    from turnout.app import create_app

    built = apps.get(url)
    if built is None:
        project = copy_project(factory.mktemp("standard") / "project")
        settings = load_settings(project, environ={"TURNOUT_DATABASE_URL": url,
                                                   "PSITURK_GLOBAL_CONFIG_LOCATION": str(project / "no-global")})
        db = Database(settings.database_url, settings.tables)
        upgrade(db)
        built = create_app(settings, db=db, clock=clock)
        built.config["TESTING"] = True
        apps[url] = built
    ctx = built.extensions["turnout"]
    ctx.clock = clock
    # another test's app may have taken the psiturk shim
    compat.activate(ctx.settings, ctx.db, app=built, clock=clock)
    return built


@pytest.fixture
def app(_standard_apps: dict[str, Any], _shared_databases: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[Any]:
    """The test project's app on SQLite."""
    url = _shared_databases["sqlite"]
    try:
        yield _standard_app(url, _standard_apps, tmp_path_factory, clock)
    finally:
        _empty_tables(url)




@pytest.fixture
def db_app(_standard_apps: dict[str, Any], shared_database_url: str,
           tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Any:
    """The test project's app on each database backend in turn."""
    return _standard_app(shared_database_url, _standard_apps, tmp_path_factory, clock)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class Participant:
    """A browser-less participant: does what psiturk.js does, over the test client."""

    def __init__(self, client: Any, worker: str = "W1", assignment: str = "A1", hit: str = "H1",
                 mode: str = "sandbox") -> None:
        self.client, self.worker, self.assignment, self.hit, self.mode = client, worker, assignment, hit, mode
        self.uniqueid = f"{worker}:{assignment}"
        self.token: str | None = None
        self.exp_response: Any = None

    @property
    def ids(self) -> str:
        return f"hitId={self.hit}&assignmentId={self.assignment}&workerId={self.worker}&mode={self.mode}"

    def open_exp(self) -> Any:
        self.exp_response = self.client.get(f"/exp?{self.ids}")
        match = re.search(rb'name="turnout-participant-token" content="([^"]+)"', self.exp_response.data)
        self.token = match.group(1).decode() if match else None
        return self.exp_response

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Turnout-Token": self.token} if self.token else {}

    def save(self, trials: int, **extra: Any) -> Any:
        body = {"id": self.uniqueid, "workerId": self.worker, "assignmentId": self.assignment, "hitId": self.hit,
                "currenttrial": trials, "data": [
                    {"uniqueid": self.uniqueid, "current_trial": i, "dateTime": 1_700_000_000_000 + i,
                     "trialdata": {"phase": "TEST", "trial": i, "hit": i % 2 == 0}} for i in range(trials)],
                "questiondata": extra.pop("questiondata", {}), "eventdata": [
                    {"eventtype": "initialized", "value": None, "timestamp": 1, "interval": 0}], **extra}
        return self.client.put(f"/sync/{self.uniqueid}", json=body, headers=self.headers)

    def inexp(self) -> Any:
        return self.client.post("/inexp", data={"uniqueId": self.uniqueid}, headers=self.headers)

    def quitter(self) -> Any:
        return self.client.post("/quitter", data={"uniqueId": self.uniqueid}, headers=self.headers)

    def complete(self) -> Any:
        return self.client.get(f"/complete?uniqueId={self.uniqueid}&mode={self.mode}", headers=self.headers)

    def load(self) -> Any:
        return self.client.get(f"/sync/{self.uniqueid.replace(':', '%3A')}", headers=self.headers)

    def worker_complete(self) -> Any:
        return self.client.get(f"/worker_complete?uniqueId={self.uniqueid}", headers=self.headers)

    def worker_submitted(self) -> Any:
        return self.client.get(f"/worker_submitted?uniqueId={self.uniqueid}")

    def ad(self, **extra: str) -> Any:
        query = "&".join(f"{k}={v}" for k, v in extra.items())
        return self.client.get(f"/ad?{self.ids}" + (f"&{query}" if query else ""))


@pytest.fixture
def participant(client: Any) -> Participant:
    return Participant(client)


def row(app: Any, uniqueid: str) -> Any:
    """The participant's database row, read fresh."""
    db = app.extensions["turnout"].db
    with db.begin() as session:
        found = session.get(db.models.Participant, uniqueid)
        if found is not None:
            _ = found.datastring  # load the deferred column before the session closes
        return found


@pytest.fixture
def participant_cls() -> type[Participant]:
    """The Participant helper class itself, for tests that drive their own test client."""
    return Participant


@pytest.fixture
def make_participant():
    """``make_participant(app, worker=..., assignment=..., hit=..., mode=...)``: a new browser
    (its own cookie jar) that does what psiturk.js does."""

    def make(app: Any, **ids: str) -> Participant:
        return Participant(app.test_client(), **ids)

    return make


@pytest.fixture
def read_row():
    """``read_row(app, uniqueid)``: the participant row, read fresh (None if absent)."""
    return row


@pytest.fixture
def force_status():
    """``force_status(app, uniqueid, status)``: set a status directly, as the marketplace
    side (approve, bonus) or an old psiTurk would have left it; test set-up only."""

    def force(app: Any, uniqueid: str, status: int) -> None:
        db = app.extensions["turnout"].db
        P = db.models.Participant
        with db.begin() as session:
            session.execute(sa.update(P).where(P.uniqueid == uniqueid).values(status=status))

    return force


@pytest.fixture
def transitions():
    """``transitions(app, uniqueid)``: the recorded (old, new, reason) status changes, in order."""

    def read(app: Any, uniqueid: str) -> list[tuple[int | None, int, str]]:
        db = app.extensions["turnout"].db
        T = db.models.StatusTransition
        with db.begin() as session:
            rows = session.execute(sa.select(T.old_status, T.new_status, T.reason)
                                   .where(T.uniqueid == uniqueid).order_by(T.id)).all()
        return [tuple(r) for r in rows]

    return read


@pytest.fixture
def count_participants():
    """``count_participants(app)``: rows in the participant table."""

    def count(app: Any) -> int:
        db = app.extensions["turnout"].db
        with db.begin() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(db.models.Participant))

    return count


def write_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def project_file(project_dir: Path):
    """``project_file("templates/ad.html", text)``: write (or replace) a file in the test project."""

    def write(relative: str, text: str) -> Path:
        return write_file(project_dir / relative, text)

    return write


# --- real headless Chromium (Debian's package), one per test session ----------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium driven by Playwright for Python. One sync Playwright per process: two cannot
    coexist, so every browser test shares this one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context and page; console errors and page errors are collected in
    ``page.errors`` (also reachable as ``page.console_errors``)."""
    context = browser.new_context()
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.console_errors = pg.errors  # type: ignore[attr-defined]
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on("console", lambda msg: pg.errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield pg
    finally:
        context.close()
