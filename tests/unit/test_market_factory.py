"""The process's one marketplace factory: built once per (marketplace, environment,
project), shared by every thread, cheap per request, forgotten by ``reset``."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from turnout.db.engine import Database
from turnout.errors import Unavailable
from turnout.marketplace import factory
from turnout.services.context import open_market


def test_one_marketplace_per_process_and_mode_shared_by_threads(make_settings: Any, sqlite_url: str,
                                                                 clock: Any) -> None:
    settings = make_settings(sqlite_url)
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(factory.marketplace_for(settings, "local", clock=clock)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in seen}) == 1 and factory.cached() == 1
    db = Database(settings.database_url, settings.tables)
    try:
        one, two = (open_market(settings, db, "local", "a", clock), open_market(settings, db, "local", "b", clock))
        assert one is not two and one.port is two.port is seen[0] and one.client is seen[0].client
        assert one.actor == "a" and factory.cached() == 1
        # The local marketplace the factory started answers, signed with the store's keys.
        assert one.client.get_account_balance()["AvailableBalance"]
    finally:
        db.dispose()
    factory.reset()
    assert factory.cached() == 0
    assert factory.marketplace_for(settings, "local", clock=clock) is not seen[0]


def test_sandbox_without_credentials_is_refused_up_front_unless_asked_not_to(
        make_settings: Any, sqlite_url: str, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = make_settings(sqlite_url)
    with pytest.raises(Unavailable, match="no AWS credentials"):
        factory.marketplace_for(settings, "sandbox", clock=clock)
    market = factory.marketplace_for(settings, "sandbox", clock=clock, check_credentials=False)
    assert market.environment == "sandbox" and market.where.startswith("https://mturk-requester-sandbox")
