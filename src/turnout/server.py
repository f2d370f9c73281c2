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
    from turnout.simulation.arrivals import start_background
    from turnout.simulation.worker_site import create_worker_site

    settings.marketplace_store.parent.mkdir(parents=True, exist_ok=True)
    start_background(settings)  # simulate_arrival_rate > 0: one arrivals process, whatever the worker count
    store = str(settings.marketplace_store)
    return {"/_mturk": create_marketplace(store), "/_mturk/worker": create_worker_site(store)}


# Threads per worker process. They no longer wait for slow clients (the worker reads each
# request whole first), only for the database, so a few per process are enough.
THREADS_PER_PROCESS = 4
# On SQLite one process serves (see worker_plan); it has more threads, so that more saves
# join each group commit while the previous one is being synced.
SQLITE_THREADS = 8


def worker_plan(settings: Settings, workers: int | None = None) -> tuple[int, int]:
    """(worker processes, threads per process) for ``turnout serve``.

    ``--workers`` or a number in ``threads`` is taken as given. ``threads = auto`` depends
    on the database: PostgreSQL and MariaDB get 2 x cores + 1 processes (they take
    concurrent writers); a SQLite file gets one process, because SQLite has one write lock
    per file. Within a process, writers queue and share group commits (db/engine.py);
    between processes they can only wait by polling the lock, which is where the long save
    tail of the multi-process setup came from. The one process still uses more than one
    core: SQLite, the JSON parser and the socket I/O release the GIL.
    """
    sqlite = settings.database_url.startswith("sqlite")
    if workers:
        return workers, SQLITE_THREADS if sqlite else THREADS_PER_PROCESS
    auto = settings.raw.text("Server Parameters", "threads").strip().lower() == "auto"
    if sqlite:
        return (1 if auto else settings.threads), SQLITE_THREADS
    return settings.threads, THREADS_PER_PROCESS


def worker_class() -> str:
    """turnout's buffering gthread worker (turnout/buffered_worker.py), where this gunicorn
    has the hooks it builds on; plain gthread otherwise."""
    from gunicorn.workers.gthread import ThreadWorker

    if all(hasattr(ThreadWorker, name) for name in ("enqueue_req", "murder_pending", "handle")):
        return "turnout.buffered_worker.BufferedThreadWorker"
    logging.getLogger("turnout").warning("this gunicorn has no hooks for request buffering; "
                                         "slow clients can hold worker threads")
    return "gthread"


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int | None = None) -> None:
    """Run gunicorn in this process (processes and threads from ``worker_plan``)."""
    from gunicorn.app.base import BaseApplication

    processes, threads = worker_plan(settings, workers)
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": processes,
        "worker_class": worker_class(),
        "threads": threads,
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
