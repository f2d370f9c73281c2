"""``[Task Parameters] browser_exclude_rule``: which browsers may not take the study.

Each comma-separated rule is one of psiTurk's kinds (``mobile``, ``tablet``,
``touchcapable``, ``pc``, ``bot``), ``safari`` (Safari, not Chrome, whose user agent also
says Safari), or any other text, matched as a substring of the User-Agent header.
"""

from __future__ import annotations

from user_agents import parse as parse_user_agent


def browser_excluded(rules: tuple[str, ...], ua_string: str) -> bool:
    ua = parse_user_agent(ua_string)
    checks = {"mobile": ua.is_mobile, "tablet": ua.is_tablet, "touchcapable": ua.is_touch_capable,
              "pc": ua.is_pc, "bot": ua.is_bot}
    for rule in rules:
        if rule in checks:
            if checks[rule]:
                return True
        elif rule.lower() == "safari":
            if "Safari" in ua_string and "Chrome" not in ua_string:
                return True
        elif rule and rule in ua_string:
            return True
    return False
