"""Background arrivals: simulated workers turning up at a steady rate while the server runs.

With ``[Marketplace] simulate_arrival_rate = R`` (workers per minute) and mode ``local``,
the task runner (``turnout scheduler``, or the one ``turnout serve`` starts beside itself
for a demo) runs an arrivals job every few seconds. It sends workers at random (Poisson)
times averaging R a minute, each walking the study at a tenth of real speed so that a
dashboard shows people in progress (``simulate_pace``, real seconds per simulated second;
a fifth do not finish, ``simulate_dropout``), and posts a HIT through the normal HIT
service whenever none is open, so a demo's database keeps filling.

Why the runner: gunicorn builds the app in every worker process, and arrivals started
there would mean one stream per worker. The runner is one process per database (its
lease), so there is exactly one arrival stream, and it stops with the runner.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from turnout.clock import Clock, SystemClock
from turnout.config import Settings

from .behaviour import plan_worker
from .driver import SimulatedWorker

__all__ = ["ARRIVAL_DROPOUT", "ARRIVAL_PACE", "Arrivals", "option"]

log = logging.getLogger("turnout.simulation.arrivals")

ARRIVAL_DROPOUT = 0.2     # a fifth of arrivals do not finish (quit, return, abandon)
ARRIVAL_PACE = 0.1        # real seconds per simulated second: a 5-minute visit takes 30 s
MAX_IN_PROGRESS = 8       # more arrivals than this at once are turned away (logged)
HIT_CHECK_INTERVAL_S = 10.0


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
        self._rng: random.Random | None = None
        self._gap = 0.0

    def _post_with_service(self) -> str:
        from .posting import post_hit

        return post_hit(self.settings, clock=self.clock, actor="simulation:arrivals")

    def ensure_hit(self) -> str | None:
        """Post a HIT when none is open; returns the new HIT's ID, or None."""
        from .posting import DEMO_ASSIGNMENTS, DEMO_REWARD, open_hits

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

    def announce(self) -> None:
        log.warning("simulated arrivals are on: about %g workers a minute (seed %d); "
                    "set [Marketplace] simulate_arrival_rate = 0 to stop them", self.rate, self.seed)

    def tick(self, seconds: float, monotonic: Callable[[], float] = time.monotonic) -> int:
        """Send the workers who arrive in the next ``seconds``: a Poisson number at the rate
        (exponential gaps carried over from tick to tick). The runner's arrivals job."""
        if self._rng is None:
            self._rng = random.Random(f"turnout-arrivals:{self.seed}")
            self._gap = self._rng.expovariate(self.rate / 60.0)
        sent = 0
        self._gap -= seconds
        while self._gap <= 0 and not self.stop.is_set():
            try:
                self.step(monotonic())
            except Exception:  # keep arriving; the next step may succeed
                log.exception("simulated arrivals: an arrival failed")
            sent += 1
            self._gap += self._rng.expovariate(self.rate / 60.0)
        return sent

    def run(self, wait: Callable[[float], bool] | None = None,
            monotonic: Callable[[], float] = time.monotonic) -> None:
        wait = wait or self.stop.wait
        rng = random.Random(f"turnout-arrivals:{self.seed}")
        self.announce()
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
