"""/api/openapi.json documents every /api route of the app, with the right methods."""

from __future__ import annotations

import re
from typing import Any


def test_every_api_route_is_documented(sqlite_dash_app: Any) -> None:
    doc = sqlite_dash_app.test_client().get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    routes = set()
    for rule in sqlite_dash_app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented
