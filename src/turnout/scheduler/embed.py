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
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from turnout.config import ConfigError, Settings
from turnout.db.engine import Database
from turnout.services.tasks import runner_status

log = logging.getLogger("turnout.scheduler")


def check_serve(settings: Settings, workers: int | None) -> None:
    """Refuse do_scheduler with more than one worker process, saying what to do instead."""
    from turnout.serving.launcher import worker_plan

    count = worker_plan(settings, workers)[0]  # what serve will run (threads = auto: 1 on SQLite)
    if settings.do_scheduler and count > 1:
        raise ConfigError(
            f"do_scheduler = true runs the task runner inside `turnout serve`, which is allowed only with one "
            f"worker process (threads = 1), and this server would start {count}; set threads = 1, or (better) "
            "set do_scheduler = false and run `turnout scheduler` as its own process beside the server")


def wants_runner(settings: Settings) -> bool:
    arrivals = settings.default_mode == "local" and settings.simulate_arrival_rate > 0
    return settings.do_scheduler or arrivals


# How long a restarted server waits for the runner of the server it replaces: that runner
# notices its server is gone within a second, lets its running jobs finish and gives its
# lease back.
ORPHAN_GRACE_S = 20.0


def _orphaned(pid: int | None) -> bool:
    """Whether ``pid`` (on this host) is a runner started beside a server that has exited:
    its command line names ``--watch-pid N`` and N is gone. False when that cannot be told."""
    if not pid:
        return False
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")  # noqa: SIM115 - read once
        watched = int(argv[argv.index(b"--watch-pid") + 1])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(watched, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _after_a_stopped_server(db: Database, status: dict[str, Any]) -> dict[str, Any]:
    """A server restarted at once (Ctrl-C, then ``make demo`` again) finds the previous
    server's runner still holding the lease for a moment: wait for it to go, rather than
    run without arrivals or refuse do_scheduler."""
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while (status["alive"] and status.get("host") == socket.gethostname()[:128] and _orphaned(status.get("pid"))
           and time.monotonic() < deadline):
        time.sleep(0.5)
        status = runner_status(db)
    return status


def start_with_server(settings: Settings, db: Database, workers: int | None) -> subprocess.Popen[bytes] | None:
    """Start the runner child for this server if the configuration asks for one.

    With do_scheduler a live runner elsewhere is an error (two would fight over the lease);
    for the demo's arrivals alone that runner simply does the arrivals.
    """
    check_serve(settings, workers)
    if not wants_runner(settings):
        return None
    status = _after_a_stopped_server(db, runner_status(db))
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
