"""The app factory and its error mapping: nothing a participant sends gives a 500."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
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


# --- hostile requests against a real participant, on every database (issue 6) -------------

HOSTILE_TEXT = st.sampled_from(["", "\x00", "W1:A1\x00", "x" * 5000, "debugX", "../../etc/passwd", "%00",
                                "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
                                "W1:A1", "W1", "A1", "H1", "'\"<>&", "١٢٣"]) | IDS
HOSTILE_BODIES = st.sampled_from([
    b'{"questiondata": {"s": "\\ud800"}}', b'{"data": [NaN]}', b'{"q": Infinity}', b'{"q": -Infinity}',
    b"[" * 3000 + b"]" * 3000, b'{"a":' * 2000 + b"1" + b"}" * 2000, b"null", b"{}", b'{"data": [{}, {}]}',
    b"\xff\xfe", b'{"s": "\x00"}', b'{"data": "' + b"x" * 70_000 + b'"}',
]) | st.binary(max_size=64)
SAVE_STAMPS = st.sampled_from([None, "9999999999999-ffffffff.999999999", "0000000000000-00000000.0",
                               "1767268800000-0a1b2c3d.1", "bogus", "\x00"])


def _hostile_request(client: Any, route: str, uid: str, text: str, body: bytes, token: str | None,
                     stamp: str | None) -> Any:
    from urllib.parse import quote

    headers = {"X-Turnout-Token": token} if token else {}
    if stamp is not None and "\x00" not in stamp:
        headers["X-Turnout-Save"] = stamp
    q = quote(text, safe="")
    ids = f"hitId={q}&assignmentId=A1&workerId=W1&mode={q}"
    if route == "sync_put":
        return client.put(f"/sync/{quote(uid, safe=':')}", data=body, content_type="application/json",
                          headers=headers)
    if route == "sync_get":
        return client.get(f"/sync/{quote(uid, safe=':')}", headers=headers)
    if route in ("inexp", "quitter"):
        return client.post(f"/{route}", data={"uniqueId": uid, "turnout_token": text}, headers=headers)
    if route in ("complete", "worker_complete", "worker_submitted"):
        return client.get(f"/{route}?uniqueId={quote(uid, safe=':')}&mode={q}", headers=headers)
    if route == "check_worker_status":
        return client.get(f"/check_worker_status?workerId={q}&assignmentId={q}", headers=headers)
    if route in ("ad", "consent", "exp"):
        return client.get(f"/{route}?{ids}&{q or 'k'}={q}", headers=headers)
    return client.get(f"/{q}", headers=headers)  # a raw template page


HOSTILE_ROUTES = ["sync_put", "sync_get", "inexp", "quitter", "complete", "worker_complete", "worker_submitted",
                  "check_worker_status", "ad", "consent", "exp", "page"]


def _stored(app: Any, uniqueid: str) -> tuple[Any, ...]:
    db = app.extensions["turnout"].db
    with db.begin() as session:
        found = session.get(db.models.Participant, uniqueid)
        return (found.status, found.datastring, found.trial_count, found.token, found.save_key, found.hitid,
                found.mode, found.beginexp, found.endhit)


def test_hostile_participant_requests_never_500_never_log_a_traceback_and_refusals_change_nothing(
        db_app, make_participant, caplog) -> None:
    import logging

    owner = make_participant(db_app)
    owner.open_exp()
    assert owner.save(2).status_code == 200

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(route=st.sampled_from(HOSTILE_ROUTES), uid=st.sampled_from(["W1:A1"]) | HOSTILE_TEXT,
           text=HOSTILE_TEXT, body=HOSTILE_BODIES, with_token=st.booleans(), stamp=SAVE_STAMPS)
    def check(route: str, uid: str, text: str, body: bytes, with_token: bool, stamp: str | None) -> None:
        before = _stored(db_app, owner.uniqueid)
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            response = _hostile_request(db_app.test_client(), route, uid, text, body,
                                        owner.token if with_token else None, stamp)
        assert response.status_code < 500, (route, uid, text, response.data[:300])
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text
        refused = response.status_code >= 400 or b"<b>Error</b>:" in response.data
        if refused:
            assert _stored(db_app, owner.uniqueid) == before, (route, uid, text)

    check()
