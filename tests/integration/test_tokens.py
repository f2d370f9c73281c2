"""Participant tokens: a write for a participant needs the token issued with their /exp page.

psiTurk let anyone who knew ``workerId:assignmentId`` overwrite the data or flip the
status (weakness 17). The token may arrive as the X-Turnout-Token header, a
``turnout_token`` form or query field, or the cookie set by /exp.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest


def snapshot(app: Any, read_row: Any, uniqueid: str) -> tuple[Any, ...]:
    found = read_row(app, uniqueid)
    return found.status, found.datastring, found.trial_count, found.beginexp, found.endhit


WRITES: dict[str, Callable[[Any, str, dict[str, str]], Any]] = {
    "sync_put": lambda c, uid, h: c.put(f"/sync/{uid}", json={"data": [{}] * 9}, headers=h),
    "inexp": lambda c, uid, h: c.post("/inexp", data={"uniqueId": uid}, headers=h),
    "quitter": lambda c, uid, h: c.post("/quitter", data={"uniqueId": uid}, headers=h),
    "complete": lambda c, uid, h: c.get(f"/complete?uniqueId={uid}&mode=sandbox", headers=h),
    "worker_complete": lambda c, uid, h: c.get(f"/worker_complete?uniqueId={uid}", headers=h),
}


@pytest.fixture
def participant(db_app, make_participant) -> Any:
    """A started participant with 2 trials saved (quitter needs STARTED to change anything)."""
    p = make_participant(db_app)
    p.open_exp()
    p.save(2)
    p.inexp()
    return p


@pytest.mark.parametrize("route", list(WRITES))
def test_write_without_token_is_403_and_changes_nothing(db_app, participant, read_row, route: str) -> None:
    before = snapshot(db_app, read_row, participant.uniqueid)
    stranger = db_app.test_client()  # no cookie, no header
    response = WRITES[route](stranger, participant.uniqueid, {})
    assert response.status_code == 403
    assert snapshot(db_app, read_row, participant.uniqueid) == before


@pytest.mark.parametrize("route", list(WRITES))
def test_write_with_a_wrong_token_is_403_and_changes_nothing(app, make_participant, read_row, route: str) -> None:
    p = make_participant(app)
    p.open_exp()
    p.save(2)
    p.inexp()
    before = snapshot(app, read_row, p.uniqueid)
    response = WRITES[route](app.test_client(), p.uniqueid, {"X-Turnout-Token": "guessed"})
    assert response.status_code == 403
    assert snapshot(app, read_row, p.uniqueid) == before


def test_another_participants_token_does_not_open_this_one(db_app, participant, make_participant, read_row) -> None:
    other = make_participant(db_app, worker="W2", assignment="A2")
    other.open_exp()
    before = snapshot(db_app, read_row, participant.uniqueid)
    response = db_app.test_client().put(f"/sync/{participant.uniqueid}", json={"data": [{}] * 9},
                                        headers=other.headers)
    assert response.status_code == 403
    assert snapshot(db_app, read_row, participant.uniqueid) == before


def test_forbidden_sync_answer_is_json_with_a_code(db_app, participant) -> None:
    response = db_app.test_client().put(f"/sync/{participant.uniqueid}", json={"data": []})
    assert response.json["error"]["code"] == "forbidden"


def test_reading_sync_data_needs_the_token_too(db_app, participant) -> None:
    assert db_app.test_client().get(f"/sync/{participant.uniqueid}").status_code == 403
    assert participant.load().status_code == 200


# --- where the token may come from (SQLite: no database difference) -----------------------


@pytest.fixture
def fresh(app, make_participant) -> Any:
    p = make_participant(app)
    p.open_exp()
    return p


def test_token_in_header_is_accepted(app, fresh, read_row) -> None:
    response = app.test_client().post("/inexp", data={"uniqueId": fresh.uniqueid},
                                      headers={"X-Turnout-Token": fresh.token})
    assert response.json == {"status": "success"}
    assert read_row(app, fresh.uniqueid).status == 2


def test_token_in_form_field_is_accepted(app, fresh, read_row) -> None:
    response = app.test_client().post("/inexp", data={"uniqueId": fresh.uniqueid, "turnout_token": fresh.token})
    assert response.json == {"status": "success"}
    assert read_row(app, fresh.uniqueid).status == 2


def test_token_in_query_is_accepted_as_completehit_sends_it(app, fresh, read_row) -> None:
    response = app.test_client().get(f"/complete?uniqueId={fresh.uniqueid}&mode=sandbox&turnout_token={fresh.token}")
    assert response.status_code == 200
    assert read_row(app, fresh.uniqueid).status == 3


def test_token_cookie_from_exp_is_accepted_without_header(app, fresh, read_row) -> None:
    # Project code's own $.ajax("quitter", ...) and plain links carry only the cookie.
    response = fresh.client.put(f"/sync/{fresh.uniqueid}", json={"data": [{}]})
    assert response.json == {"status": "user data saved"}
    assert read_row(app, fresh.uniqueid).trial_count == 1


def test_token_cookie_is_per_participant(app, make_participant) -> None:
    a = make_participant(app, worker="WA", assignment="AA")
    first = a.open_exp().headers["Set-Cookie"].split("=")[0]
    second = a.client.get("/exp?hitId=H1&assignmentId=AB&workerId=WB&mode=sandbox")  # same browser
    assert second.status_code == 200
    assert first.startswith("turnout_t_")
    assert second.headers["Set-Cookie"].split("=")[0] not in ("", first)


def test_tokens_off_lets_writes_through_without_one(make_app, sqlite_url, make_participant, read_row) -> None:
    app = make_app(sqlite_url, participant_tokens="false")
    p = make_participant(app)
    p.open_exp()
    stranger = app.test_client()
    assert stranger.put(f"/sync/{p.uniqueid}", json={"data": [{}]}).json == {"status": "user data saved"}
    assert stranger.post("/inexp", data={"uniqueId": p.uniqueid}).json == {"status": "success"}
    assert stranger.get(f"/complete?uniqueId={p.uniqueid}&mode=sandbox").status_code == 200
    assert read_row(app, p.uniqueid).status == 3


def test_row_made_by_psiturk_without_a_token_stays_writable(app, fresh, read_row) -> None:
    # A study in progress when the lab switched from psiTurk must not lock its participants out.
    db = app.extensions["turnout"].db
    with db.begin() as session:
        session.get(db.models.Participant, fresh.uniqueid).token = None
    stranger = app.test_client()
    assert stranger.put(f"/sync/{fresh.uniqueid}", json={"data": [{}, {}]}).status_code == 200
    assert stranger.post("/inexp", data={"uniqueId": fresh.uniqueid}).status_code == 200
    assert json.loads(read_row(app, fresh.uniqueid).datastring) == {"data": [{}, {}]}
