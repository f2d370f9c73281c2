"""Rows excluded by reconciliation no longer fill their counterbalancing cell (issue 10)."""

from __future__ import annotations

from typing import Any

from integration.test_routes_exp import chosen_condition, insert_row


def exclude(app: Any, uniqueid: str) -> None:
    from turnout.services import reconciliation
    from turnout.services.recruitment import MarketContext

    ctx = app.extensions["turnout"]
    market = MarketContext(db=ctx.db, settings=ctx.settings, clock=ctx.clock, mode="sandbox", client=None,
                           actor="test")
    assert reconciliation.exclude_rows(market, [uniqueid], reason="test") == 1


def test_excluded_finished_rows_decide_the_cell(db_app) -> None:
    for uid in ("X1:A", "X2:A", "X4:A"):
        insert_row(db_app, uid, cond=0, status=4, minutes_ago=600)
    for uid in ("X3:A", "X5:A"):
        insert_row(db_app, uid, cond=1, status=4, minutes_ago=600)
    assert chosen_condition(db_app, "NEW1") == 1  # 3 against 2
    exclude(db_app, "X1:A")
    exclude(db_app, "X2:A")
    # cond 0 now counts one; cond 1 counts X3, X5 and NEW1 (recent): 1 against 3.
    assert chosen_condition(db_app, "NEW2") == 0


def test_an_excluded_recent_participant_no_longer_fills_its_cell(db_app) -> None:
    insert_row(db_app, "X1:A", cond=0, status=2, minutes_ago=5)
    insert_row(db_app, "X2:A", cond=0, status=2, minutes_ago=5)
    insert_row(db_app, "X3:A", cond=1, status=4, minutes_ago=600)
    exclude(db_app, "X1:A")
    exclude(db_app, "X2:A")
    # Without the exclusions 2 against 1 (cond 1); with them 0 against 1.
    assert chosen_condition(db_app, "NEW1") == 0
