"""Re-take the Campaigns and Tasks screenshots in this folder against a running `turnout serve`.

    make demo   # or any project with the dashboard on, a runner, a campaign and a task
    python docs/screenshots/capture_scheduling.py http://127.0.0.1:22362 demo demo [--no-runner]

With ``--no-runner`` (a server started without a runner) it takes only the warning shot.
Uses Debian's Chromium through Playwright, like the browser tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).parent


def main(base: str, username: str, password: str, no_runner: bool = False) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(f"{base}/dashboard/login")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_selector("#funnel")
        if no_runner:
            page.goto(f"{base}/dashboard/tasks")
            page.wait_for_selector("#runner-warning")
            page.screenshot(path=str(HERE / "tasks-no-runner.png"), full_page=True)
            browser.close()
            return
        page.goto(f"{base}/dashboard/campaigns")
        page.wait_for_selector(".campaign-active")
        page.screenshot(path=str(HERE / "campaigns.png"), full_page=True)
        page.fill("#c-goal", "60")
        page.fill("#c-per-round", "18")
        page.fill("#c-codeversion", "2.1")
        page.click("#campaign-preview")
        page.wait_for_selector("#preview-numbers")
        page.locator("#start-h").scroll_into_view_if_needed()
        page.screenshot(path=str(HERE / "campaigns-preview.png"))
        page.goto(f"{base}/dashboard/tasks")
        page.wait_for_selector("#tasks")
        page.screenshot(path=str(HERE / "tasks.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4], no_runner="--no-runner" in sys.argv[4:])
