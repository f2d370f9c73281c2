"""Fixtures for the dashboard and API tests: a dashboard-enabled app per database, built
once per run (rows are deleted after each test), signed-in clients, and accounts."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from servers import copy_project

ADMIN, ADMIN_PW = "boss", "correct horse"
VIEWER_PW = "viewer-pw-1"
PAYER_PW = "payer-pw-1"

_apps: dict[str, Any] = {}


def build_dashboard_app(url: str, factory: pytest.TempPathFactory, clock: Any) -> Any:
    from turnout import compat
    from turnout.app import create_app
    from turnout.config import load_settings
    from turnout.db.engine import Database
    from turnout.db.migrate import upgrade

    built = _apps.get(url)
    if built is None:
        project = copy_project(factory.mktemp("dashboard") / "project")
        settings = load_settings(project, environ={
            "TURNOUT_DATABASE_URL": url, "PSITURK_GLOBAL_CONFIG_LOCATION": str(project / "no-global"),
            "TURNOUT_ENABLE_DASHBOARD": "true", "TURNOUT_LOGIN_USERNAME": ADMIN,
            "TURNOUT_LOGIN_PW": ADMIN_PW, "TURNOUT_SECRET_KEY": "test-secret"})
        db = Database(settings.database_url, settings.tables)
        upgrade(db)
        built = create_app(settings, db=db, clock=clock)
        built.config["TESTING"] = True
        _apps[url] = built
    ctx = built.extensions["turnout"]
    ctx.clock = clock
    built.extensions["turnout.dashboard"].balances.clear()
    compat.activate(ctx.settings, ctx.db)
    return built


@pytest.fixture
def dash_app(shared_database_url: str, tmp_path_factory: pytest.TempPathFactory, clock: Any) -> Iterator[Any]:
    """The dashboard-enabled test app on each database backend in turn."""
    yield build_dashboard_app(shared_database_url, tmp_path_factory, clock)


@pytest.fixture
def sqlite_dash_app(app: Any, _shared_databases: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
                    clock: Any) -> Any:
    """The dashboard-enabled app on SQLite only, for tests of the web layer rather than the
    database (the ``app`` fixture empties the shared SQLite database after the test)."""
    return build_dashboard_app(_shared_databases["sqlite"], tmp_path_factory, clock)


def csrf_of(response: Any) -> str:
    match = re.search(rb'name="csrf-token" content="([^"]+)"', response.data)
    assert match, "page carries no csrf-token meta"
    return match.group(1).decode()


class Browser:
    """A test client that signs in like a person: fetch the form, post it with its token."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()
        self.csrf = ""

    def login(self, username: str = ADMIN, password: str = ADMIN_PW, **extra: str) -> Any:
        form = self.client.get("/dashboard/login")
        self.csrf = csrf_of(form)
        response = self.client.post("/dashboard/login", data={"username": username, "password": password,
                                                               "csrf_token": self.csrf, **extra})
        if response.status_code == 302:
            self.csrf = csrf_of(self.client.get("/dashboard/settings"))
        return response

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post_json(self, path: str, body: Any = None, *, csrf: bool = True) -> Any:
        headers = {"X-CSRFToken": self.csrf} if csrf else {}
        return self.client.post(path, json=body if body is not None else {}, headers=headers)

    def post_form(self, path: str, data: dict[str, str], *, csrf: bool = True) -> Any:
        return self.client.post(path, data={**data, **({"csrf_token": self.csrf} if csrf else {})})


@pytest.fixture
def browser_for():
    def make(app: Any, username: str = ADMIN, password: str = ADMIN_PW) -> Browser:
        b = Browser(app)
        response = b.login(username, password)
        assert response.status_code == 302, response.data[:300]
        return b

    return make


@pytest.fixture
def add_user():
    def add(app: Any, name: str, role: str, password: str) -> None:
        from turnout.services import accounts

        st = app.extensions["turnout.dashboard"]
        accounts.add_user(st.db, st.settings, name, password, role, clock=st.clock)

    return add


