"""/inexp, /quitter, /complete, /worker_complete, /worker_submitted, /check_worker_status.

psiTurk's JSON bodies exactly; its status overwrites (weakness 6) not at all.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest


@pytest.fixture
def started(db_app, make_participant) -> Any:
    p = make_participant(db_app)
    p.open_exp()
    assert p.inexp().status_code == 200
    return p


# --- /inexp ------------------------------------------------------------------------------


def test_inexp_starts_the_experiment(db_app, make_participant, read_row, clock) -> None:
    p = make_participant(db_app)
    p.open_exp()
    clock.advance(90)
    response = p.inexp()
    assert response.status_code == 200
    assert response.json == {"status": "success"}
    stored = read_row(db_app, p.uniqueid)
    assert stored.status == 2
    assert stored.beginexp == clock.now()


def test_inexp_for_unknown_participant_is_404_json(db_app) -> None:
    response = db_app.test_client().post("/inexp", data={"uniqueId": "NOBODY:NOWHERE"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_inexp_after_complete_keeps_completed(started, db_app, read_row) -> None:
    started.complete()
    started.inexp()
    assert read_row(db_app, started.uniqueid).status == 3


def test_inexp_twice_keeps_the_first_start_time(started, db_app, read_row, clock) -> None:
    first = read_row(db_app, started.uniqueid).beginexp
    clock.advance(30)
    assert started.inexp().json == {"status": "success"}
    assert read_row(db_app, started.uniqueid).beginexp == first


# --- /quitter ----------------------------------------------------------------------------


def test_quitter_marks_a_started_participant(started, db_app, read_row) -> None:
    response = started.quitter()
    assert response.status_code == 200
    assert response.json == {"status": "marked as quitter"}
    assert read_row(db_app, started.uniqueid).status == 6


def test_quitter_leaves_a_debug_participant_alone(db_app, make_participant, read_row) -> None:
    p = make_participant(db_app, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    p.open_exp()
    p.inexp()
    response = p.quitter()
    assert response.json == {"status": "didn't mark as quitter since this is debugging"}
    assert read_row(db_app, p.uniqueid).status == 2


def test_quitter_without_uniqueid_is_400(app) -> None:
    assert app.test_client().post("/quitter", data={}).status_code == 400


def test_quitter_after_complete_keeps_completed(started, db_app, read_row) -> None:
    started.complete()
    response = started.quitter()
    assert response.status_code == 200
    assert "status" in response.json
    assert read_row(db_app, started.uniqueid).status == 3


def test_quitter_who_stays_can_still_complete(started, db_app, read_row) -> None:
    started.quitter()  # beforeunload fired, but the participant chose to stay on the page
    started.complete()
    assert read_row(db_app, started.uniqueid).status == 3


# --- /complete ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sandbox", "live", "local"])
def test_complete_on_a_marketplace_renders_closepopup(db_app, make_participant, read_row, clock, mode: str) -> None:
    p = make_participant(db_app, mode=mode)
    p.open_exp()
    p.inexp()
    clock.advance(600)
    response = p.complete()
    assert response.status_code == 200
    assert b'id="closepopup"' in response.data
    assert "no-cache" in response.headers["Cache-Control"]
    stored = read_row(db_app, p.uniqueid)
    assert stored.status == 3
    assert stored.endhit == clock.now()


def test_complete_in_debug_renders_the_complete_page(db_app, make_participant, read_row) -> None:
    p = make_participant(db_app, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    p.open_exp()
    response = p.complete()
    assert response.status_code == 200
    assert b"The experiment is complete" in response.data
    assert read_row(db_app, p.uniqueid).status == 3


def test_complete_twice_keeps_the_first_end_time(started, db_app, read_row, clock) -> None:
    started.complete()
    first = read_row(db_app, started.uniqueid).endhit
    clock.advance(timedelta(minutes=5))
    assert started.complete().status_code == 200
    assert read_row(db_app, started.uniqueid).endhit == first


@pytest.mark.parametrize("paid", [4, 5, 7])
def test_complete_after_submitted_or_paid_keeps_that_status(started, db_app, read_row, force_status, paid: int) -> None:
    started.complete()
    force_status(db_app, started.uniqueid, paid)
    response = started.complete()
    assert response.status_code == 200
    assert read_row(db_app, started.uniqueid).status == paid


def test_complete_after_credited_keeps_credited(started, db_app, read_row, force_status) -> None:
    started.complete()
    force_status(db_app, started.uniqueid, 5)
    started.complete()
    started.worker_complete()
    assert read_row(db_app, started.uniqueid).status == 5


# --- /worker_complete ----------------------------------------------------------------------


def test_worker_complete_sets_completed(started, db_app, read_row, clock) -> None:
    response = started.worker_complete()
    assert response.status_code == 200
    assert response.json == {"status": "success"}
    stored = read_row(db_app, started.uniqueid)
    assert stored.status == 3 and stored.endhit == clock.now()


def test_worker_complete_without_uniqueid_is_bad_request(app) -> None:
    response = app.test_client().get("/worker_complete")
    assert response.json == {"status": "bad request"}


def test_worker_complete_for_unknown_participant_is_404_json(db_app) -> None:
    response = db_app.test_client().get("/worker_complete?uniqueId=NOBODY:NOWHERE")
    assert response.status_code == 404
    assert response.json["status"] == "database error"


def test_worker_complete_after_bonused_keeps_bonused(started, db_app, read_row, force_status) -> None:
    started.complete()
    force_status(db_app, started.uniqueid, 7)
    assert started.worker_complete().status_code == 200
    assert read_row(db_app, started.uniqueid).status == 7


# --- /worker_submitted ---------------------------------------------------------------------


def test_worker_submitted_after_complete_sets_submitted(started, db_app, read_row) -> None:
    started.complete()
    response = started.worker_submitted()
    assert response.status_code == 200
    assert response.json == {"status": "success"}
    assert read_row(db_app, started.uniqueid).status == 4


def test_worker_submitted_needs_no_token_because_the_ad_frame_calls_it(started, db_app, read_row) -> None:
    started.complete()
    response = db_app.test_client().get(f"/worker_submitted?uniqueId={started.uniqueid}")
    assert response.json == {"status": "success"}
    assert read_row(db_app, started.uniqueid).status == 4


def test_worker_submitted_before_complete_is_refused_and_changes_nothing(started, db_app, read_row) -> None:
    response = started.worker_submitted()
    assert response.status_code == 409
    assert read_row(db_app, started.uniqueid).status == 2


@pytest.mark.parametrize("paid", [5, 7])
def test_worker_submitted_after_paid_succeeds_and_keeps_status(started, db_app, read_row, force_status,
                                                               paid: int) -> None:
    started.complete()
    force_status(db_app, started.uniqueid, paid)
    assert started.worker_submitted().json == {"status": "success"}
    assert read_row(db_app, started.uniqueid).status == paid


def test_worker_submitted_without_uniqueid_is_bad_request(app) -> None:
    assert app.test_client().get("/worker_submitted").json == {"status": "bad request"}


def test_worker_submitted_for_unknown_participant_is_404_json(db_app) -> None:
    response = db_app.test_client().get("/worker_submitted?uniqueId=NOBODY:NOWHERE")
    assert response.status_code == 404
    assert response.json["status"] == "database error"


# --- the whole flow leaves an audit trail ----------------------------------------------------


def test_every_status_change_is_recorded_once(started, db_app, transitions) -> None:
    started.quitter()
    started.inexp()
    started.complete()
    started.complete()
    started.worker_submitted()
    started.quitter()  # refused: finished
    assert transitions(db_app, started.uniqueid) == [
        (None, 1, "exp"), (1, 2, "inexp"), (2, 6, "quitter"), (6, 2, "inexp"), (2, 3, "complete"),
        (3, 4, "worker_submitted")]


# --- /check_worker_status ----------------------------------------------------------------


def test_check_worker_status_for_unknown_worker_is_zero(db_app) -> None:
    response = db_app.test_client().get("/check_worker_status?workerId=NOBODY&assignmentId=A1")
    assert response.status_code == 200
    assert response.json == {"status": 0}


def test_check_worker_status_follows_the_participant(db_app, make_participant) -> None:
    p = make_participant(db_app)
    check = f"/check_worker_status?workerId={p.worker}&assignmentId={p.assignment}"
    p.open_exp()
    assert p.client.get(check).json == {"status": 1}
    p.inexp()
    assert p.client.get(check).json == {"status": 2}
    p.complete()
    assert p.client.get(check).json == {"status": 3}


def test_check_worker_status_is_the_highest_over_all_assignments(db_app, make_participant, force_status) -> None:
    make_participant(db_app, worker="W3", assignment="A0").open_exp()
    force_status(db_app, "W3:A0", 5)
    response = db_app.test_client().get("/check_worker_status?workerId=W3&assignmentId=A9")
    assert response.json == {"status": 5}


def test_check_worker_status_with_repeats_looks_at_that_assignment(make_app, shared_database_url,
                                                                   make_participant, force_status) -> None:
    app = make_app(shared_database_url, allow_repeats="true")
    make_participant(app, worker="W3", assignment="A0").open_exp()
    force_status(app, "W3:A0", 5)
    client = app.test_client()
    assert client.get("/check_worker_status?workerId=W3&assignmentId=A9").json == {"status": 0}
    assert client.get("/check_worker_status?workerId=W3&assignmentId=A0").json == {"status": 5}


def test_check_worker_status_without_worker_is_bad_request(app) -> None:
    assert app.test_client().get("/check_worker_status").json == {"status": "bad request"}


def test_check_worker_status_never_changes_anything(db_app, make_participant, read_row) -> None:
    p = make_participant(db_app)
    p.open_exp()
    p.client.get(f"/check_worker_status?workerId={p.worker}&assignmentId={p.assignment}")
    assert read_row(db_app, p.uniqueid).status == 1
