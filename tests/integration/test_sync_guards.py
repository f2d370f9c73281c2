"""What /sync refuses, and that a refusal leaves the stored data exactly as it was.

psiTurk answered an unknown uniqueId with a 500, stored the literal "null" for a non-JSON
body, let a late save replace newer data, and had no size limit.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest


@pytest.fixture
def saved(db_app, make_participant) -> Any:
    """A participant with 5 trials stored."""
    p = make_participant(db_app)
    p.open_exp()
    assert p.save(5).status_code == 200
    return p


def stored_data(app: Any, read_row: Any, uniqueid: str) -> tuple[str | None, int | None]:
    found = read_row(app, uniqueid)
    return found.datastring, found.trial_count


def test_get_for_unknown_participant_is_404_json(db_app) -> None:
    response = db_app.test_client().get("/sync/NOBODY%3ANOWHERE")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_put_for_unknown_participant_is_404_json_and_creates_nothing(db_app, count_participants) -> None:
    response = db_app.test_client().put("/sync/NOBODY%3ANOWHERE", json={"data": []})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert count_participants(db_app) == 0


BAD_BODIES = [
    (b"not json at all", "application/json"),
    (b"uniqueId=W1%3AA1&data=1", "application/x-www-form-urlencoded"),
    (b"", "application/json"),
    (b"null", "application/json"),
    (b"[1, 2, 3]", "application/json"),
    (b'"a string"', "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (b'{"data": [1, 2', "application/json"),
]


def _put_bad(p: Any, body: bytes, content_type: str) -> Any:
    return p.client.put(f"/sync/{p.uniqueid}", data=body, content_type=content_type, headers=p.headers)


def test_non_json_body_is_400_and_stored_data_is_untouched(saved, db_app, read_row) -> None:
    before = stored_data(db_app, read_row, saved.uniqueid)
    response = _put_bad(saved, b"not json at all", "application/json")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_input"
    assert stored_data(db_app, read_row, saved.uniqueid) == before


@pytest.mark.parametrize(("body", "content_type"), BAD_BODIES)
def test_any_body_that_is_not_a_json_object_is_400_and_changes_nothing(app, make_participant, read_row,
                                                                       body: bytes, content_type: str) -> None:
    # Decided before the database is touched, so SQLite stands for all three here.
    p = make_participant(app)
    p.open_exp()
    p.save(5)
    before = stored_data(app, read_row, p.uniqueid)
    response = _put_bad(p, body, content_type)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_input"
    assert stored_data(app, read_row, p.uniqueid) == before


def test_save_with_fewer_trials_is_409_and_newer_data_is_kept(saved, db_app, read_row) -> None:
    before = stored_data(db_app, read_row, saved.uniqueid)
    response = saved.save(3)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
    assert response.json["error"]["detail"] == {"stored_trials": 5, "offered_trials": 3}
    assert stored_data(db_app, read_row, saved.uniqueid) == before


def test_save_without_any_trials_over_stored_trials_is_409(saved, db_app, read_row) -> None:
    response = saved.client.put(f"/sync/{saved.uniqueid}", json={"questiondata": {"q": 1}},
                                headers=saved.headers)
    assert response.status_code == 409
    assert stored_data(db_app, read_row, saved.uniqueid)[1] == 5


def test_save_with_the_same_trials_and_new_answers_is_accepted(saved, db_app, read_row) -> None:
    # The questionnaire at the end re-saves the same trials with questiondata filled in.
    response = saved.save(5, questiondata={"feedback": "fine"})
    assert response.status_code == 200
    assert json.loads(read_row(db_app, saved.uniqueid).datastring)["questiondata"] == {"feedback": "fine"}


def test_save_with_more_trials_is_accepted(saved, db_app, read_row) -> None:
    assert saved.save(8).status_code == 200
    assert stored_data(db_app, read_row, saved.uniqueid)[1] == 8


def test_body_over_the_limit_is_413_and_nothing_is_saved(make_app, shared_database_url, make_participant,
                                                          read_row) -> None:
    app = make_app(shared_database_url, max_request_bytes="4096")
    p = make_participant(app)
    p.open_exp()
    p.save(2)
    before = stored_data(app, read_row, p.uniqueid)
    response = p.save(3, padding="x" * 5000)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_entity_too_large"
    assert "4096" in response.json["error"]["message"]
    assert stored_data(app, read_row, p.uniqueid) == before


def test_chunked_body_over_the_limit_is_413(make_app, sqlite_url, make_participant, read_row) -> None:
    app = make_app(sqlite_url, max_request_bytes="4096")
    p = make_participant(app)
    p.open_exp()
    p.save(2)
    before = stored_data(app, read_row, p.uniqueid)
    body = json.dumps({"data": [{}, {}, {}], "padding": "x" * 6000}).encode()
    # No Content-Length: the server must stop reading at the limit, as gunicorn delivers
    # a chunked body (wsgi.input_terminated) without a length.
    response = p.client.put(f"/sync/{p.uniqueid}", input_stream=io.BytesIO(body), content_type="application/json",
                            headers={**p.headers, "Transfer-Encoding": "chunked"},
                            environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert stored_data(app, read_row, p.uniqueid) == before


def test_chunked_body_exactly_at_the_limit_is_accepted(make_app, sqlite_url, make_participant) -> None:
    app = make_app(sqlite_url, max_request_bytes="4096")
    p = make_participant(app)
    p.open_exp()
    body = json.dumps({"data": [{}], "padding": ""}).encode()
    padded = json.dumps({"data": [{}], "padding": "x" * (4096 - len(body))}).encode()
    response = p.client.put(f"/sync/{p.uniqueid}", input_stream=io.BytesIO(padded),
                            content_type="application/json",
                            headers={**p.headers, "Transfer-Encoding": "chunked"},
                            environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 200


def test_body_just_under_the_limit_is_accepted(make_app, sqlite_url, make_participant) -> None:
    app = make_app(sqlite_url, max_request_bytes="4096")
    p = make_participant(app)
    p.open_exp()
    body = json.dumps({"data": [{}], "padding": ""}).encode()
    padded = json.dumps({"data": [{}], "padding": "x" * (4096 - len(body))}).encode()
    assert len(padded) == 4096
    response = p.client.put(f"/sync/{p.uniqueid}", data=padded, content_type="application/json",
                            headers=p.headers)
    assert response.status_code == 200


def test_body_under_the_limit_is_saved_or_refused_with_413_never_500(db_app, make_participant, read_row) -> None:
    # MariaDB's max_allowed_packet (16 MiB by default) equals max_request_bytes, and quotes
    # are escaped on the way in: a 15.9 MB save used to drop the connection (a 500).
    p = make_participant(db_app)
    p.open_exp()
    p.save(1)
    before = stored_data(db_app, read_row, p.uniqueid)
    body = json.dumps({"data": [{}, {}], "pad": '"' * 3_000_000 + "x" * 9_900_000})
    assert len(body) < 16 * 1024 * 1024
    response = p.client.put(f"/sync/{p.uniqueid}", data=body, content_type="application/json", headers=p.headers)
    assert response.status_code in (200, 413)
    if response.status_code == 413:
        assert "max_allowed_packet" in response.json["error"]["message"]
        assert stored_data(db_app, read_row, p.uniqueid) == before
    else:
        assert stored_data(db_app, read_row, p.uniqueid)[1] == 2
    assert p.save(3).status_code == 200  # and the next save goes through


def test_form_post_over_the_limit_is_413(make_app, sqlite_url, make_participant, read_row) -> None:
    app = make_app(sqlite_url, max_request_bytes="2048")
    p = make_participant(app)
    p.open_exp()
    response = p.client.post("/inexp", data={"uniqueId": p.uniqueid, "pad": "x" * 4000}, headers=p.headers)
    assert response.status_code == 413
    assert read_row(app, p.uniqueid).status == 1


def test_psiturk_row_without_trial_count_still_refuses_a_stale_save(db_app, make_participant, read_row) -> None:
    # A row written by psiTurk before the upgrade has data but no turnout trial count.
    p = make_participant(db_app)
    p.open_exp()
    p.save(10)
    db = db_app.extensions["turnout"].db
    P = db.models.Participant
    with db.begin() as session:
        session.get(P, p.uniqueid).trial_count = None
    response = p.save(4)
    assert response.status_code == 409
    stored = read_row(db_app, p.uniqueid)
    assert len(json.loads(stored.datastring)["data"]) == 10


def test_psiturk_row_with_unparseable_data_accepts_a_save(db_app, make_participant, read_row) -> None:
    # psiTurk stored the literal "null" after a non-JSON PUT; that row must not be stuck.
    p = make_participant(db_app)
    p.open_exp()
    db = db_app.extensions["turnout"].db
    with db.begin() as session:
        found = session.get(db.models.Participant, p.uniqueid)
        found.datastring, found.trial_count = "null", None
    assert p.save(2).status_code == 200
    assert read_row(db_app, p.uniqueid).trial_count == 2
