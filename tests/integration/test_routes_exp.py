"""/exp: one row per participant, psiTurk's template variables, balanced conditions, no races."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from typing import Any

import pytest

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")


def exp_vars(html: bytes) -> dict[str, str]:
    """The variables the minimal project's exp.html writes into its script block."""
    text = html.decode()
    return dict(re.findall(r'var (\w+) = "?([^";]*)"?;', text))


def insert_row(app: Any, uniqueid: str, *, cond: int, status: int, minutes_ago: float = 0,
               mode: str = "sandbox", codeversion: str = "1.0") -> None:
    ctx = app.extensions["turnout"]
    P = ctx.db.models.Participant
    worker, assignment = uniqueid.split(":")
    with ctx.db.begin() as session:
        session.add(P(uniqueid=uniqueid, workerid=worker, assignmentid=assignment, hitid="H0", cond=cond,
                      counterbalance=0, status=status, mode=mode, codeversion=codeversion,
                      beginhit=ctx.clock.now() - timedelta(minutes=minutes_ago)))


def test_first_visit_creates_one_allocated_row_with_request_details(db_app, make_participant, read_row, clock) -> None:
    p = make_participant(db_app)
    response = p.client.get(f"/exp?{p.ids}", headers={"User-Agent": CHROME, "Accept-Language": "de-DE"})
    assert response.status_code == 200
    stored = read_row(db_app, "W1:A1")
    assert (stored.workerid, stored.assignmentid, stored.hitid) == ("W1", "A1", "H1")
    assert stored.status == 1
    assert stored.mode == "sandbox"
    assert stored.codeversion == "1.0"
    assert stored.cond in (0, 1) and stored.counterbalance == 0
    assert stored.beginhit == clock.now()
    assert stored.beginexp is None and stored.endhit is None
    assert stored.bonus == 0
    assert stored.ipaddress == "127.0.0.1"
    assert stored.browser == "chrome" and stored.platform == "linux"
    assert stored.language == "de-DE"


def test_missing_request_details_are_stored_as_unknown(db_app, read_row) -> None:
    db_app.test_client().get("/exp?hitId=H1&assignmentId=A1&workerId=W1&mode=sandbox",
                             headers={"User-Agent": ""})
    stored = read_row(db_app, "W1:A1")
    assert stored.language == "UNKNOWN"
    assert stored.browser and stored.platform  # never NULL


def test_first_visit_is_recorded_as_a_transition_to_allocated(db_app, make_participant, transitions) -> None:
    p = make_participant(db_app)
    p.open_exp()
    assert transitions(db_app, p.uniqueid) == [(None, 1, "exp")]


def test_exp_template_variables_equal_the_database_row(db_app, make_participant, read_row) -> None:
    p = make_participant(db_app)
    response = p.open_exp()
    stored = read_row(db_app, p.uniqueid)
    assert exp_vars(response.data) == {
        "uniqueId": stored.uniqueid, "condition": str(stored.cond), "counterbalance": str(stored.counterbalance),
        "codeversion": stored.codeversion, "contact_address": "lab@example.org", "adServerLoc": "/complete",
        "mode": stored.mode,
    }
    assert "no-cache" in response.headers["Cache-Control"]


def test_exp_page_carries_the_participant_token_first_in_head_and_as_cookie(db_app, make_participant, read_row) -> None:
    p = make_participant(db_app)
    response = p.open_exp()
    stored = read_row(db_app, p.uniqueid)
    assert p.token == stored.token and len(p.token) >= 32
    assert re.search(rb'<head><meta name="turnout-participant-token" content="[^"]+">', response.data)
    cookie = response.headers["Set-Cookie"]
    assert p.token in cookie and "HttpOnly" in cookie


def test_reload_of_exp_keeps_one_row_with_the_same_token_and_start(db_app, make_participant, read_row,
                                                                  count_participants, clock) -> None:
    p = make_participant(db_app)
    p.open_exp()
    first = read_row(db_app, p.uniqueid)
    token = p.token
    clock.advance(60)
    again = p.open_exp()
    assert again.status_code == 200
    assert p.token == token
    assert count_participants(db_app) == 1
    assert read_row(db_app, p.uniqueid).beginhit == first.beginhit
    assert exp_vars(again.data)["condition"] == str(first.cond)


def test_concurrent_first_loads_make_one_row_and_no_error(db_app, count_participants, read_row) -> None:
    url = "/exp?hitId=H1&assignmentId=A1&workerId=W1&mode=sandbox"
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def load() -> None:
        client = db_app.test_client()
        barrier.wait()
        results.append(client.get(url))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 6
    assert all(b"exp for W1:A1" in r.data for r in results)
    assert count_participants(db_app) == 1
    token = read_row(db_app, "W1:A1").token
    assert all(token.encode() in r.data for r in results)


