""""Check against the marketplace" in headless Chromium (issue 10): a background check with
progress, differences grouped by kind with the navigation badge, and a money remedy through
preview -> confirm that pays once and takes the difference off the page.

Set ``SCREENSHOTS_TO=docs/screenshots`` to also save the page's screenshots there."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from turnout.services import payments, reconcile_jobs

from .test_browser import sign_in

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("SCREENSHOTS_TO")  # read at import: the tests' environment is cleaned


def shoot(page: Any, name: str, *, full_page: bool = True) -> None:
    if SHOTS:
        page.wait_for_timeout(500)  # let Bootstrap's fade finish
        page.screenshot(path=str(Path(SHOTS) / name), full_page=full_page)


def test_check_then_fix_a_missing_bonus(page: Any, live_url: str, sqlite_study: Any) -> None:
    study = sqlite_study
    hit_id = study.hit(assignments=9, reward="1.00")
    (behind,) = study.submit(hit_id, 1)
    owed, agrees = study.submit(hit_id, 2, bonus=0.5)
    (unfinished,) = study.submit(hit_id, 1, status=2)
    study.ctx().client.approve_assignment(AssignmentId=behind)  # approved on MTurk directly
    assert payments.approve(study.ctx(), [owed]).items[0].outcome == "ok"  # bonus not paid yet
    assert payments.approve(study.ctx(), [agrees]).items[0].outcome == "ok"
    assert payments.bonus(study.ctx(), [agrees], amount="auto", reason="x").items[0].outcome == "ok"
    page.set_viewport_size({"width": 1366, "height": 900})
    sign_in(page, live_url)
    page.goto(f"{live_url}/dashboard/reconciliation")
    assert "No check yet" in page.locator("#last-check").inner_text()
    assert page.locator("#reconcile-badge").count() == 0
    page.click("#check-now")
    page.wait_for_selector("#kind-counts")  # the page reloads from the stored report when done
    assert page.locator("#reconcile-badge").inner_text().startswith("3")
    assert page.locator("[data-kind-count=bonus_missing] [data-count]").inner_text() == "1"
    groups = page.locator("section[data-kind]").evaluate_all("s => s.map(e => e.dataset.kind)")
    assert groups == ["submitted_remotely", "approved_remotely", "bonus_missing"]
    assert page.locator(f"section[data-kind=submitted_remotely] tr[data-assignment='{unfinished}']").count() == 1
    assert page.locator(f"section[data-kind=approved_remotely] tr[data-assignment='{behind}']").count() == 1
    assert page.locator(f"tr[data-assignment='{agrees}']").count() == 0
    assert "no bonus paid" in page.locator("section[data-kind=bonus_missing]").inner_text()
    shoot(page, "reconciliation.png")

    before = Decimal(study.balance())
    page.click(f"tr[data-assignment='{owed}'] button[data-remedy=pay_bonus]")
    page.wait_for_selector("#fix-numbers")
    assert page.locator("[data-preview=amount]").inner_text() == "$0.50"
    assert page.locator("[data-preview=fee]").inner_text() == "$0.10"
    assert page.locator("[data-preview=total]").inner_text() == "$0.60"
    shoot(page, "reconciliation-preview.png", full_page=False)  # the modal's backdrop is fixed
    assert Decimal(study.balance()) == before  # the preview paid nothing
    page.click("#fix-confirm")
    page.wait_for_selector(f"tr[data-assignment='{owed}']", state="detached")
    assert page.locator("section[data-kind=bonus_missing]").count() == 0
    assert page.locator("#reconcile-badge").inner_text().startswith("2")
    assert Decimal(study.balance()) == before - Decimal("0.60")
    page.reload()
    assert page.locator(f"tr[data-assignment='{owed}']").count() == 0
    assert page.locator("#difference-total").inner_text() == "2"
    for run in reconcile_jobs._threads:
        reconcile_jobs.wait(run)
    assert page.errors == []
