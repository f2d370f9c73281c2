"""Serving a project: the WSGI stack and the gunicorn launcher behind ``turnout serve``."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
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


def _freeze_heap_before_fork(server: Any, worker: Any) -> None:
    """Move everything the master has built into the collector's permanent generation.

    Why: a worker is a fork of the master, and when it exits, Python's final garbage
    collection walks every object it inherited (flask, SQLAlchemy, botocore's service
    models...), writing to each one's header and so copying every page of the heap. Five
    workers doing that at once on two busy cores took over 10 s, so Ctrl-C ended with
    gunicorn's graceful_timeout and "Worker ... was sent SIGKILL! Perhaps out of memory?".
    Frozen objects are skipped by every collection, the final one included (and the pages
    stay shared while the worker runs); see the gc.freeze documentation.
    """
    gc.freeze()


def _quit_once(worker: Any) -> None:
    """Ignore further SIGINT/SIGQUIT in a worker that is already quitting.

    Why: Ctrl-C reaches every process of the terminal's group, so a worker gets SIGINT from
    the terminal and then SIGQUIT from the master; gunicorn's handler would raise SystemExit
    a second time, part-way through the first exit (its log line, the exit hook), and the
    worker would then linger in interpreter shutdown until the master kills it.
    """
    for number in (signal.SIGINT, signal.SIGQUIT):
        # A Python no-op, not SIG_IGN: a signal already caught but not yet handled would
        # otherwise surface as "OSError: Signal 3 ignored due to race condition".
        signal.signal(number, _ignore_signal)


def _ignore_signal(number: int, frame: Any) -> None:
    """Nothing: the worker is on its way out already."""


def _end_worker_process(server: Any, worker: Any) -> None:
    """End a worker that is exiting cleanly without Python's interpreter shutdown.

    Why: by the time gunicorn calls this hook its worker has stopped accepting and has given
    requests in flight their graceful time. What the interpreter's shutdown would add is a
    join of the request threads, and a thread blocked reading a connection on which the client
    sent nothing yet (a browser's preconnect or idle keep-alive socket) holds the whole
    process until that read times out: seconds per worker, which is what made Ctrl-C slow and
    gunicorn's graceful_timeout end in SIGKILL. Logs are flushed first. Exits with another
    status (a worker that could not boot) keep gunicorn's own path, so the master still sees
    the status.
    """
    if os.getpid() != getattr(worker, "pid", None):
        return  # the master calls this hook too, when it reaps a worker
    exiting = sys.exc_info()[1]
    if not isinstance(exiting, SystemExit) or exiting.code not in (0, None):
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)


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
        "pre_fork": _freeze_heap_before_fork,
        "worker_int": _quit_once,
        "worker_exit": _end_worker_process,
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
