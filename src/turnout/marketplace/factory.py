"""The one place a process opens a marketplace: one adapter per (marketplace, environment,
project, endpoint), built on first use and kept for the life of the process.

The web app, the JSON API, the CLI, the scheduler runner, the simulation and the psiTurk
wrapper all get their marketplace here (through ``services.context.open_market``), so a
request or a job pays only for a ``MarketContext``: the boto3 client (a tenth of a second
or more to build, thread-safe once built) and, in local mode, the offline marketplace's
HTTP server thread are made once per process, never at import or before a fork.
``TURNOUT_MTURK_ENDPOINT`` (or an explicit ``endpoint_url``) names a running offline
marketplace to talk to instead of starting one. ``reset()`` forgets everything (tests,
shutdown).

A project's marketplace is (marketplace, environment): ``mturk`` × ``local`` / ``sandbox``
/ ``live`` today. Another marketplace adds an opener to ``OPENERS``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from turnout.clock import Clock, SystemClock
from turnout.config import MODES, Settings
from turnout.errors import InvalidInput, Unavailable
from turnout.marketplace.client import ENDPOINT_ENV
from turnout.marketplace.port import Marketplace

MAX_ATTEMPTS = 3

_lock = threading.Lock()
_markets: dict[tuple[Any, ...], Marketplace] = {}
_local_servers: dict[tuple[Any, ...], Any] = {}


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


def _clock_key(clock: Clock | None) -> Any:
    # Every system clock tells the same time; a test's own clock gets its own marketplace.
    return None if clock is None or isinstance(clock, SystemClock) else id(clock)


def _local_endpoint(settings: Settings, clock: Clock | None) -> str:
    """The offline marketplace over the project's store, served from a thread of this
    process (one per store and clock); called with ``_lock`` held."""
    from turnout.marketplace.local import ThreadedMarketplace
    from turnout.marketplace.project import open_store

    store = settings.marketplace_store
    key = (str(store), os.getpid(), _clock_key(clock))
    server = _local_servers.get(key)
    if server is None:
        try:
            # open_store also stops on an unusable [Marketplace] local_store.
            open_store(settings, clock).close()
            server = ThreadedMarketplace(store, clock=clock).start()
        except (sqlite3.Error, OSError) as exc:
            # A store another process holds locked (past SQLite's busy timeout), or one that
            # is not a SQLite file: one line naming it, not a traceback.
            raise Unavailable(f"cannot open the offline marketplace's store {store} ([Marketplace] local_store): "
                              f"{exc}; if another turnout command is using it, try again") from None
        _local_servers[key] = server
    return str(server.endpoint_url)


def _open_mturk(settings: Settings, environment: str, clock: Clock | None, endpoint_url: str | None,
                check_credentials: bool) -> Marketplace:
    from turnout.marketplace.client import make_client
    from turnout.marketplace.mturk import MTurkMarketplace

    if environment == "local":
        # Signed with the store's key pair: the offline marketplace refuses unsigned calls.
        endpoint = endpoint_url or _local_endpoint(settings, clock)
        client = make_client("local", endpoint_url=endpoint, store=settings.marketplace_store,
                             max_attempts=MAX_ATTEMPTS)
    else:
        if check_credentials and not has_credentials(settings):
            raise Unavailable(f"no AWS credentials for MTurk {environment}: set aws_access_key_id and "
                              "aws_secret_access_key in [AWS Access] (or AWS_ACCESS_KEY_ID / "
                              "AWS_SECRET_ACCESS_KEY) to use this mode")
        key_id = settings.raw.text("AWS Access", "aws_access_key_id") or None
        secret = settings.raw.text("AWS Access", "aws_secret_access_key") or None
        client = make_client(environment, endpoint_url=endpoint_url, aws_access_key_id=key_id,
                             aws_secret_access_key=secret, max_attempts=MAX_ATTEMPTS)
    return MTurkMarketplace(client, environment)


OPENERS: dict[str, Callable[[Settings, str, Clock | None, str | None, bool], Marketplace]] = {
    "mturk": _open_mturk,
}


def marketplace_for(settings: Settings, environment: str, *, clock: Clock | None = None,
                    endpoint_url: str | None = None, check_credentials: bool = True,
                    marketplace: str = "mturk") -> Marketplace:
    """The process's marketplace adapter for the project and ``environment`` (thread-safe).

    ``check_credentials`` refuses sandbox/live up front (``Unavailable``) when no
    credentials could sign a call, so a page can say so; without it the first call fails
    instead (the CLI's behaviour: commands that make no call still work).
    """
    if environment not in MODES:
        raise InvalidInput(f"unknown marketplace mode {environment!r}; use one of {', '.join(MODES)}")
    if marketplace not in OPENERS:
        raise InvalidInput(f"unknown marketplace {marketplace!r}; use one of {', '.join(OPENERS)}")
    if environment == "local" and not endpoint_url:
        endpoint_url = os.environ.get(ENDPOINT_ENV) or None
    key = (marketplace, environment, str(settings.project_dir), str(settings.marketplace_store), endpoint_url,
           os.getpid(), _clock_key(clock) if environment == "local" and not endpoint_url else None)
    with _lock:
        market = _markets.get(key)
        if market is None:
            market = OPENERS[marketplace](settings, environment, clock, endpoint_url, check_credentials)
            _markets[key] = market
        return market


def cached() -> int:
    """How many marketplaces this process holds (tests check it stays at one)."""
    return len(_markets)


def reset() -> None:
    """Forget the cached marketplaces and stop local marketplace threads (tests, shutdown)."""
    with _lock:
        _markets.clear()
        servers = list(_local_servers.values())
        _local_servers.clear()
    for server in servers:
        server.stop()
