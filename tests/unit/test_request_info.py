"""Stored browser and platform names are psiTurk's (Werkzeug 1's parser), not user_agents' families."""

from __future__ import annotations

import pytest

UAS = {
    "mac-chrome": ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/120.0.0.0 Safari/537.36", "chrome", "macos"),
    "win-firefox": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
                    "firefox", "windows"),
    "linux-headless": ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "HeadlessChrome/156.0.0.0 Safari/537.36", "chrome", "linux"),
    "iphone-safari": ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
                      "like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "safari", "iphone"),
    "curl": ("curl/8.5.0", "curl", "UNKNOWN"),
}


@pytest.mark.parametrize("name", sorted(UAS))
def test_browser_and_platform_use_psiturks_names(app, name):
    from turnout.experiment.routes import request_info

    user_agent, browser, platform = UAS[name]
    with app.test_request_context("/exp", headers={"User-Agent": user_agent}):
        info = request_info()
    assert (info.browser, info.platform) == (browser, platform)
