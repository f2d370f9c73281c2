"""The lab's dashboard (``/dashboard``) and its JSON API (``/api``), mounted only when
``[Server Parameters] enable_dashboard = true``.

``init_app`` refuses to start with one line naming a missing login setting, and otherwise
registers both blueprints. Nothing here runs at import time, and nothing calls the
marketplace until a page needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

from turnout.clock import Clock
from turnout.config import ConfigError, Settings
from turnout.db.engine import Database
from turnout.services.recruitment import MarketContext

REQUIRED_KEYS = ("login_username", "login_pw", "secret_key")


def check_settings(settings: Settings) -> None:
    """Start-up stops with one line naming the first missing login setting."""
    for key in REQUIRED_KEYS:
        if not getattr(settings, key):
            raise ConfigError(f"{settings.raw.where('Server Parameters', key)}: must be set when "
                              "enable_dashboard = true (or set PSITURK_/TURNOUT_"
                              f"{key.upper()}); `turnout hash-password` makes a login_pw hash")


class _Sessions(SecureCookieSessionInterface):
    """Mark the cookie Secure whenever the request came over HTTPS (or the config says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        try:
            return bool(super().get_cookie_secure(app) or request.is_secure)
        except RuntimeError:  # outside a request
            return bool(super().get_cookie_secure(app))


@dataclass
class DashboardState:
    """What the dashboard's views share; ``open_market`` is replaceable in tests."""

    settings: Settings
    db: Database
    ctx: Any = field(repr=False)
    open_market: Callable[[str, str], MarketContext] = field(default=None)  # type: ignore[assignment]
    balances: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def clock(self) -> Clock:
        """The app's clock, read each time (tests swap it per test)."""
        return self.ctx.clock  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    """Mount ``/dashboard`` and ``/api`` on the experiment app."""
    from turnout.api import bp as api_bp

    # The page modules add their routes to the blueprint when imported: this is the one
    # place they are loaded, so a page module never imports this package.
    from turnout.dashboard import accounts_views, auth, reconcile_views, scheduling, views  # noqa: F401
    from turnout.dashboard.blueprint import bp as dashboard_bp
    from turnout.services import context

    ctx = app.extensions["turnout"]
    settings: Settings = ctx.settings
    check_settings(settings)
    state = DashboardState(settings=settings, db=ctx.db, ctx=ctx)

    def open_market(mode: str, actor: str) -> MarketContext:
        return context.open_market(settings, state.db, mode, actor, state.clock)

    state.open_market = open_market
    app.extensions["turnout.dashboard"] = state
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.certfile and settings.keyfile),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    app.session_interface = _Sessions()
    auth.install(app)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(api_bp)
