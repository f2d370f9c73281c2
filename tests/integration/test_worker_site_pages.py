"""The worker site's pages and rules, through the mounted WSGI stack (no browser).

The browser test (tests/browser/test_worker_site.py) walks the whole journey in Chromium;
these pin each page's access and input rules, one behaviour per test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from servers import init_project
from simulation_stack import Study, running_study

SITE = "/_mturk/worker"


@pytest.fixture
def study(tmp_path: Path) -> Any:
    with running_study(init_project(tmp_path / "study")) as running:
        yield running


@pytest.fixture
def client(study: Study) -> Any:
    return study.app.test_client()


def csrf(client: Any) -> str:
    page = client.get(f"{SITE}/workers")
    return re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def sign_in(client: Any, worker_id: str | None = None) -> str:
    form = {"csrf": csrf(client), **({"worker_id": worker_id} if worker_id else {"action": "new"})}
    reply = client.post(f"{SITE}/workers", data=form)
    assert reply.status_code == 303
    return client.get_cookie("turnout_worker", path=f"{SITE}/").value


def test_pages_need_a_worker_first(client: Any):
    reply = client.get(f"{SITE}/")
    assert reply.status_code == 303 and reply.headers["Location"].endswith(f"{SITE}/workers")


def test_typing_a_new_worker_id_registers_it(client: Any, study: Study):
    assert sign_in(client, "a1b2c3test") == "A1B2C3TEST"
    assert study.state.workers.get("A1B2C3TEST").country == "US"


def test_a_malformed_worker_id_is_refused(client: Any):
    reply = client.post(f"{SITE}/workers", data={"csrf": csrf(client), "worker_id": "bob"})
    assert reply.status_code == 400
    assert "A followed by capital letters and digits" in reply.get_data(as_text=True)


def test_forms_without_the_csrf_token_change_nothing(client: Any, study: Study):
    csrf(client)  # the cookie is set, but the form does not echo it
    reply = client.post(f"{SITE}/workers", data={"action": "new"})
    assert reply.status_code == 403
    assert study.state.workers.all() == []


def test_state_changes_are_post_only(client: Any, study: Study):
    hit_id = study.post_hit(assignments=1)
    sign_in(client)
    assert client.get(f"{SITE}/hits/{hit_id}/accept").status_code == 405
    assert study.state.assignments_for_hit(hit_id) == []


def test_hit_list_shows_what_this_worker_can_take(client: Any, study: Study):
    hit_id = study.post_hit(assignments=2, title="Listed study", reward="0.75")
    sign_in(client)
    page = client.get(f"{SITE}/").get_data(as_text=True)
    assert f'data-hit-id="{hit_id}"' in page and "Listed study" in page and "$0.75" in page
    client.post(f"{SITE}/hits/{hit_id}/accept", data={"csrf": csrf(client)})
    page = client.get(f"{SITE}/").get_data(as_text=True)
    assert f'data-hit-id="{hit_id}"' not in page  # a worker takes a HIT once
    assert 'id="no-hits"' in page and "In progress" in page


def test_preview_frame_has_no_assignment_and_accept_opens_the_task(client: Any, study: Study):
    hit_id = study.post_hit(assignments=1)
    worker_id = sign_in(client)
    token = csrf(client)
    preview = client.post(f"{SITE}/hits/{hit_id}/preview", data={"csrf": token})
    page = client.get(preview.headers["Location"]).get_data(as_text=True)
    frame = re.search(r'<iframe id="task"[^>]+src="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert frame.startswith(f"{study.url}/pub?mode=local&assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId={hit_id}")
    assert "workerId" not in frame
    assert study.state.get_hit(hit_id).pending == 1  # a preview counts as pending on MTurk

    accepted = client.post(f"{SITE}/hits/{hit_id}/accept", data={"csrf": token})
    page = client.get(accepted.headers["Location"]).get_data(as_text=True)
    frame = re.search(r'<iframe id="task"[^>]+src="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert f"workerId={worker_id}" in frame
    # turkSubmitTo: the marketplace beside the site, on the host the worker used (the test client's)
    assert "turkSubmitTo=http%3A%2F%2Flocalhost%2F_mturk&" in frame


def test_another_workers_assignment_is_forbidden(client: Any, study: Study):
    hit_id = study.post_hit(assignments=2)
    other = study.state.workers.register("AOTHERWORKER1")
    assignment = study.state.workers.accept(other.worker_id, hit_id)
    sign_in(client)
    assert client.get(f"{SITE}/assignments/{assignment.assignment_id}").status_code == 403
    assert client.get(f"{SITE}/assignments/{assignment.assignment_id}/status").status_code == 403
    reply = client.post(f"{SITE}/assignments/{assignment.assignment_id}/return", data={"csrf": csrf(client)})
    assert reply.status_code == 403
    assert study.state.workers.assignment(assignment.assignment_id).status == "Accepted"


def test_status_json_follows_the_marketplace(client: Any, study: Study):
    hit_id = study.post_hit(assignments=1, duration_s=600)
    worker_id = sign_in(client)
    assignment = study.state.workers.accept(worker_id, hit_id)
    url = f"{SITE}/assignments/{assignment.assignment_id}/status"
    assert client.get(url).get_json()["status"] == "Accepted"
    study.clock.advance(601)
    assert client.get(url).get_json()["status"] == "Abandoned"
    page = client.get(f"{SITE}/assignments/{assignment.assignment_id}").get_data(as_text=True)
    assert "<h1>Abandoned</h1>" in page and "<iframe" not in page


def test_unknown_hit_is_a_404_page(client: Any):
    sign_in(client)
    reply = client.get(f"{SITE}/hits/3NOSUCHHIT0000000000000000000")
    assert reply.status_code == 404 and "does not exist" in reply.get_data(as_text=True)


def test_only_the_browser_that_accepted_can_submit_through_external_submit(client: Any, study: Study):
    """Issue 6 item 2: externalSubmit belongs to the worker holding the assignment. The
    study's thanks page (psiTurk's form: assignmentId and hitId) posts from the browser that
    accepted on the worker site; that browser holds the proof cookie, another does not."""
    hit_id = study.post_hit(assignments=1)
    sign_in(client)
    accepted = client.post(f"{SITE}/hits/{hit_id}/accept", data={"csrf": csrf(client)})
    assignment_id = accepted.headers["Location"].rsplit("/", 1)[1]
    cookie = client.get_cookie(f"turnout_submit_{assignment_id}", path="/_mturk/mturk/")
    assert cookie is not None and cookie.http_only
    form = {"assignmentId": assignment_id, "hitId": hit_id}

    stranger = study.app.test_client()
    refused = stranger.post("/_mturk/mturk/externalSubmit", data=form)
    assert refused.status_code == 403
    assert study.state.workers.assignment(assignment_id).status == "Accepted"
    sign_in(stranger)  # any worker ID on the site does not help: the proof came with the accept
    stranger.get(f"{SITE}/assignments/{assignment_id}")
    assert stranger.post("/_mturk/mturk/externalSubmit", data=form).status_code == 403

    done = client.post("/_mturk/mturk/externalSubmit", data=form)
    assert done.status_code == 200
    assert study.state.workers.assignment(assignment_id).status == "Submitted"
