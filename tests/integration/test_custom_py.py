"""A project's custom.py, written against psiTurk's modules, runs unchanged.

The minimal test project's custom.py imports psiturk.db, psiturk.models,
psiturk.experiment_errors, psiturk.user_utils and psiturk.psiturk_config, declares its own
table on Base and registers routes on the ``custom_code`` blueprint.
"""

from __future__ import annotations

import base64
import logging
import sys
import textwrap
import types

import pytest
import sqlalchemy as sa

from turnout.config import ConfigError

HEADER = """\
from flask import Blueprint, jsonify, request
custom_code = Blueprint("custom_code", __name__)
"""


def custom(body: str) -> str:
    return HEADER + textwrap.dedent(body)


# --- the test project's own custom.py --------------------------------------------------------


def test_custom_blueprint_routes_are_served(client) -> None:
    response = client.get("/codeversion")
    assert response.status_code == 200
    assert response.json == {"codeversion": "1.0"}


def test_psiturk_nocache_marks_the_response_uncacheable(client) -> None:
    assert client.get("/codeversion").headers["Cache-Control"] == "no-cache"


def test_custom_init_app_is_called_with_the_app(app) -> None:
    assert app.config["CUSTOM_INIT_RAN"] is True


def test_compute_bonus_reads_datastring_and_sets_bonus_through_db_session(db_app, make_participant,
                                                                           read_row) -> None:
    p = make_participant(db_app)
    p.open_exp()
    p.save(6)  # trials 0, 2, 4 are hits
    response = p.client.get(f"/compute_bonus?uniqueId={p.uniqueid}")
    assert response.json == {"bonusComputed": "success"}
    assert read_row(db_app, p.uniqueid).bonus == pytest.approx(0.06)


def test_table_declared_on_base_is_created_and_usable(db_app) -> None:
    db = db_app.extensions["turnout"].db
    assert sa.inspect(db.engine).has_table("custom_note")
    client = db_app.test_client()
    assert client.post("/note", data={"text": "first"}).json == {"count": 1}
    assert client.post("/note", data={"text": "second"}).json == {"count": 2}


def test_experiment_error_in_a_custom_route_renders_the_numbered_page(client) -> None:
    response = client.get("/compute_bonus")
    assert response.status_code == 200
    assert b"<b>Error</b>: 1013" in response.data


def test_invalid_usage_in_a_custom_route_is_json_with_its_status(client) -> None:
    response = client.get("/bad_usage")
    assert response.status_code == 418
    assert response.json == {"message": "you asked wrongly"}


# --- hooks -------------------------------------------------------------------------------------


def test_custom_get_condition_chooses_the_condition_and_gets_the_mode(make_app, project_file,
                                                                      make_participant, read_row) -> None:
    project_file("custom.py", custom("""
        MODES = []
        def custom_get_condition(mode):
            MODES.append(mode)
            return 1, 3
        @custom_code.route("/modes")
        def modes():
            return jsonify(MODES)
    """))
    app = make_app()
    p = make_participant(app, mode="live")
    assert b"var condition = 1;" in p.open_exp().data
    stored = read_row(app, p.uniqueid)
    assert (stored.cond, stored.counterbalance) == (1, 3)
    assert p.client.get("/modes").json == ["live"]


def test_project_without_custom_py_runs(make_app, project_dir, make_participant) -> None:
    (project_dir / "custom.py").unlink()
    app = make_app()
    assert make_participant(app).open_exp().status_code == 200
    assert app.test_client().get("/codeversion").status_code == 404


def test_psiturk_authorization_guards_a_route_with_basic_auth(make_app, project_file) -> None:
    project_file("custom.py", custom("""
        from psiturk.psiturk_config import PsiturkConfig
        from psiturk.user_utils import PsiTurkAuthorization
        config = PsiturkConfig()
        config.load_config()
        myauth = PsiTurkAuthorization(config)
        @custom_code.route("/data_dump")
        @myauth.requires_auth
        def data_dump():
            return "the data"
    """))
    app = make_app(login_username="lab", login_pw="pw%1", secret_key="k")
    client = app.test_client()
    refused = client.get("/data_dump")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic")

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    assert client.get("/data_dump", headers=basic("lab", "wrong")).status_code == 401
    allowed = client.get("/data_dump", headers=basic("lab", "pw%1"))
    assert allowed.status_code == 200 and allowed.data == b"the data"


def test_psiturk_authorization_without_credentials_stops_start_up(make_app, project_file) -> None:
    project_file("custom.py", custom("""
        from psiturk.psiturk_config import PsiturkConfig
        from psiturk.user_utils import PsiTurkAuthorization
        config = PsiturkConfig()
        config.load_config()
        myauth = PsiTurkAuthorization(config)
    """))
    with pytest.raises(ConfigError) as caught:
        make_app()
    assert "custom.py" in str(caught.value)
    assert "login_username" in str(caught.value)


