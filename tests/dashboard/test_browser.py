"""The dashboard in real headless Chromium: sign-in, filters and CSV, a batch from preview to
report (and a second run that pays nothing), two users in two modes, roles and CSRF."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from turnout.services import batches

from .conftest import ADMIN, ADMIN_PW

pytestmark = pytest.mark.browser


def sign_in(page: Any, base: str, username: str = ADMIN, password: str = ADMIN_PW) -> None:
    page.goto(f"{base}/dashboard/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_sign_in_wrong_password_and_sign_out(page: Any, live_url: str) -> None:
    sign_in(page, live_url, password="wrong")
    assert "Incorrect username or password" in page.content()
    sign_in(page, live_url)
    page.wait_for_url(f"{live_url}/dashboard/")
    assert page.locator("#funnel").is_visible()
    page.click("text=Sign out")
    page.wait_for_url(f"{live_url}/dashboard/login")
    page.goto(f"{live_url}/dashboard/participants")
    assert "/dashboard/login" in page.url
    assert page.errors == []


def test_filters_counts_match_the_database_and_csv_downloads(page: Any, live_url: str, sqlite_study: Any,
                                                              seed) -> None:
    seed(sqlite_study.app, 9, status=[4, 1, 5], cond=[0, 1, 2])
    sign_in(page, live_url)
    page.goto(f"{live_url}/dashboard/participants")
    assert page.locator("#total").get_attribute("data-total") == "9"
    page.check("#complete")  # htmx swaps the table and pushes the URL
    page.wait_for_url("**complete=true**")
    page.wait_for_function("document.querySelector('#total').dataset.total === '6'")
    page.select_option("#group_by", "cond")
    page.wait_for_selector("#groups")
    counts = [int(c) for c in page.locator("#groups td[data-count]").evaluate_all(
        "cells => cells.map(c => c.dataset.count)")]
    assert counts == [3, 3]  # cond 0 and 2 (every cond-1 row here is status 1, not complete)
    assert page.url.endswith("/dashboard/participants?complete=true&group_by=cond")
    with page.expect_download() as download:
        page.click("#csv-link")
    lines = Path(download.value.path()).read_text(encoding="utf-8").strip().splitlines()
    assert len(lines) == 1 + 6 and lines[0].startswith("uniqueid,")
    assert page.errors == []


def test_approve_all_preview_confirm_progress_report_then_nothing_twice(page: Any, live_url: str,
                                                                        sqlite_study: Any) -> None:
    hit_id = sqlite_study.hit(assignments=5, reward="1.00")
    sqlite_study.submit(hit_id, 2)
    sign_in(page, live_url)
    page.goto(f"{live_url}/dashboard/workers")
    page.click("#preview-assignments-approve_all")
    page.wait_for_selector("#preview-numbers")
    assert page.locator("[data-preview=count]").inner_text() == "2"
    assert page.locator("[data-preview=total]").inner_text() == "$2.40"
    page.click("#batch-confirm")
    page.wait_for_selector("#batch-summary")
    assert page.locator("[data-count=done]").inner_text() == "2"
    assert page.locator("#batch-progress").inner_text() == "100%"
    paid = Decimal(sqlite_study.balance())
    assert paid == Decimal("10000.00") - Decimal("2.40")

    page.reload()
    page.click("#preview-assignments-approve_all")
    page.wait_for_selector("#preview-numbers")
    assert page.locator("[data-preview=count]").inner_text() == "0"
    page.click("#batch-confirm")
    page.wait_for_selector("#batch-summary")
    assert page.locator("[data-count=done]").inner_text() == "0"
    assert Decimal(sqlite_study.balance()) == paid
    for batch in batches.recent(sqlite_study.ctx()):
        batches.wait(batch["batch_id"])
    assert page.errors == []


def test_two_users_in_two_modes_a_viewer_refused_and_csrf(browser: Any, live_url: str, sqlite_study: Any,
                                                          add_user) -> None:
    hit_id = sqlite_study.hit()
    sqlite_study.submit(hit_id, 1)
    add_user(sqlite_study.app, "ra", "viewer", "pw-ra")
    admin_ctx, viewer_ctx = browser.new_context(), browser.new_context()
    try:
        admin, viewer = admin_ctx.new_page(), viewer_ctx.new_page()
        sign_in(admin, live_url)
        sign_in(viewer, live_url, "ra", "pw-ra")
        admin.goto(f"{live_url}/dashboard/settings")
        admin.select_option("#mode-select", "live")
        admin.click("text=Switch")
        admin.wait_for_selector("#live-banner")
        viewer.goto(f"{live_url}/dashboard/settings")
        assert viewer.locator("#live-banner").count() == 0
        assert viewer.locator(".navbar .badge").inner_text() == "local"

        viewer.goto(f"{live_url}/dashboard/workers")
        assert viewer.locator("[data-batch]").count() == 0
        refused = viewer.evaluate("""() => turnoutFetch('/api/assignments/action/approve_all',
                                       {method: 'POST', json: {}}).then(r => [r.status, r.body.error.code])""")
        assert refused == [403, "forbidden"]
        no_token = admin.evaluate("""() => fetch('/api/services_manager', {method: 'POST',
                                      headers: {'Content-Type': 'application/json'},
                                      body: JSON.stringify({mode: 'local'})}).then(r => r.status)""")
        assert no_token == 400
        admin.goto(f"{live_url}/dashboard/settings")
        assert admin.locator("#live-banner").count() == 1  # the refused POST changed nothing
        assert sqlite_study.balance() == "10000.00"
    finally:
        admin_ctx.close()
        viewer_ctx.close()


def test_accounts_page_adds_with_a_generated_password_and_revokes_a_token(page: Any, live_url: str) -> None:
    """Settings → Accounts in Chromium: the secret is shown once (the Flask tests sign in
    with it), a token is created and revoked, a refused change shows its message."""
    sign_in(page, live_url)
    page.wait_for_url(f"{live_url}/dashboard/")
    page.goto(f"{live_url}/dashboard/settings")
    page.click("text=Accounts and API tokens")
    page.fill("#new-username", "ra-browser")
    page.select_option("#new-role", "payer")
    page.click("#account-add")
    page.wait_for_selector("#secret-panel:not(.d-none)")
    password = page.locator("#secret-value").text_content()
    assert password and len(password) >= 12
    page.click("#secret-done")
    page.wait_for_selector('tr[data-user="ra-browser"]')
    assert password not in page.content()  # shown once
    page.fill("#token-name", "nightly")
    page.click("#token-create")
    page.wait_for_selector("#secret-panel:not(.d-none)")
    assert (page.locator("#secret-value").text_content() or "").startswith("tnt_")
    page.click("#secret-done")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click('[data-revoke-token]')
    page.wait_for_selector('tr[data-token] .badge:text("revoked")')
    assert page.errors == []
    page.fill("#new-username", "ra-browser")  # the name is taken: the API's 409 message shows
    page.click("#account-add")
    page.wait_for_selector("#account-error:not(.d-none)")
    assert "already exists" in (page.locator("#account-error").text_content() or "")
    assert [e for e in page.errors if "409" not in e] == []  # the browser logs the refused call itself
