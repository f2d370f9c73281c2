"""psiTurk's browser_exclude_rule, applied on /ad: special words, Safari, substrings."""

from __future__ import annotations

import pytest

from turnout.services.browsers import browser_excluded

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.2 Safari/605.1.15")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.2 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/12.1 Mobile/15E148 Safari/604.1")
MSIE = "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
DEFAULT = ("MSIE", "mobile", "tablet")


@pytest.mark.parametrize(("ua", "blocked"), [(CHROME, False), (SAFARI, False), (IPHONE, True), (IPAD, True),
                                             (MSIE, True)])
def test_psiturks_default_rules(ua: str, blocked: bool) -> None:
    assert browser_excluded(DEFAULT, ua) is blocked


@pytest.mark.parametrize("rule", ["Safari", "safari"])
def test_safari_rule_blocks_safari_but_not_chrome_which_also_says_safari(rule: str) -> None:
    assert browser_excluded((rule,), SAFARI) is True
    assert browser_excluded((rule,), CHROME) is False


def test_bot_and_pc_rules_use_the_parsed_user_agent() -> None:
    assert browser_excluded(("bot",), BOT) is True
    assert browser_excluded(("bot",), CHROME) is False
    assert browser_excluded(("pc",), CHROME) is True
    assert browser_excluded(("pc",), IPHONE) is False


def test_other_rules_are_substring_matches_on_the_raw_user_agent() -> None:
    assert browser_excluded(("Linux x86_64",), CHROME) is True
    assert browser_excluded(("Windows",), CHROME) is False


def test_no_rules_blocks_nothing() -> None:
    assert browser_excluded((), IPHONE) is False
    assert browser_excluded(("",), CHROME) is False