@pytest.fixture
def seed():
    """``seed(app, n, **columns)``: insert n participants directly (status, cond, mode,
    codeversion cycle through lists when given lists); returns their uniqueids."""
    from datetime import UTC, datetime, timedelta

    def insert(app: Any, n: int, *, prefix: str = "W", **columns: Any) -> list[str]:
        db = app.extensions["turnout"].db
        P = db.models.Participant
        ids = []
        base = datetime(2026, 1, 1, tzinfo=UTC)
        with db.begin() as session:
            for i in range(n):
                values = {k: (v[i % len(v)] if isinstance(v, list) else v) for k, v in columns.items()}
                values.setdefault("mode", "local")
                values.setdefault("codeversion", "1.0")
                values.setdefault("status", 4)
                values.setdefault("cond", i % 2)
                uid = f"{prefix}{i}:A{prefix}{i}"
                session.add(P(uniqueid=uid, workerid=f"{prefix}{i}", assignmentid=f"A{prefix}{i}",
                              hitid=values.pop("hitid", "H1"), counterbalance=0,
                              beginhit=base + timedelta(minutes=i), **values))
                ids.append(uid)
        return ids

    return insert


class Study:
    """The dashboard app wired to an offline marketplace on the test's clock."""

    def __init__(self, app: Any, market: Any) -> None:
        self.app = app
        self.market = market
        self.st = app.extensions["turnout.dashboard"]

    def ctx(self, actor: str = "test") -> Any:
        return self.st.open_market("local", actor)

    def hit(self, assignments: int = 5, reward: str = "1.00") -> str:
        from turnout.services import hits

        return str(hits.create_hit(self.ctx(), max_assignments=assignments, reward=reward,
                                   duration_hours=1)["hit_id"])

    def submit(self, hit_id: str, count: int, *, bonus: float = 0.0, status: int = 4) -> list[str]:
        """``count`` workers accept and submit; each gets a local participant row."""
        side = self.market.state.workers
        db = self.st.db
        P = db.models.Participant
        ids = []
        for _ in range(count):
            worker = side.register()
            a = side.accept(worker.worker_id, hit_id)
            side.submit(a.assignment_id, {"done": "yes"})
            with db.begin() as session:
                session.add(P(uniqueid=f"{worker.worker_id}:{a.assignment_id}", assignmentid=a.assignment_id,
                              workerid=worker.worker_id, hitid=hit_id, codeversion="1.0", mode="local",
                              status=status, bonus=bonus, cond=0, counterbalance=0, beginhit=self.st.clock.now()))
            ids.append(a.assignment_id)
        return ids

    def balance(self) -> str:
        return str(self.ctx().client.get_account_balance()["AvailableBalance"])


@contextmanager
def _wired(app: Any, store: Path, clock: Any) -> Iterator[Study]:
    from turnout.marketplace import make_client
    from turnout.marketplace.local import ThreadedMarketplace
    from turnout.services.recruitment import MarketContext

    st = app.extensions["turnout.dashboard"]
    original = st.open_market
    with ThreadedMarketplace(store, clock=clock) as market:
        client = make_client("local", endpoint_url=market.endpoint_url, store=store, max_attempts=1)

        def open_market(mode: str, actor: str) -> Any:
            if mode != "local":
                return original(mode, actor)
            return MarketContext(db=st.db, settings=st.settings, clock=st.clock, mode="local", client=client,
                                 actor=actor)

        st.open_market = open_market
        try:
            yield Study(app, market)
        finally:
            st.open_market = original


@pytest.fixture
def study(dash_app: Any, tmp_path: Path, clock: Any) -> Iterator[Study]:
    """``dash_app`` (each database) whose local marketplace is a fresh offline MTurk."""
    with _wired(dash_app, tmp_path / "mturk.db", clock) as wired:
        yield wired


@pytest.fixture
def sqlite_study(sqlite_dash_app: Any, tmp_path: Path, clock: Any) -> Iterator[Study]:
    """The same on SQLite only, for tests of the pages rather than the database."""
    with _wired(sqlite_dash_app, tmp_path / "mturk.db", clock) as wired:
        yield wired


@pytest.fixture
def live_url(sqlite_study: Study) -> Iterator[str]:
    """The SQLite study's app served over real HTTP (for Chromium), in a thread."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, sqlite_study.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
