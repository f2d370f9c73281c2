"""The one factory for marketplace contexts in a long-running process (web app, scheduler).

``open_market(settings, db, mode, actor, clock)`` builds the boto3 client for a mode once
per process and hands out a cheap ``MarketContext`` per request. In local mode the CLI's
``open_marketplace`` starts an HTTP server thread on every call; here at most one such
thread is started per process and store, on first use (never at import or before a
fork), unless ``TURNOUT_MTURK_ENDPOINT`` names a running marketplace to talk to instead.
Sandbox and live without AWS credentials raise ``Unavailable`` with a clear message, so a
page can say so instead of failing.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from turnout.clock import Clock
from turnout.config import MODES, Settings
from turnout.db.engine import Database
from turnout.errors import InvalidInput, Unavailable
from turnout.services.recruitment import MarketContext

ENDPOINT_ENV = "TURNOUT_MTURK_ENDPOINT"

_lock = threading.Lock()
_clients: dict[tuple[str, str, int], Any] = {}
_local_markets: dict[tuple[str, int], Any] = {}


def has_credentials(settings: Settings) -> bool:
    """Whether a sandbox/live call could be signed: config keys, or boto3's own chain."""
    if settings.raw.text("AWS Access", "aws_access_key_id") and settings.raw.text("AWS Access",
                                                                                  "aws_secret_access_key"):
        return True
    import boto3

    try:
        return boto3.session.Session().get_credentials() is not None
    except Exception:  # a broken ~/.aws file counts as no credentials, not a crash
        return False


def _local_endpoint(settings: Settings, clock: Clock) -> str:
    configured = os.environ.get(ENDPOINT_ENV)
    if configured:
        return configured
    from turnout.marketplace.local import ThreadedMarketplace

    key = (str(settings.marketplace_store), os.getpid())
    market = _local_markets.get(key)
    if market is None:
        settings.marketplace_store.parent.mkdir(parents=True, exist_ok=True)
        market = ThreadedMarketplace(settings.marketplace_store, clock=clock).start()
        _local_markets[key] = market
    return str(market.endpoint_url)


def client_for(settings: Settings, mode: str, clock: Clock) -> Any:
    """The process's boto3 client for ``mode`` (boto3 clients are thread-safe)."""
    from turnout.marketplace.client import make_client

    if mode not in MODES:
        raise InvalidInput(f"unknown marketplace mode {mode!r}; use one of {', '.join(MODES)}")
    key = (str(settings.project_dir), mode, os.getpid())
    with _lock:
        client = _clients.get(key)
        if client is not None:
            return client
        if mode == "local":
            # Signed with the store's key pair: the offline marketplace refuses unsigned calls.
            client = make_client("local", endpoint_url=_local_endpoint(settings, clock),
                                 store=settings.marketplace_store, max_attempts=3)
        else:
            if not has_credentials(settings):
                raise Unavailable(f"no AWS credentials for MTurk {mode}: set aws_access_key_id and "
                                  "aws_secret_access_key in [AWS Access] (or AWS_ACCESS_KEY_ID / "
                                  "AWS_SECRET_ACCESS_KEY) to use this mode")
            key_id = settings.raw.text("AWS Access", "aws_access_key_id") or None
            secret = settings.raw.text("AWS Access", "aws_secret_access_key") or None
            client = make_client(mode, aws_access_key_id=key_id, aws_secret_access_key=secret, max_attempts=3)
        _clients[key] = client
        return client


def open_market(settings: Settings, db: Database, mode: str, actor: str, clock: Clock) -> MarketContext:
    """A MarketContext for one request or job: cheap, the client is built once per process."""
    return MarketContext(db=db, settings=settings, clock=clock, mode=mode,
                         client=client_for(settings, mode, clock), actor=actor[:128])


def reset() -> None:
    """Forget the cached clients and stop local marketplace threads (tests, shutdown)."""
    with _lock:
        _clients.clear()
        for market in _local_markets.values():
            market.stop()
        _local_markets.clear()
