"""The app factory and its error mapping: nothing a participant sends gives a 500."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def test_importing_the_app_module_does_no_work() -> None:
    probe = ("import gc, sys, flask, sqlalchemy.engine, turnout.app; "
             "print(sum(isinstance(o, flask.Flask) for o in gc.get_objects()), "
             "sum(isinstance(o, sqlalchemy.engine.Engine) for o in gc.get_objects()), "
             "'custom' in sys.modules, 'turnout.experiment.routes' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0", "False", "False"]


def test_two_apps_in_one_process_keep_their_own_databases(make_app, tmp_path, make_participant,
                                                          count_participants) -> None:
    first = make_app(f"sqlite:///{tmp_path / 'one.db'}")
    second = make_app(f"sqlite:///{tmp_path / 'two.db'}")
    make_participant(first).open_exp()
    assert count_participants(first) == 1
    assert count_participants(second) == 0


def test_wrong_method_on_a_participant_route_is_json_405(client) -> None:
    response = client.post("/sync/W1%3AA1", json={})
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"


def test_unexpected_error_in_a_custom_route_is_a_500_without_a_traceback(make_app, project_file) -> None:
    project_file("custom.py", "from flask import Blueprint\ncustom_code = Blueprint('custom_code', __name__)\n"
                              "@custom_code.route('/boom')\ndef boom():\n    raise RuntimeError('secret detail')\n")
    client = make_app().test_client()
    page = client.get("/boom")
    assert page.status_code == 500
    assert b"secret detail" not in page.data and b"Traceback" not in page.data
    as_json = client.get("/boom", headers={"Accept": "application/json"})
    assert as_json.json == {"error": {"code": "internal_error",
                                      "message": "the server hit an unexpected error; it has been logged"}}


IDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
ROUTES = ["/ad", "/pub", "/consent", "/exp", "/complete", "/worker_complete", "/worker_submitted",
          "/check_worker_status"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), hit=IDS, assignment=IDS, worker=IDS,
       mode=st.sampled_from(["", "sandbox", "live", "debug", "local", "x y", "'\"<>"]), extra=IDS)
def test_no_query_string_makes_a_get_route_fail_with_500(app, route: str, hit: str, assignment: str,
                                                         worker: str, mode: str, extra: str) -> None:
    query = "&".join(f"{k}={quote(v)}" for k, v in (
        ("hitId", hit), ("assignmentId", assignment), ("workerId", worker), ("mode", mode),
        ("uniqueId", f"{worker}:{assignment}"), (extra or "x", extra)))
    response = app.test_client().get(f"{route}?{query}")
    assert response.status_code < 500, (route, query, response.data[:300])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uniqueid=IDS.filter(bool), body=st.binary(max_size=64) | st.text(max_size=40).map(str.encode))
def test_no_sync_request_fails_with_500(app, uniqueid: str, body: bytes) -> None:
    client = app.test_client()
    path = f"/sync/{quote(uniqueid, safe='')}"
    assert client.get(path).status_code < 500
    assert client.put(path, data=body, content_type="application/json").status_code < 500
    assert client.post("/inexp", data={"uniqueId": uniqueid}).status_code < 500
    assert client.post("/quitter", data={"uniqueId": uniqueid}).status_code < 500
