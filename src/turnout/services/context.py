"""A ``MarketContext`` for one request, command or job, from the process's one marketplace.

``open_market(settings, db, mode, actor, clock)`` is what the web app, the JSON API, the
CLI, the scheduler runner, the simulation and the psiTurk wrapper call. It is cheap: the
marketplace itself (the boto3 client and, in local mode, the offline marketplace's HTTP
thread) comes from ``turnout.marketplace.factory``, which builds it once per process.
Sandbox and live without AWS credentials raise ``Unavailable`` with a clear message, so a
page can say so instead of failing (``check_credentials=False``: the first call fails
instead, and commands that make none still work).
"""

from __future__ import annotations

from typing import Any

from turnout.clock import Clock
from turnout.config import Settings
from turnout.db.engine import Database
from turnout.marketplace import factory
from turnout.services.recruitment import MarketContext


def open_market(settings: Settings, db: Database, mode: str, actor: str, clock: Clock, *,
                endpoint_url: str | None = None, check_credentials: bool = True) -> MarketContext:
    """A MarketContext for one request or job: cheap, the marketplace is built once per process."""
    market = factory.marketplace_for(settings, mode, clock=clock, endpoint_url=endpoint_url,
                                     check_credentials=check_credentials)
    return MarketContext(db=db, settings=settings, clock=clock, mode=mode, client=getattr(market, "client", None),
                         actor=actor[:128], market=market)


def client_for(settings: Settings, mode: str, clock: Clock) -> Any:
    """The process's boto3 client for ``mode`` (boto3 clients are thread-safe)."""
    return getattr(factory.marketplace_for(settings, mode, clock=clock), "client", None)


def reset() -> None:
    """Forget the cached marketplaces and stop local marketplace threads (tests, shutdown)."""
    factory.reset()
