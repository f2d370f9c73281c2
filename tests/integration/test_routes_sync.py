"""/sync/<uniqueId> GET and PUT: psiturk.js's Backbone model on the wire."""

from __future__ import annotations

import json


def test_fresh_participant_gets_psiturks_six_fields(db_app, make_participant, read_row) -> None:
    p = make_participant(db_app)
    p.open_exp()
    response = p.load()
    assert response.status_code == 200
    stored = read_row(db_app, p.uniqueid)
    assert response.json == {"assignmentId": "A1", "bonus": 0.0, "condition": stored.cond,
                             "counterbalance": 0, "hitId": "H1", "workerId": "W1"}


def test_put_stores_the_body_and_answers_psiturks_status(db_app, make_participant, read_row) -> None:
    p = make_participant(db_app)
    p.open_exp()
    response = p.save(3, questiondata={"age": "30"})
    assert response.status_code == 200
    assert response.json == {"status": "user data saved"}
    stored = json.loads(read_row(db_app, p.uniqueid).datastring)
    assert len(stored["data"]) == 3
    assert stored["questiondata"] == {"age": "30"}
    assert read_row(db_app, p.uniqueid).trial_count == 3


def test_get_returns_the_stored_json_verbatim(db_app, make_participant) -> None:
    p = make_participant(db_app)
    p.open_exp()
    p.save(2, mode="sandbox", useragent="UA", nested={"deep": [1, 2, {"x": None}]}, unicode="ünï☃")
    body = p.load().json
    assert body["nested"] == {"deep": [1, 2, {"x": None}]}
    assert body["unicode"] == "ünï☃"
    assert [t["current_trial"] for t in body["data"]] == [0, 1]


def test_uniqueid_colon_sent_as_percent_3a_and_raw_both_work(db_app, make_participant) -> None:
    p = make_participant(db_app)
    p.open_exp()
    p.save(1)
    encoded = p.client.get("/sync/W1%3AA1", headers=p.headers)
    raw = p.client.get("/sync/W1:A1", headers=p.headers)
    assert encoded.status_code == raw.status_code == 200
    assert encoded.json == raw.json
    put = p.client.put("/sync/W1%3AA1", json={"data": [{}, {}]}, headers=p.headers)
    assert put.json == {"status": "user data saved"}


def test_put_does_not_copy_bonus_into_the_column(db_app, make_participant, read_row) -> None:
    # psiTurk never did: the bonus column is written by the project's compute_bonus only.
    p = make_participant(db_app)
    p.open_exp()
    p.save(1, bonus=99)
    assert read_row(db_app, p.uniqueid).bonus == 0


def test_large_datastring_round_trips(db_app, make_participant) -> None:
    # MySQL TEXT stops at 64 KiB; psiTurk's column is LONGTEXT there, and so is turnout's.
    p = make_participant(db_app)
    p.open_exp()
    blob = "x" * 300_000
    assert p.save(1, blob=blob).status_code == 200
    assert p.load().json["blob"] == blob


def test_debug_participant_syncs_like_any_other(db_app, make_participant) -> None:
    p = make_participant(db_app, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    p.open_exp()
    assert p.save(2).json == {"status": "user data saved"}
    assert len(p.load().json["data"]) == 2
