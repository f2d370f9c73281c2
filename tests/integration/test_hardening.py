"""Issue 6 (participant side): the token cannot be taken, no save can lock a participant
out, and hostile input is a 4xx that leaves the stored data as it was.

An existing participant's token used to be handed to anyone who asked /exp with their
workerId and assignmentId (e.g. with a ``debug...`` hitId and mode=live after they had
submitted); with it a stranger could read and overwrite the data and plant a save stamp
from the far future so that every later real save was refused with 409.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from turnout.services.participants import DOUBLE_LOAD_WINDOW

TOKEN_META = re.compile(rb'name="turnout-participant-token" content="([^"]+)"')


def snapshot(app: Any, read_row: Any, uniqueid: str) -> tuple[Any, ...]:
    found = read_row(app, uniqueid)
    return found.status, found.datastring, found.trial_count, found.token, found.save_key, found.hitid, found.mode


def page_load_stamp(clock: Any, ahead: timedelta = timedelta(0), seq: int = 1) -> str:
    ms = int((clock.now() + ahead).timestamp() * 1000)
    return f"{ms:013d}-0a1b2c3d.{seq}"


@pytest.fixture
def submitted(db_app, make_participant) -> Any:
    """A live participant who saved data, finished and submitted."""
    p = make_participant(db_app, worker="WREAL", assignment="AREAL", hit="HREAL", mode="live")
    p.open_exp()
    p.inexp()
    assert p.save(3).status_code == 200
    assert p.complete().status_code == 200
    assert p.worker_submitted().status_code == 200
    return p


# --- 1. the stored token goes only to the browser that began -----------------------------


@pytest.mark.parametrize("hit", ["debugSTEAL", "HREAL", "HOTHER"])
def test_exp_for_a_submitted_participant_never_hands_out_their_token(db_app, submitted, make_participant,
                                                                     read_row, hit: str) -> None:
    before = snapshot(db_app, read_row, submitted.uniqueid)
    thief = make_participant(db_app, worker="WREAL", assignment="AREAL", hit=hit, mode="live")
    response = thief.open_exp()
    assert response.status_code == 200
    assert b"<b>Error</b>: 1008" in response.data
    assert submitted.token.encode() not in response.data
    assert thief.token is None
    assert submitted.token not in response.headers.get("Set-Cookie", "")
    assert snapshot(db_app, read_row, submitted.uniqueid) == before  # the stored hitId stays


def test_exp_for_an_allocated_participant_from_another_browser_is_1008_without_the_token(
        db_app, make_participant, read_row, clock) -> None:
    first = make_participant(db_app)
    first.open_exp()
    clock.advance(DOUBLE_LOAD_WINDOW.total_seconds() + 1)
    before = snapshot(db_app, read_row, first.uniqueid)
    stranger = make_participant(db_app, hit="debugX", mode="debug")
    response = stranger.open_exp()
    assert b"<b>Error</b>: 1008" in response.data
    assert stranger.token is None and first.token.encode() not in response.data
    assert snapshot(db_app, read_row, first.uniqueid) == before


def test_a_double_load_within_seconds_of_the_first_is_served_the_same_participation(
        db_app, make_participant, read_row, clock) -> None:
    # A double click sends both requests before either answer (and its cookie) arrives.
    first = make_participant(db_app)
    first.open_exp()
    clock.advance(DOUBLE_LOAD_WINDOW.total_seconds() - 1)
    second = make_participant(db_app)  # same ids, no cookie
    response = second.open_exp()
    assert b"<b>Error</b>: 1008" not in response.data
    assert second.token == first.token == read_row(db_app, first.uniqueid).token


def test_a_load_within_the_double_load_window_from_another_address_gets_1008(
        db_app, make_participant, read_row, clock) -> None:
    # The double-load exception is for the same browser's second request. A stranger who
    # learns the ids at the moment the row appears (GET /check_worker_status tells when,
    # and the local worker site lists any worker's assignments) must not get the token.
    first = make_participant(db_app)
    first.open_exp()
    clock.advance(1)
    before = snapshot(db_app, read_row, first.uniqueid)
    stranger = make_participant(db_app)  # same ids, no cookie, another machine
    stranger.client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    response = stranger.open_exp()
    assert b"<b>Error</b>: 1008" in response.data
    assert stranger.token is None and first.token.encode() not in response.data
    assert snapshot(db_app, read_row, first.uniqueid) == before


def test_a_load_within_the_double_load_window_from_another_browser_program_gets_1008(
        db_app, make_participant, read_row, clock) -> None:
    first = make_participant(db_app)
    first.client.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
    first.open_exp()
    stranger = make_participant(db_app)
    stranger.client.environ_base["HTTP_USER_AGENT"] = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                                                       "(KHTML, like Gecko) Chrome/120.0 Safari/537.36")
    response = stranger.open_exp()
    assert b"<b>Error</b>: 1008" in response.data
    assert stranger.token is None


def test_returning_participant_with_its_cookie_gets_the_same_page_and_token(db_app, make_participant,
                                                                           read_row) -> None:
    p = make_participant(db_app)
    p.open_exp()
    token = p.token
    again = p.open_exp()  # same browser: the cookie from the first /exp proves it
    assert again.status_code == 200 and b"exp for W1:A1" in again.data
    assert p.token == token == read_row(db_app, p.uniqueid).token


def test_returning_participant_keeps_its_stored_mode_whatever_the_link_says(db_app, make_participant) -> None:
    p = make_participant(db_app, mode="live")
    p.open_exp()
    again = p.client.get("/exp?hitId=debugX&assignmentId=A1&workerId=W1&mode=debug")
    assert b'var mode = "live"' in again.data


def test_debug_hitid_on_the_ad_does_not_make_a_real_row_a_debug_one(db_app, make_participant) -> None:
    p = make_participant(db_app)
    p.open_exp()
    p.inexp()
    response = p.client.get("/ad?hitId=debugX&assignmentId=A1&workerId=W1&mode=live")
    assert b"<b>Error</b>: 1009" in response.data


def test_debug_run_reopened_in_another_browser_gets_a_fresh_token(db_app, make_participant, read_row) -> None:
    first = make_participant(db_app, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    first.open_exp()
    first.inexp()
    other = make_participant(db_app, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    response = other.open_exp()
    assert b"exp for debugW:debugA" in response.data
    assert other.token and other.token != first.token
    assert read_row(db_app, first.uniqueid).token == other.token
    assert first.save(1).status_code == 403  # the old browser's token no longer works


# --- 1. save stamps from the future ------------------------------------------------------


def _stamped_save(p: Any, trials: int, stamp: str) -> Any:
    body = {"data": [{"current_trial": i, "trialdata": {"t": i}} for i in range(trials)]}
    return p.client.put(f"/sync/{p.uniqueid}", json=body, headers={**p.headers, "X-Turnout-Save": stamp})


def test_a_save_stamp_from_the_future_is_refused_and_a_later_real_save_accepted(db_app, make_participant,
                                                                                read_row, clock) -> None:
    p = make_participant(db_app)
    p.open_exp()
    assert _stamped_save(p, 2, page_load_stamp(clock)).status_code == 200
    before = snapshot(db_app, read_row, p.uniqueid)
    planted = _stamped_save(p, 1, "9999999999999-ffffffff.999999999")
    assert planted.status_code == 400
    assert "ahead" in planted.json["error"]["message"]
    assert snapshot(db_app, read_row, p.uniqueid) == before
    clock.advance(60)
    assert _stamped_save(p, 3, page_load_stamp(clock)).status_code == 200
    assert read_row(db_app, p.uniqueid).trial_count == 3


def test_a_stamp_a_little_ahead_is_accepted_but_not_beyond_the_margin(app, make_participant, clock) -> None:
    from turnout.services.participants import SAVE_STAMP_MAX_AHEAD

    p = make_participant(app)
    p.open_exp()
    assert _stamped_save(p, 1, page_load_stamp(clock, SAVE_STAMP_MAX_AHEAD - timedelta(seconds=1))).status_code == 200
    assert _stamped_save(p, 2, page_load_stamp(clock, SAVE_STAMP_MAX_AHEAD + timedelta(seconds=1),
                                               seq=2)).status_code == 400


def test_a_future_stamp_stored_before_the_fix_does_not_lock_the_participant_out(db_app, make_participant,
                                                                                read_row, clock) -> None:
    p = make_participant(db_app)
    p.open_exp()
    db = db_app.extensions["turnout"].db
    P = db.models.Participant
    with db.begin() as session:
        session.get(P, p.uniqueid).save_key = "9999999999999-ffffffff.999999999"
    assert _stamped_save(p, 4, page_load_stamp(clock)).status_code == 200
    assert read_row(db_app, p.uniqueid).trial_count == 4


def test_exp_page_carries_the_servers_page_load_time_for_the_save_stamp(app, make_participant, clock) -> None:
    p = make_participant(app)
    response = p.open_exp()
    expected = int(clock.now().timestamp() * 1000)
    assert f'<meta name="turnout-page-load" content="{expected}">'.encode() in response.data


# --- 2 and 5. what a save may not hold ----------------------------------------------------

REFUSED_BODIES = {
    "lone_surrogate": b'{"questiondata": {"s": "\\ud800"}}',
    "lone_low_surrogate": b'{"data": [{"trialdata": {"x": "a\\udc00b"}}]}',
    "nan": b'{"questiondata": {"n": NaN}}',
    "infinity": b'{"data": [{"trialdata": {"rt": Infinity}}]}',
    "minus_infinity": b'{"questiondata": {"n": -Infinity}}',
    "deep_nesting": b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep_objects": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    # Numbers too large for a double: Python read them as inf and GET /sync wrote Infinity back.
    "overflowing_float": b'{"data": [{"trialdata": {"rt": 1e999}}]}',
    "overflowing_negative_float": b'{"questiondata": {"x": -1e400}}',
}


@pytest.mark.parametrize("name", list(REFUSED_BODIES))
def test_a_save_that_cannot_be_read_back_is_400_json_and_changes_nothing(db_app, make_participant, read_row,
                                                                         name: str) -> None:
    p = make_participant(db_app)
    p.open_exp()
    assert p.save(2).status_code == 200
    before = snapshot(db_app, read_row, p.uniqueid)
    response = p.client.put(f"/sync/{p.uniqueid}", data=REFUSED_BODIES[name], content_type="application/json",
                            headers=p.headers)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_input"
    assert "nothing was saved" in response.json["error"]["message"]
    assert snapshot(db_app, read_row, p.uniqueid) == before


def test_deep_nesting_without_a_token_is_400_not_500(app) -> None:
    response = app.test_client().put("/sync/NOBODY:NOWHERE", data=REFUSED_BODIES["deep_nesting"],
                                     content_type="application/json")
    assert response.status_code == 400


def test_a_paired_surrogate_escape_is_ordinary_text_and_saved(app, make_participant) -> None:
    p = make_participant(app)
    p.open_exp()
    response = p.client.put(f"/sync/{p.uniqueid}", data=b'{"questiondata": {"e": "\\ud83d\\ude00"}}',
                            content_type="application/json", headers=p.headers)
    assert response.status_code == 200
    assert p.load().json["questiondata"]["e"] == "\U0001F600"


# --- 5. NUL characters anywhere in a participant request -----------------------------------

NUL_REQUESTS = [
    ("get", "/%00", {}),
    ("get", "/instructions/%00.html", {}),
    ("get", "/favicon.ico%00", {}),
    ("get", "/sync/W1:A1%00", {}),
    ("put", "/sync/W1%00:A1", {"json": {"data": []}}),
    ("post", "/inexp", {"data": {"uniqueId": "W1:A1\x00"}}),
    ("post", "/quitter", {"data": {"uniqueId": "W1\x00:A1"}}),
    ("get", "/complete?uniqueId=W1:A1%00&mode=sandbox", {}),
    ("get", "/worker_complete?uniqueId=W1%00", {}),
    ("get", "/worker_submitted?uniqueId=W1%00", {}),
    ("get", "/check_worker_status?workerId=W1%00", {}),
    ("get", "/check_worker_status?workerId=W1&assignmentId=%00", {}),
    ("get", "/ad?hitId=H1&assignmentId=A1&workerId=W1&mode=sandbox&x%00=1", {}),
    ("get", "/exp?hitId=H1&assignmentId=A1&workerId=W1&mode=sandbox&extra=%00", {}),
    ("get", "/consent?hitId=H1&assignmentId=A1&workerId=W1%00&mode=sandbox", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), NUL_REQUESTS, ids=[r[1] for r in NUL_REQUESTS])
def test_a_nul_character_is_a_400_and_changes_nothing(db_app, make_participant, read_row, method: str,
                                                      path: str, kwargs: dict[str, Any]) -> None:
    p = make_participant(db_app)
    p.open_exp()
    before = snapshot(db_app, read_row, p.uniqueid)
    response = getattr(p.client, method)(path, headers=p.headers, **kwargs)
    assert response.status_code == 400, response.data[:200]
    assert snapshot(db_app, read_row, p.uniqueid) == before


# --- issue 11 item 2: debug mode never sends "Submit HIT" to MTurk ----------------------------


@pytest.fixture
def finished_debug(db_app, make_participant) -> Any:
    p = make_participant(db_app, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    p.open_exp()
    p.inexp()
    assert p.complete().status_code == 200
    return p


def test_finished_debug_run_revisiting_the_ad_gets_the_debug_thanks_page(db_app, finished_debug) -> None:
    response = finished_debug.ad()
    assert response.status_code == 200
    assert b"mturk.com" not in response.data and b"externalSubmit" not in response.data
    assert b"Thank you" in response.data and b'id="new-debug-link"' in response.data


def test_finished_real_participant_revisiting_the_ad_still_gets_the_submit_form(db_app, make_participant) -> None:
    p = make_participant(db_app)
    p.open_exp()
    p.complete()
    assert b"workersandbox.mturk.com/mturk/externalSubmit" in p.ad().data


@pytest.mark.parametrize("same_browser", [True, False])
def test_finished_debug_run_reopening_exp_is_told_it_has_finished(db_app, finished_debug, make_participant,
                                                                  read_row, same_browser: bool) -> None:
    before = snapshot(db_app, read_row, finished_debug.uniqueid)
    visitor = finished_debug if same_browser else make_participant(
        db_app, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    response = visitor.client.get(f"/exp?{finished_debug.ids}")
    assert response.status_code == 200
    assert b"exp for" not in response.data  # not the instructions again
    assert b"The experiment is complete" in response.data and b'id="new-debug-link"' in response.data
    assert finished_debug.token.encode() not in response.data
    assert snapshot(db_app, read_row, finished_debug.uniqueid) == before


def test_project_complete_page_offers_a_new_participant_link(make_app, sqlite_url, project_dir,
                                                             make_participant) -> None:
    import shutil
    from importlib import resources

    template = resources.files("turnout").joinpath("project_template/templates")
    with resources.as_file(template) as source:
        shutil.copytree(source, project_dir / "templates", dirs_exist_ok=True)
    app = make_app(sqlite_url)
    p = make_participant(app, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    p.open_exp()
    p.complete()
    page = p.client.get(f"/exp?{p.ids}").data
    assert b"Debug run complete" in page and b"Start a run as a new worker" in page


# --- docs/security.md's reverse-proxy recipe works as documented -----------------------------


def test_proxyfix_in_custom_init_app_gives_the_real_address_and_a_secure_cookie(make_app, sqlite_url, project_file,
                                                                                read_row) -> None:
    project_file("custom.py", "from werkzeug.middleware.proxy_fix import ProxyFix\n\n"
                              "def init_app(app):\n    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)\n")
    app = make_app(sqlite_url)
    response = app.test_client().get("/exp?hitId=H1&assignmentId=A1&workerId=W1&mode=live",
                                     headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    assert read_row(app, "W1:A1").ipaddress == "203.0.113.7"
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "SameSite=None" in cookie


# --- what an older (psiTurk) row may already hold, read back by GET /sync ---------------------


@pytest.mark.parametrize(("stored", "expected"), [
    ('{"q": NaN, "data": [Infinity]}', {"q": None, "data": [None]}),
    ('{"q": 1e999, "data": [-1e400, 2.5]}', {"q": None, "data": [None, 2.5]}),
    ('{"d": ' + "[" * 5000 + "]" * 5000 + "}", None),  # unreadable: psiTurk's column summary instead
])
def test_stored_data_the_browser_could_not_parse_is_served_readably(db_app, make_participant, stored: str,
                                                                    expected: Any) -> None:
    p = make_participant(db_app)
    p.open_exp()
    db = db_app.extensions["turnout"].db
    with db.begin() as session:
        session.get(db.models.Participant, p.uniqueid).datastring = stored
    response = p.load()
    assert response.status_code == 200
    assert b"NaN" not in response.data and b"Infinity" not in response.data
    if expected is None:
        assert response.json["workerId"] == "W1" and "d" not in response.json
    else:
        assert response.json == expected


def test_thanks_page_submits_to_the_marketplace_the_participant_came_from(db_app, make_participant) -> None:
    p = make_participant(db_app, mode="sandbox")
    p.open_exp()
    p.complete()
    page = p.client.get(f"/ad?hitId={p.hit}&assignmentId={p.assignment}&workerId={p.worker}&mode=live").data
    assert b"workersandbox.mturk.com/mturk/externalSubmit" in page
    assert b"www.mturk.com" not in page
