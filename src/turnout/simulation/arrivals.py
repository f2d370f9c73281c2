"""Background arrivals: simulated workers turning up at a steady rate while the server runs.

With ``[Marketplace] simulate_arrival_rate = R`` (workers per minute) and mode ``local``,
``turnout serve`` gets one dedicated arrivals process. It sends workers at random
(Poisson) times averaging R a minute, each walking the study at a tenth of real speed so
that a dashboard shows people in progress (``simulate_pace``, real seconds per simulated
second; a fifth do not finish, ``simulate_dropout``), and posts a HIT through the normal
HIT service whenever none is open, so a demo's database keeps filling.

Why a process of its own: gunicorn builds the app in every worker process, and a thread
there would mean one arrival stream per worker. Every worker calls ``start_background``
when it builds the app; the first one starts ``python -m turnout.simulation.arrivals``,
which holds an exclusive lock on a file beside the marketplace store, so at most one
arrivals process exists per store. It exits when the worker that started it goes away;
gunicorn's replacement worker starts a new one.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from turnout.clock import Clock, SystemClock
from turnout.config import Settings

from .behaviour import plan_worker
from .workers import SimulatedWorker

__all__ = ["ARRIVAL_DROPOUT", "ARRIVAL_PACE", "Arrivals", "lock_path", "start_background"]

log = logging.getLogger("turnout.simulation.arrivals")

ARRIVAL_DROPOUT = 0.2     # a fifth of arrivals do not finish (quit, return, abandon)
ARRIVAL_PACE = 0.1        # real seconds per simulated second: a 5-minute visit takes 30 s
MAX_IN_PROGRESS = 8       # more arrivals than this at once are turned away (logged)
HIT_CHECK_INTERVAL_S = 10.0
WATCH_INTERVAL_S = 1.0


def lock_path(settings: Settings) -> Path:
    store = settings.marketplace_store
    return store.with_name(store.name + ".arrivals.lock")


def _try_lock(path: Path) -> IO[Any] | None:
    """An open, exclusively locked file, or None if another process holds the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


class Arrivals:
    """Sends simulated workers at ``rate_per_minute`` until ``stop`` is set.

    ``wait(seconds) -> bool`` is ``stop.wait`` by default; tests pass their own so no
    wall-clock time passes.
    """

    def __init__(self, settings: Settings, *, rate_per_minute: float, seed: int | None = None,
                 clock: Clock | None = None, pace: float = ARRIVAL_PACE, dropout: float = ARRIVAL_DROPOUT,
                 marketplace: Any | None = None, post_hit: Callable[[], str] | None = None,
                 max_in_progress: int = MAX_IN_PROGRESS) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        from turnout.marketplace.project import open_store

        self.settings = settings
        self.rate = rate_per_minute
        self.seed = secrets.randbelow(2**31) if seed is None else seed
        self.clock = clock or SystemClock()
        self.pace = pace
        self.dropout = dropout
        self.state = open_store(settings, self.clock)
        self.marketplace = marketplace or self.state.workers
        self._post_hit = post_hit or self._post_with_service
        self.max_in_progress = max_in_progress
        self.stop = threading.Event()
        self.sent = 0
        self.turned_away = 0
        self.results: list[Any] = []
        self._threads: list[threading.Thread] = []
        self._last_hit_check = float("-inf")
        self._lock = threading.Lock()

    def _post_with_service(self) -> str:
        from .hits import post_hit

        return post_hit(self.settings, clock=self.clock, actor="simulation:arrivals")

    def ensure_hit(self) -> str | None:
        """Post a HIT when none is open; returns the new HIT's ID, or None."""
        from .hits import DEMO_ASSIGNMENTS, DEMO_REWARD, open_hits

        if open_hits(self.state):
            return None
        try:
            hit_id = self._post_hit()
        except Exception as exc:  # a bad config must not kill the server; say why in its log
            log.error("simulated arrivals: no HIT is open and posting one failed: %s", exc)
            return None
        log.warning("simulated arrivals: no HIT was open in the offline marketplace, so posted HIT %s "
                 "(%d assignments, $%s) through the HIT service's boto3 client", hit_id, DEMO_ASSIGNMENTS,
                 DEMO_REWARD)
        return hit_id

    def in_progress(self) -> int:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            return len(self._threads)

    def send_one(self) -> threading.Thread | None:
        """Start the next planned worker in its own thread (None if too many are in progress)."""
        if self.in_progress() >= self.max_in_progress:
            self.turned_away += 1
            log.warning("simulated arrivals: %d visits still in progress; skipping an arrival", self.max_in_progress)
            return None
        plan = plan_worker(self.seed, self.sent, dropout=self.dropout)
        self.sent += 1
        worker = SimulatedWorker(plan, self.marketplace, clock=self.clock, pace=self.pace,
                                 sleep=self._sleep)

        def visit() -> None:
            result = worker.run()
            with self._lock:
                self.results.append(result)
            log.info("simulated arrival %s (%s): %s %s", plan.worker_id, plan.fate.value, result.outcome,
                     result.detail)

        thread = threading.Thread(target=visit, name=f"arrival-{plan.index}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return thread

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)  # a stopping server does not wait for a slow visit

    def step(self, monotonic: float) -> threading.Thread | None:
        """One arrival: make sure a HIT is open (at most every few seconds), then send a worker."""
        if monotonic - self._last_hit_check >= HIT_CHECK_INTERVAL_S:
            self._last_hit_check = monotonic
            self.ensure_hit()
        return self.send_one()

    def run(self, wait: Callable[[float], bool] | None = None,
            monotonic: Callable[[], float] = time.monotonic) -> None:
        wait = wait or self.stop.wait
        rng = random.Random(f"turnout-arrivals:{self.seed}")
        log.warning("simulated arrivals are on: about %g workers a minute (seed %d); "
                    "set [Marketplace] simulate_arrival_rate = 0 to stop them", self.rate, self.seed)
        while not self.stop.is_set():
            if wait(rng.expovariate(self.rate / 60.0)):
                break
            try:
                self.step(monotonic())
            except Exception:  # keep arriving; the next step may succeed
                log.exception("simulated arrivals: an arrival failed")

    def join(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))


