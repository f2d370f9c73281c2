"""The project `turnout init` writes, taken end to end in Chromium against `turnout serve`.

The test does what a participant does (see the comment at the top of the template's
static/js/task.js): ad -> consent (in a popup) -> instructions -> practice -> test ->
questionnaire -> /complete, then checks what the database holds.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from servers import init_project, quicken_stroop, running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COLOUR_KEYS = {"red": "r", "green": "g", "blue": "b", "yellow": "y"}


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    return quicken_stroop(init_project(tmp_path / "stroop"))


def answer_trials(popup: Any, count: int, wrong_every: int) -> int:
    """Answer ``count`` trials, every ``wrong_every``-th one wrongly; return how many were right."""
    right = 0
    for n in range(count):
        popup.wait_for_selector('#stim[data-state="stimulus"]')
        ink = popup.get_attribute("#stim", "data-ink")
        if n % wrong_every == 0:
            popup.keyboard.press("g" if ink == "red" else "r")
        else:
            popup.keyboard.press(COLOUR_KEYS[ink])
            right += 1
    return right


def take_the_study(page: Any, base: str, ids: dict[str, str], mode: str) -> tuple[Any, int]:
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{base}/ad?assignmentId={ids['assignment']}&hitId={ids['hit']}"
              f"&workerId={ids['worker']}&mode={mode}")
    with page.expect_popup() as opened:
        page.click("#begin-experiment")
    popup = opened.value
    popup.on("console", lambda m: m.type == "error" and errors.append(m.text))
    popup.on("pageerror", lambda e: errors.append(str(e)))
    popup.click("#consent-agree")
    tops = []
    for _ in range(4):
        popup.wait_for_selector("#container-instructions")
        tops.append(popup.locator("#container-instructions .page-card").bounding_box()["y"])
        popup.click("#next")
    assert len(set(tops)) == 1, tops  # the instruction card stays put from page to page
    answer_trials(popup, 8, wrong_every=4)
    # The bar counts answered words: full once the 8th is answered (it stopped at 88%).
    assert popup.get_attribute("#progress", "aria-valuenow") == "100"
    assert popup.text_content("#trial-count") == "8 / 8"
    popup.click("#start-test")
    right = answer_trials(popup, 24, wrong_every=6)
    popup.select_option("#engagement", "6")
    popup.check("#colourvision-no")
    popup.fill("#strategy", "focused on the ink")
    page.errors_seen = errors  # type: ignore[attr-defined]
    return popup, right


def stored(project: Path, uniqueid: str) -> tuple[int, float, dict[str, Any]]:
    with sqlite3.connect(project / "participants.db") as db:
        status, bonus, datastring = db.execute(
            "SELECT status, bonus, datastring FROM assignments WHERE uniqueid = ?", (uniqueid,)).fetchone()
    return status, bonus, json.loads(datastring)


def test_debug_run_ends_on_the_complete_page_with_data_and_bonus(page: Any, example_project: Path) -> None:
    ids = {"worker": "debugW1", "assignment": "debugA1", "hit": "debugH1"}
    with running_server(example_project) as base:
        popup, right = take_the_study(page, base, ids, "debug")
        popup.click("#submit-questionnaire")
        popup.wait_for_selector("#complete-title")
        assert "/complete?uniqueId=debugW1:debugA1&mode=debug&turnout_token=" in popup.url

    status, bonus, data = stored(example_project, "debugW1:debugA1")
    assert status == 3
    trials = [r["trialdata"] for r in data["data"]]
    test = [t for t in trials if t.get("phase") == "TEST"]
    assert len(test) == 24 and sum(t["hit"] for t in test) == right
    assert all(t["correct"] == t["hit"] and isinstance(t["rt"], int) for t in test)
    assert {t["relation"] for t in test} == {"congruent", "incongruent"}
    assert len([t for t in trials if t.get("phase") == "PRACTICE"]) == 8
    assert [t["action"] for t in trials if t.get("phase") == "INSTRUCTIONS"] == [
        "Begin", "NextPage", "NextPage", "NextPage", "FinishInstructions"]
    assert data["questiondata"] == {"engagement": "6", "difficulty": "", "colourvision": "no",
                                    "strategy": "focused on the ink"}
    assert bonus == pytest.approx(0.02 * right)
    assert page.errors_seen == []


def test_sandbox_run_closes_the_popup_and_the_ad_offers_submission(page: Any, example_project: Path) -> None:
    ids = {"worker": "W7", "assignment": "A7", "hit": "H7"}
    with running_server(example_project) as base:
        popup, right = take_the_study(page, base, ids, "sandbox")
        with popup.expect_event("close"):
            popup.click("#submit-questionnaire")
        page.wait_for_selector("#submit-hit")        # the ad reloaded as the "submit HIT" page
        assert page.get_attribute("#mturk_form", "action") == \
            "https://workersandbox.mturk.com/mturk/externalSubmit"
        assert stored(example_project, "W7:A7")[0] == 3
        # Submitting first records it on this server; stop the post to the marketplace.
        page.route("https://workersandbox.mturk.com/**", lambda route: route.fulfill(body="ok"))
        page.click("#submit-hit")
        page.wait_for_url("https://workersandbox.mturk.com/**")

    status, bonus, _ = stored(example_project, "W7:A7")
    assert status == 4
    assert bonus == pytest.approx(0.02 * right)
    assert page.errors_seen == []
