"""Re-take the dashboard screenshots in this folder against a running `turnout serve`.

    TURNOUT_ENABLE_DASHBOARD=true turnout serve --port 22999 &   # a project with some data
    python docs/screenshots/capture.py http://127.0.0.1:22999 USER PASSWORD

It approves all (Workers), switches to live and back (Settings) and adds the account
``postdoc-lee`` (Settings -> Accounts; a second run shows "already exists" instead).
Campaigns and Tasks: capture_scheduling.py; Reconcile: tests/dashboard/test_reconciliation_page.py
with SCREENSHOTS_TO=docs/screenshots.

Uses Debian's Chromium through Playwright, like the browser tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).parent


def main(base: str, username: str, password: str) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(f"{base}/dashboard/login")
        page.screenshot(path=str(HERE / "login.png"))
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_selector("#funnel")
        page.wait_for_timeout(500)
        page.screenshot(path=str(HERE / "overview.png"), full_page=True)
        page.goto(f"{base}/dashboard/participants?complete=true&group_by=cond")
        page.screenshot(path=str(HERE / "participants.png"), full_page=True)
        page.click("#participants tbody tr a")
        page.wait_for_selector("#columns")
        page.screenshot(path=str(HERE / "participant.png"), full_page=True)
        page.goto(f"{base}/dashboard/workers")
        page.click("#preview-assignments-approve_all")
        page.wait_for_selector("#preview-numbers")
        page.screenshot(path=str(HERE / "workers-preview.png"), full_page=True)
        page.click("#batch-confirm")
        page.wait_for_selector("#batch-summary", timeout=60000)
        page.wait_for_timeout(1000)  # the progress bar's width transition
        page.screenshot(path=str(HERE / "workers-report.png"), full_page=True)
        page.goto(f"{base}/dashboard/hits")
        page.screenshot(path=str(HERE / "hits.png"), full_page=True)
        page.goto(f"{base}/dashboard/activity")
        page.screenshot(path=str(HERE / "activity.png"), full_page=True)
        page.goto(f"{base}/dashboard/settings")
        page.select_option("#mode-select", "live")
        page.click("text=Switch")
        page.wait_for_selector("#live-banner")
        page.screenshot(path=str(HERE / "settings-live.png"), full_page=True)
        page.select_option("#mode-select", "local")
        page.click("text=Switch")
        # Settings -> Accounts: add an account with a generated password (shown once).
        page.goto(f"{base}/dashboard/settings/accounts")
        page.fill("#new-username", "postdoc-lee")
        page.select_option("#new-role", "payer")
        page.click("#account-add")
        page.wait_for_selector("#secret-panel:not(.d-none), #account-error:not(.d-none)")
        page.screenshot(path=str(HERE / "accounts.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
