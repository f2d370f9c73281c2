"""The worker site in real headless Chromium: a person takes a HIT in the offline marketplace.

The whole local-mode study runs in-process (tests/simulation_stack.py). The test does what
a person does: choose a worker, find the HIT, preview, accept, do the study in the HIT frame
(the ad opens consent and the experiment in a popup, as psiTurk templates do), submit the
thanks page, and see the assignment Submitted. It waits for states, never for time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from servers import init_project, quicken_stroop
from simulation_stack import Study, running_study

pytestmark = pytest.mark.browser

STEP_MS = 15_000   # the longest a single step may take before the test fails
KEY = {"red": "r", "green": "g", "blue": "b", "yellow": "y"}


@pytest.fixture
def study(tmp_path: Path) -> Any:
    with running_study(quicken_stroop(init_project(tmp_path / "study"))) as running:
        running.post_hit(assignments=3, title="Colour-word rehearsal", reward="1.25")
        yield running


def choose_new_worker(page: Any, study: Study) -> str:
    page.goto(f"{study.url}/_mturk/worker/")
    assert page.url.endswith("/_mturk/worker/workers")
    page.click("#new-worker")
    page.wait_for_selector("#hits", timeout=STEP_MS)
    return page.inner_text("#current-worker code")


def task_frame(page: Any) -> Any:
    page.wait_for_selector("iframe#task", timeout=STEP_MS)
    return page.frame_locator("iframe#task")


# --- doing the study: the turnout init Stroop task ---------------------------------------


def do_stroop_in_popup(page: Any, frame: Any) -> None:
    """The ad opens consent and the experiment in a popup; drive it as task.js's header says."""
    with page.expect_popup(timeout=STEP_MS) as opened:
        frame.locator("#begin-experiment").click()
    popup = opened.value
    popup.on("pageerror", lambda exc: page.errors.append(f"popup: {exc}"))
    popup.on("console", lambda msg: page.errors.append(f"popup: {msg.text}") if msg.type == "error" else None)
    popup.wait_for_selector("#consent-agree", timeout=STEP_MS)
    popup.click("#consent-agree")
    for _ in range(4):
        popup.wait_for_selector("#next", timeout=STEP_MS)
        popup.click("#next")

    def answer_trials(count: int) -> None:
        for _ in range(count):
            stim = popup.wait_for_selector('#stim[data-state="stimulus"]', timeout=STEP_MS)
            popup.keyboard.press(KEY[stim.get_attribute("data-ink")])

    answer_trials(8)
    popup.wait_for_selector("#start-test", state="visible", timeout=STEP_MS)
    popup.click("#start-test")
    answer_trials(24)
    popup.wait_for_selector("#submit-questionnaire", timeout=STEP_MS)
    popup.select_option("#engagement", "5")
    popup.click("#submit-questionnaire")
    popup.wait_for_event("close", timeout=STEP_MS)  # closepopup.html reloads the HIT frame and closes


# --- tests ----------------------------------------------------------------------------------


def test_a_person_takes_the_hit_on_the_worker_site_and_it_ends_submitted(page: Any, study: Study):
    worker_id = choose_new_worker(page, study)
    assert re.fullmatch(r"A[A-Z0-9]{13}", worker_id)
    row = page.locator("#hits tbody tr")
    assert row.count() == 1
    text = row.inner_text()
    assert "Colour-word rehearsal" in text and "$1.25" in text
    assert row.locator("td.num").inner_text() == "3 of 3"  # open of max (a preview holds no slot)

    row.get_by_role("button", name="Preview").click()
    frame_locator = task_frame(page)
    src = page.get_attribute("iframe#task", "src")
    assert "assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE" in src and "workerId" not in src
    frame_locator.locator("#preview-note").wait_for(timeout=STEP_MS)
    assert frame_locator.locator("#begin-experiment").count() == 0

    page.click("#accept")
    page.wait_for_selector("#status", timeout=STEP_MS)
    assert page.inner_text("#status") == "Accepted"
    frame_locator = task_frame(page)
    src = page.get_attribute("iframe#task", "src")
    assert f"workerId={worker_id}" in src and "turkSubmitTo=" in src and "mode=local" in src
    assignment_id = re.search(r"assignmentId=([A-Z0-9]+)", src).group(1)

    do_stroop_in_popup(page, frame_locator)
    # The frame now shows the thanks page, whose form the server pointed at the offline
    # marketplace (psiTurk's template posts to mturk.com); its button calls /worker_submitted
    # and then submits the form.
    frame_locator.locator("#submit-hit").wait_for(timeout=STEP_MS)
    assert frame_locator.locator("#mturk_form").get_attribute("action") == "/_mturk/mturk/externalSubmit"
    frame_locator.locator("#submit-hit").click()

    # The assignment page notices the submission and shows it.
    page.wait_for_selector("#result h1", timeout=STEP_MS)
    assert page.inner_text("#status") == "Submitted"
    assert page.inner_text("#result h1") == "Submitted"
    assert study.state.workers.assignment(assignment_id).status == "Submitted"
    participant = next(r for r in study.rows() if r.assignmentid == assignment_id)
    assert participant.workerid == worker_id and participant.status == 4  # SUBMITTED

    page.click("text=My assignments")
    listed = page.locator("#assignments tbody tr")
    assert listed.count() == 1 and "Submitted" in listed.inner_text()
    assert page.errors == []


def test_a_worker_can_return_a_hit_and_forms_need_the_csrf_token(page: Any, study: Study):
    choose_new_worker(page, study)
    page.locator("#hits tbody tr").get_by_role("button", name="Accept").click()
    page.wait_for_selector("#return", timeout=STEP_MS)
    assignment_id = re.search(r"/assignments/([A-Z0-9]+)", page.url).group(1)
    page.click("#return")
    page.wait_for_selector("#hits", timeout=STEP_MS)
    assert study.state.workers.assignment(assignment_id).status == "Returned"
    page.goto(f"{study.url}/_mturk/worker/assignments/{assignment_id}")
    assert page.inner_text("#result h1") == "Returned"

    returned = study.state.workers.assignment(assignment_id)
    forged = page.request.post(f"{study.url}/_mturk/worker/hits/{returned.hit_id}/accept",
                               form={"csrf": "forged-token-0123456789"})
    assert forged.status == 403  # the browser sends the cookie, but the form lacks the matching token
    assert [a.status for a in study.state.workers.assignments_of(returned.worker_id)] == ["Returned"]
