"""A runner beside ``turnout serve``: for ``do_scheduler = true``, and for the demo's arrivals.

The runner is started as a child process of the server's main process (gunicorn's master),
never inside a web worker: gunicorn builds the app in every worker, and a scheduler there
would mean one per worker. The child watches the server's pid and stops with it.

``do_scheduler = true`` with ``threads`` > 1 is refused, as psiTurk refused it: the
supported set-up beside several web workers is a separate ``turnout scheduler`` process,
which can be restarted, logged and monitored on its own.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

from turnout.config import ConfigError, Settings
from turnout.db.engine import Database
from turnout.services.tasks import runner_status

log = logging.getLogger("turnout.scheduler")


def check_serve(settings: Settings, workers: int | None) -> None:
    """Refuse do_scheduler with more than one worker process, saying what to do instead."""
    from turnout.server import worker_plan

    count = worker_plan(settings, workers)[0]  # what serve will run (threads = auto: 1 on SQLite)
    if settings.do_scheduler and count > 1:
        raise ConfigError(
            f"do_scheduler = true runs the task runner inside `turnout serve`, which is allowed only with one "
            f"worker process (threads = 1), and this server would start {count}; set threads = 1, or (better) "
            "set do_scheduler = false and run `turnout scheduler` as its own process beside the server")


def wants_runner(settings: Settings) -> bool:
    arrivals = settings.default_mode == "local" and settings.simulate_arrival_rate > 0
    return settings.do_scheduler or arrivals


def start_with_server(settings: Settings, db: Database, workers: int | None) -> subprocess.Popen[bytes] | None:
    """Start the runner child for this server if the configuration asks for one.

    With do_scheduler a live runner elsewhere is an error (two would fight over the lease);
    for the demo's arrivals alone that runner simply does the arrivals.
    """
    check_serve(settings, workers)
    if not wants_runner(settings):
        return None
    status = runner_status(db)
    if status["alive"]:
        where = f"{status['host']} pid {status['pid']}"
        if settings.do_scheduler:
            raise ConfigError(f"do_scheduler = true, but a runner is already running for this database ({where}); "
                              "stop it, or set do_scheduler = false and keep that one")
        log.warning("a runner is already running for this database (%s); it runs the simulated arrivals", where)
        return None
    # Its own process group keeps a terminal's Ctrl-C from interrupting it half-way through
    # its imports (a traceback on the terminal); it stops by itself within a second of the
    # server's exit (--watch-pid), giving its lease back.
    proc = subprocess.Popen(
        [sys.executable, "-m", "turnout.scheduler", "-C", str(settings.project_dir),
         "--watch-pid", str(os.getpid())], stdin=subprocess.DEVNULL, close_fds=True, process_group=0)
    threading.Thread(target=proc.wait, name="runner-reaper", daemon=True).start()
    return proc