def test_concurrent_new_participants_are_balanced_across_conditions(db_app, read_row) -> None:
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def load(i: int) -> None:
        client = db_app.test_client()
        barrier.wait()
        codes.append(client.get(f"/exp?hitId=H1&assignmentId=A{i}&workerId=W{i}&mode=sandbox").status_code)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 8
    conds = [read_row(db_app, f"W{i}:A{i}").cond for i in range(8)]
    assert sorted(conds) == [0, 0, 0, 0, 1, 1, 1, 1]


def test_sequential_first_visits_do_not_wait_on_a_lock_left_behind(db_app) -> None:
    # MariaDB named locks belong to a connection: one left held on a pooled connection
    # made every later first visit wait out the lock timeout and fail with 503.
    db = db_app.extensions["turnout"].db
    warm = [db.engine.connect() for _ in range(4)]
    for conn in warm:
        conn.close()
    client = db_app.test_client()
    codes = [client.get(f"/exp?hitId=H1&assignmentId=A{i}&workerId=W{i}&mode=sandbox").status_code
             for i in range(4)]
    assert codes == [200, 200, 200, 200]


# --- counterbalancing counts psiTurk's way -------------------------------------------------


def chosen_condition(app: Any, worker: str = "NEW") -> int:
    response = app.test_client().get(f"/exp?hitId=H1&assignmentId=A1&workerId={worker}&mode=sandbox")
    assert response.status_code == 200
    return int(exp_vars(response.data)["condition"])


def test_new_participant_goes_to_the_condition_with_fewer_finished(db_app) -> None:
    insert_row(db_app, "X1:A", cond=0, status=3, minutes_ago=600)
    assert chosen_condition(db_app) == 1


@pytest.mark.parametrize("status", [3, 4, 5, 7])
def test_finished_participants_count_however_long_ago_they_started(db_app, status: int) -> None:
    insert_row(db_app, "X1:A", cond=1, status=status, minutes_ago=10_000)
    assert chosen_condition(db_app) == 0


def test_recent_unfinished_participants_count(db_app) -> None:
    insert_row(db_app, "X1:A", cond=0, status=2, minutes_ago=5)
    insert_row(db_app, "X2:A", cond=0, status=6, minutes_ago=5)
    insert_row(db_app, "X3:A", cond=1, status=3, minutes_ago=5)
    assert chosen_condition(db_app) == 1


def test_unfinished_participants_older_than_cutoff_do_not_count(db_app) -> None:
    insert_row(db_app, "X1:A", cond=0, status=1, minutes_ago=31)
    insert_row(db_app, "X2:A", cond=0, status=6, minutes_ago=45)
    insert_row(db_app, "X3:A", cond=1, status=3, minutes_ago=45)
    assert chosen_condition(db_app) == 0


def test_other_codeversions_and_modes_do_not_count(db_app) -> None:
    for i in range(3):
        insert_row(db_app, f"V{i}:A", cond=0, status=3, codeversion="0.9")
        insert_row(db_app, f"M{i}:A", cond=0, status=3, mode="live")
    insert_row(db_app, "X3:A", cond=1, status=3)
    assert chosen_condition(db_app) == 0


def test_conditions_json_keys_set_the_number_of_conditions(make_app, shared_database_url, project_file) -> None:
    project_file("conditions.json", json.dumps({"red": {}, "green": {}, "blue": {}}))
    app = make_app(shared_database_url)
    insert_row(app, "X1:A", cond=0, status=3)
    insert_row(app, "X2:A", cond=1, status=3)
    assert chosen_condition(app) == 2


# --- repeats and restarts ----------------------------------------------------------------


def test_worker_with_another_assignment_is_not_served_that_assignments_record(db_app, make_participant) -> None:
    make_participant(db_app, worker="W2", assignment="A0").open_exp()
    response = make_participant(db_app, worker="W2", assignment="A9").open_exp()
    assert b"<b>Error</b>: 1010" in response.data
    assert b"W2:A0" not in response.data  # psiTurk served the old uniqueId here


def test_allow_repeats_gives_a_returning_worker_a_new_row(make_app, shared_database_url, make_participant,
                                                          count_participants) -> None:
    app = make_app(shared_database_url, allow_repeats="true")
    first = make_participant(app, worker="W2", assignment="A0")
    first.open_exp()
    first.complete()
    second = make_participant(app, worker="W2", assignment="A9")
    response = second.open_exp()
    assert b"exp for W2:A9" in response.data
    assert count_participants(app) == 2


def test_allow_repeats_still_refuses_restarting_a_started_assignment(make_app, shared_database_url,
                                                                     make_participant) -> None:
    app = make_app(shared_database_url, allow_repeats="true")
    p = make_participant(app)
    p.open_exp()
    p.inexp()
    assert b"<b>Error</b>: 1008" in p.open_exp().data


def test_debug_participant_may_reload_a_started_experiment(db_app, make_participant, read_row) -> None:
    p = make_participant(db_app, worker="debugW", assignment="debugA", hit="debugH", mode="debug")
    p.open_exp()
    p.inexp()
    response = p.open_exp()
    assert b"exp for debugW:debugA" in response.data
    assert read_row(db_app, p.uniqueid).status == 2
