"""/ad and /pub: the page MTurk shows in its frame, decided by what the database holds."""

from __future__ import annotations

import pytest


def test_preview_without_worker_shows_the_ad_and_stores_nothing(db_app, count_participants) -> None:
    response = db_app.test_client().get("/ad?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1&mode=sandbox")
    assert response.status_code == 200
    assert b'id="preview"' in response.data
    assert "no-cache" in response.headers["Cache-Control"]
    assert count_participants(db_app) == 0


@pytest.mark.parametrize("route", ["/ad", "/pub"])
def test_new_worker_gets_ad_with_mode_inserted_into_consent_link(db_app, make_participant, route: str) -> None:
    p = make_participant(db_app)
    response = p.client.get(f"{route}?{p.ids}")
    assert response.status_code == 200
    assert b'href="/consent?hitId=H1&assignmentId=A1&workerId=W1&mode=sandbox"' in response.data


def test_undefined_template_variable_renders_empty(db_app, make_participant) -> None:
    response = make_participant(db_app).ad()
    assert b'<p id="server"></p>' in response.data


def test_ad_is_shown_again_to_an_allocated_participant(db_app, make_participant) -> None:
    p = make_participant(db_app)
    p.open_exp()
    response = p.ad()
    assert response.status_code == 200
    assert b'id="begin"' in response.data


@pytest.mark.parametrize(("mode", "action"), [
    ("sandbox", b"https://workersandbox.mturk.com/mturk/externalSubmit"),
    ("live", b"https://www.mturk.com/mturk/externalSubmit"),
    ("local", b"/_mturk/mturk/externalSubmit"),
])
def test_completed_participant_gets_the_submit_page_for_their_marketplace(app, make_participant,
                                                                           mode: str, action: bytes) -> None:
    p = make_participant(app, mode=mode)
    p.open_exp()
    p.complete()
    response = p.ad()
    assert response.status_code == 200
    assert b'id="mturk_form"' in response.data
    assert b'action="' + action + b'"' in response.data
    assert b'name="assignmentId" value="A1"' in response.data
    assert "no-cache" in response.headers["Cache-Control"]


@pytest.mark.parametrize("status", [4, 5, 7])
def test_submitted_or_paid_participant_revisiting_gets_submit_page_not_error_1000(
        db_app, make_participant, force_status, status: int) -> None:
    p = make_participant(db_app)
    p.open_exp()
    force_status(db_app, p.uniqueid, status)
    response = p.ad()
    assert b"<b>Error</b>" not in response.data
    assert b'id="mturk_form"' in response.data


def test_submitted_with_other_assignments_and_repeats_allowed_gets_submit_page(
        make_app, shared_database_url, make_participant, force_status) -> None:
    app = make_app(shared_database_url, allow_repeats="true")
    make_participant(app, assignment="A0").open_exp()
    p = make_participant(app, assignment="A1")
    p.open_exp()
    force_status(app, p.uniqueid, 4)
    response = p.ad()
    assert b'id="mturk_form"' in response.data  # psiTurk: error 1000


def test_debug_hit_bypasses_the_already_started_check(db_app, make_participant) -> None:
    p = make_participant(db_app, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    p.open_exp()
    p.inexp()
    response = p.ad()
    assert b"<b>Error</b>" not in response.data
    assert b'id="begin"' in response.data


def test_debug_hit_bypasses_the_repeat_check_on_ad(db_app, make_participant) -> None:
    make_participant(db_app, worker="W5", assignment="A0").open_exp()
    response = make_participant(db_app, worker="W5", assignment="A1", hit="debugH").ad()
    assert b"<b>Error</b>" not in response.data


def test_allow_repeats_lets_a_returning_worker_see_a_new_ad(make_app, shared_database_url, make_participant) -> None:
    app = make_app(shared_database_url, allow_repeats="true")
    first = make_participant(app, assignment="A0")
    first.open_exp()
    first.complete()
    response = make_participant(app, assignment="A1").ad()
    assert b"<b>Error</b>" not in response.data
    assert b'id="begin"' in response.data


def test_repeat_check_looks_only_at_this_worker(db_app, make_participant) -> None:
    make_participant(db_app, worker="OTHER", assignment="A0").open_exp()
    response = make_participant(db_app, worker="W1", assignment="A1").ad()
    assert b'id="begin"' in response.data


def test_ad_never_changes_the_database(db_app, make_participant, read_row) -> None:
    p = make_participant(db_app)
    p.open_exp()
    before = read_row(db_app, p.uniqueid)
    p.ad()
    p.ad()
    after = read_row(db_app, p.uniqueid)
    assert (after.status, after.beginhit, after.endhit) == (before.status, before.beginhit, before.endhit)
