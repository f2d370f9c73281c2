"""The Campaigns and Tasks pages in headless Chromium: a campaign from preview to confirm,
an approve-all task added and deleted, and the no-runner warning."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.services import campaigns, tasks

from .test_browser import sign_in

pytestmark = pytest.mark.browser


def test_start_a_campaign_with_preview_then_add_and_delete_a_task(page: Any, live_url: str,
                                                                    sqlite_study: Any) -> None:
    db = sqlite_study.app.extensions["turnout"].db
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, live_url)
    page.wait_for_url(f"{live_url}/dashboard/")
    page.click("nav >> text=Campaigns")
    page.wait_for_url(f"{live_url}/dashboard/campaigns")
    assert page.locator("#runner-warning").is_visible()
    assert "turnout scheduler" in page.locator("#runner-warning").inner_text()

    page.fill("#c-goal", "0")
    page.click("#campaign-preview")
    page.wait_for_selector("#campaign-error:not(.d-none)")
    assert "goal" in page.locator("#campaign-error").inner_text()

    page.fill("#c-goal", "20")
    page.fill("#c-per-round", "10")
    page.click("#campaign-preview")
    page.wait_for_selector("#preview-numbers")
    preview = page.locator("#preview-numbers").inner_text()
    assert "9 + 1" in preview and "$12.00" in preview and "$24.00" in preview
    assert campaigns.list_campaigns(db) == []  # the preview changed nothing
    page.click("#campaign-confirm")
    page.wait_for_selector(".campaign-active")
    [made] = campaigns.list_campaigns(db)
    assert (made["goal"], made["per_round"], made["active"]) == (20, 10, True)
    assert page.locator(f"#campaign-{made['id']} [data-field=progress]").inner_text() == "0 / 20"

    page.click("nav >> text=Tasks")
    page.wait_for_url(f"{live_url}/dashboard/tasks")
    assert page.locator(f"tr[data-kind=campaign][data-id='{made['id']}'] a").first.get_attribute("href") \
        .endswith(f"/dashboard/campaigns#campaign-{made['id']}")
    page.fill("#t-interval", "29")
    page.click("#task-add")
    page.wait_for_selector("#task-error:not(.d-none)")
    assert "at least 30" in page.locator("#task-error").inner_text()
    page.fill("#t-interval", "45")
    page.click("#task-add")
    page.wait_for_selector("tr[data-kind=approve-all]")
    [task] = [t for t in tasks.list_tasks(db) if t["kind"] == "approve-all"]
    assert task["interval_minutes"] == 45
    page.click(f"[data-delete-task='{task['id']}']")
    page.wait_for_selector("tr[data-kind=approve-all]", state="detached")
    assert [t["kind"] for t in tasks.list_tasks(db)] == ["campaign"]
    # the two refused inputs above log their 400s in the console; nothing else went wrong
    assert [e for e in page.errors if "status of 400" not in e] == []
    assert len(page.errors) == 2