# --- the dedicated process -----------------------------------------------------------


def start_background(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start the arrivals process for this project unless one runs already.

    Called from every server process as it builds the app; cheap when arrivals are off.
    """
    if settings.default_mode != "local" or settings.simulate_arrival_rate <= 0:
        return None
    probe = _try_lock(lock_path(settings))
    if probe is None:
        return None  # running already
    # The child inherits the locked file (flock belongs to the open file, not the process), so
    # the workers booting beside this one see the lock held at once and start no process of
    # their own. Its own process group keeps a terminal's Ctrl-C from interrupting it half-way
    # through its imports (a traceback on the terminal); it stops when this worker goes away.
    with probe:
        proc = subprocess.Popen(
            [sys.executable, "-m", "turnout.simulation.arrivals", "--project", str(settings.project_dir),
             "--watch-pid", str(os.getpid()), "--lock-fd", str(probe.fileno())],
            stdin=subprocess.DEVNULL, close_fds=True, pass_fds=(probe.fileno(),), process_group=0)
    threading.Thread(target=proc.wait, name="arrivals-reaper", daemon=True).start()
    log.info("started the simulated-arrivals process (pid %d, %g workers a minute)", proc.pid,
             settings.simulate_arrival_rate)
    return proc


def option(settings: Settings, key: str, default: float, low: float, high: float) -> float:
    """An optional ``[Marketplace]`` number (``simulate_pace``, ``simulate_dropout``)."""
    from turnout.config import ConfigError

    text = settings.get("Marketplace", key, fallback=str(default)) or str(default)
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"config.txt [Marketplace] {key}: expected a number, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"config.txt [Marketplace] {key}: {value:g} is out of range ({low:g} to {high:g})")
    return value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m turnout.simulation.arrivals",
                                     description="Send simulated workers at the project's simulate_arrival_rate.")
    parser.add_argument("--project", required=True, help="the project folder")
    parser.add_argument("--watch-pid", type=int, help="exit when this process ends")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--lock-fd", type=int, help="the store's arrivals lock, already held for this process")
    args = parser.parse_args(argv)

    from turnout.config import ConfigError, load_settings
    from turnout.server import configure_logging

    try:
        settings = load_settings(args.project)
        pace = option(settings, "simulate_pace", ARRIVAL_PACE, 0.0, 10.0)
        dropout = option(settings, "simulate_dropout", ARRIVAL_DROPOUT, 0.0, 1.0)
    except ConfigError as exc:
        print(f"turnout arrivals: {exc}", file=sys.stderr)
        return 1
    configure_logging(settings)
    if args.lock_fd is not None:
        held: IO[Any] | None = open(args.lock_fd, "a+")  # noqa: SIM115 - held for the life of the process
    else:
        held = _try_lock(lock_path(settings))
    if held is None:
        return 0  # another arrivals process serves this store
    if settings.default_mode != "local" or settings.simulate_arrival_rate <= 0:
        return 0
    arrivals = Arrivals(settings, rate_per_minute=settings.simulate_arrival_rate, seed=args.seed, pace=pace,
                        dropout=dropout)

    def stop(*_: Any) -> None:
        arrivals.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner = threading.Thread(target=arrivals.run, name="arrivals", daemon=True)
    runner.start()
    parent = os.getppid()
    while not arrivals.stop.wait(WATCH_INTERVAL_S):
        if os.getppid() != parent or (args.watch_pid and not _alive(args.watch_pid)):
            log.info("simulated arrivals: the server process is gone; stopping")
            arrivals.stop.set()
    runner.join(timeout=5)
    held.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
