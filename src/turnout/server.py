"""Serving a project: the WSGI stack and the gunicorn launcher behind ``turnout serve``."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from turnout.config import Settings

LOG_LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]


def configure_logging(settings: Settings) -> None:
    """Log to the project's ``logfile`` (``-`` means standard error), at ``loglevel``."""
    root = logging.getLogger()
    root.setLevel(LOG_LEVELS[settings.loglevel])
    target = settings.logfile
    if target in ("", "-"):
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        path = target if os.path.isabs(target) else str(settings.project_dir / target)
        handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"))
    root.handlers[:] = [handler]


def build_wsgi(settings: Settings) -> Any:
    """The full WSGI application: the experiment server, plus the offline marketplace at
    ``/_mturk/`` when the project runs in local mode."""
    from turnout.app import create_app

    app = create_app(settings)
    mounts = extra_mounts(settings)
    if not mounts:
        return app
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, mounts)  # type: ignore[method-assign]
    return app


def extra_mounts(settings: Settings) -> dict[str, Any]:
    if settings.default_mode != "local":
        return {}
    try:
        from turnout.marketplace.local import create_app as create_marketplace
    except ImportError:  # the offline marketplace is optional at this layer
        return {}
    from turnout.simulation.worker_site import create_worker_site

    settings.marketplace_store.parent.mkdir(parents=True, exist_ok=True)
    store = str(settings.marketplace_store)
    return {"/_mturk": create_marketplace(store), "/_mturk/worker": create_worker_site(store)}


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int | None = None) -> None:
    """Run gunicorn in this process with ``workers`` processes (config ``threads``)."""
    from gunicorn.app.base import BaseApplication

    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers or settings.threads,
        "worker_class": "gthread",
        "threads": 4,
        "timeout": settings.server_timeout,
        "graceful_timeout": 10,
        "loglevel": ["debug", "info", "warning", "error", "critical"][settings.loglevel],
        "accesslog": settings.accesslog or None,
        "errorlog": "-" if settings.logfile in ("", "-") else str(settings.project_dir / settings.logfile),
        "proc_name": f"turnout:{settings.project_dir.name}",
        "limit_request_line": 8190,
    }
    if settings.certfile and settings.keyfile:
        options["certfile"] = str(settings.project_dir / settings.certfile)
        options["keyfile"] = str(settings.project_dir / settings.keyfile)

    class TurnoutServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if value is not None:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            configure_logging(settings)
            return build_wsgi(settings)

    TurnoutServer().run()
