"""Serving a project: the WSGI stack and the gunicorn launcher behind ``turnout serve``."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from turnout.config import SERVING_FILE, Settings, read_serving_file, write_serving_file

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
    from turnout.events import show_on_terminal

    show_on_terminal()  # turnout serve --demo: HIT posted, worker accepted... on the terminal too


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
    from turnout.marketplace.project import open_store
    from turnout.simulation.worker_site import create_worker_site

    open_store(settings).close()  # an unusable [Marketplace] local_store: one ConfigError line
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


def _written_by(path: Any, pid: int) -> bool:
    import json

    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["pid"]) == pid
    except (OSError, ValueError, KeyError, TypeError):
        return False


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
    """turnout's buffering gthread worker (turnout/serving/gunicorn_worker.py), where this gunicorn
    has the hooks it builds on; plain gthread otherwise."""
    from gunicorn.workers.gthread import ThreadWorker

    if all(hasattr(ThreadWorker, name) for name in ("enqueue_req", "murder_pending", "handle")):
        return "turnout.serving.gunicorn_worker.BufferedThreadWorker"
    logging.getLogger("turnout").warning("this gunicorn has no hooks for request buffering; "
                                         "slow clients can hold worker threads")
    return "gthread"


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int | None = None,
                 on_ready: Callable[[Any], None] | None = None) -> None:
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
        "pre_fork": _freeze_heap_before_fork,
        "worker_int": _quit_once,
        "worker_exit": _end_worker_process,
    }
    if settings.certfile and settings.keyfile:
        options["certfile"] = str(settings.project_dir / settings.certfile)
        options["keyfile"] = str(settings.project_dir / settings.keyfile)
    protocol = "https" if settings.certfile and settings.keyfile else "http"

    def record_address(server: Any) -> None:
        """Write down where the master listens (the port it really bound), so local-mode ad
        URLs made by this server, its arrivals and `turnout hit create` point here."""
        address = server.LISTENERS[0].sock.getsockname() if server.LISTENERS else (host, port)
        write_serving_file(settings.project_dir, protocol, host, int(address[1]), os.getpid())
        if on_ready is not None:
            on_ready(server)  # the banner: printed once listening, from gunicorn's real settings

    def forget_address(server: Any) -> None:
        path = settings.project_dir / SERVING_FILE
        if read_serving_file(settings.project_dir) is not None and _written_by(path, os.getpid()):
            path.unlink(missing_ok=True)

    options["when_ready"] = record_address
    options["on_exit"] = forget_address

    class TurnoutServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if value is not None:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            configure_logging(settings)
            return build_wsgi(settings)

    TurnoutServer().run()