def test_psiturk_config_reads_the_servers_configuration(make_app, project_file) -> None:
    project_file("custom.py", custom("""
        from psiturk.psiturk_config import PsiturkConfig
        config = PsiturkConfig()
        config.load_config()
        @custom_code.route("/cfg")
        def cfg():
            return jsonify(conds=config.getint("Task Parameters", "num_conds"),
                           repeats=config.getboolean("Task Parameters", "allow_repeats"),
                           port=config.get("Server Parameters", "port"),
                           ad_url=config.get_ad_url())
    """))
    app = make_app(allow_repeats="true", port="8123")
    assert app.test_client().get("/cfg").json == {
        "conds": 2, "repeats": True, "port": "8123", "ad_url": "http://127.0.0.1:22362/pub"}


def test_every_psiturk_name_projects_import_is_available(make_app, project_file) -> None:
    project_file("custom.py", custom("""
        from psiturk.psiturk_config import PsiturkConfig
        from psiturk.experiment_errors import ExperimentError, InvalidUsage
        from psiturk.user_utils import PsiTurkAuthorization, nocache
        from psiturk.db import db_session, init_db
        from psiturk.models import Participant, Base
        from psiturk.psiturk_exceptions import *
        from psiturk.psiturk_statuses import ALLOCATED, STARTED, COMPLETED, SUBMITTED, CREDITED, QUITEARLY, BONUSED
        import psiturk
        @custom_code.route("/names")
        def names():
            return jsonify(statuses=[ALLOCATED, STARTED, COMPLETED, SUBMITTED, CREDITED, QUITEARLY, BONUSED],
                           participants=db_session.query(Participant).count(),
                           table=Participant.__tablename__,
                           exception=issubclass(EphemeralContainerDBError, PsiturkException),
                           version=bool(psiturk.version_number))
    """))
    response = make_app().test_client().get("/names")
    assert response.json == {"statuses": [1, 2, 3, 4, 5, 6, 7], "participants": 0, "table": "assignments",
                             "exception": True, "version": True}


def test_an_installed_psiturk_does_not_answer_for_the_shim(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    real = types.ModuleType("psiturk")
    real.__path__ = []  # type: ignore[attr-defined]
    real_db = types.ModuleType("psiturk.db")
    real_db.db_session = "the real psiTurk's session"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "psiturk", real)
    monkeypatch.setitem(sys.modules, "psiturk.db", real_db)
    app = make_app()
    assert app.test_client().post("/note", data={"text": "x"}).json == {"count": 1}


# --- import failures ------------------------------------------------------------------------


def test_custom_py_importing_a_missing_module_is_logged_and_skipped(make_app, project_file, make_participant,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    project_file("custom.py", custom("""
        import a_database_driver_that_is_not_installed
        @custom_code.route("/never")
        def never():
            return "x"
    """))
    with caplog.at_level(logging.WARNING, logger="turnout.project"):
        app = make_app()
    assert "a_database_driver_that_is_not_installed" in caplog.text
    assert app.test_client().get("/never").status_code == 404
    assert make_participant(app).open_exp().status_code == 200


@pytest.mark.parametrize(("body", "error", "line"), [
    ("x = (\n", "SyntaxError", None),
    ("undefined_name + 1\n", "NameError", 3),
    ("from psiturk.db import no_such_thing\n", "ImportError", 3),
    ("raise RuntimeError('custom setup failed')\n", "RuntimeError: custom setup failed", 3),
])
def test_custom_py_that_fails_to_import_stops_start_up_with_its_error(make_app, project_file, body: str,
                                                                      error: str, line: int | None) -> None:
    path = project_file("custom.py", HEADER + body)
    with pytest.raises(ConfigError) as caught:
        make_app()
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert error in message
    if line is not None:
        assert f"custom.py:{line}:" in message


def test_custom_init_app_that_raises_stops_start_up_with_its_error(make_app, project_file) -> None:
    path = project_file("custom.py", custom("""
        def init_app(app):
            app.config["NEEDED"] = app.config["MISSING_KEY"]
    """))
    with pytest.raises(ConfigError) as caught:
        make_app()
    message = str(caught.value)
    assert f"{path}:5:" in message and "init_app" in message and "KeyError" in message
    assert "\n" not in message


def test_multi_line_import_error_is_reported_on_one_line(make_app, project_file) -> None:
    project_file("custom.py", HEADER + "raise ValueError('first line\\nsecond line')\n")
    with pytest.raises(ConfigError) as caught:
        make_app()
    assert "first line" in str(caught.value) and "\n" not in str(caught.value)


def test_each_app_gets_a_fresh_custom_module(make_app, project_file) -> None:
    # Two apps in one process (tests, the CLI's pre-flight) must not share custom.py state.
    project_file("custom.py", custom("""
        HITS = []
        @custom_code.route("/hits")
        def hits():
            HITS.append(1)
            return jsonify(len(HITS))
    """))
    first, second = make_app(), make_app()
    assert first.test_client().get("/hits").json == 1
    assert second.test_client().get("/hits").json == 1


