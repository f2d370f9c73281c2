"""Fixtures for the scheduler tests: a migrated database on each backend, the offline
marketplace over HTTP, and a runner environment on one ManualClock, so rounds an hour
apart take no wall-clock time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from turnout.clock import ManualClock
from turnout.db.engine import Database
from turnout.db.migrate import upgrade
from turnout.marketplace import make_client
from turnout.marketplace.local import ThreadedMarketplace
from turnout.scheduler import jobs
from turnout.services import campaigns
from turnout.services.recruitment import MarketContext


class Killed(BaseException):
    """The process died here (a BaseException, so no `except Exception` in the code catches it)."""


@dataclass
class Sched:
    """A study wired to a runner environment: what a scheduler test needs in one object."""

    settings: Any
    db: Database
    clock: ManualClock
    market: ThreadedMarketplace
    modes_opened: list[str] = field(default_factory=list)
    client_hook: Callable[[Any], None] | None = None

    @property
    def state(self) -> Any:
        return self.market.state

    def client(self) -> Any:
        client = make_client("local", endpoint_url=self.market.endpoint_url, store=self.market.store_path,
                             max_attempts=1)
        if self.client_hook is not None:
            self.client_hook(client)
        return client

    @contextmanager
    def open_market(self, mode: str) -> Iterator[Any]:
        self.modes_opened.append(mode)
        if mode != "local":
            raise AssertionError(f"the test opened a {mode} marketplace")
        yield self.client()

    def env(self, settings: Any = None) -> jobs.RunnerEnv:
        chosen = settings or self.settings
        return jobs.RunnerEnv(db=self.db, clock=self.clock, settings=lambda: chosen, market=self.open_market,
                              holder="test-runner")

    def ctx(self, settings: Any = None) -> MarketContext:
        return MarketContext(db=self.db, settings=settings or self.settings, clock=self.clock, mode="local",
                             client=self.client(), actor="test")

    def create(self, **options: Any) -> dict[str, Any]:
        defaults = {"goal": 25, "per_round": 10, "interval_minutes": 30, "reward": "1.00", "duration_hours": 1,
                    "mode": "local"}
        return campaigns.create(self.db, self.settings, self.clock, actor="test", **{**defaults, **options})

    def round(self, campaign_id: int, **kw: Any) -> campaigns.RoundResult:
        return campaigns.run_round(self.ctx(), campaign_id, **kw)

    def campaign_hits(self, campaign_id: int) -> list[Any]:
        H = campaigns.models(self.db).CampaignHit
        with self.db.begin() as session:
            return list(session.scalars(select(H).where(H.campaign_id == campaign_id).order_by(H.id)))

    def market_hits(self) -> list[Any]:
        page = self.state.list_hits(max_results=100)
        return list(page.items)

    def complete(self, hit_id: str, count: int, *, codeversion: str | None = None, status: int = 4,
                 mode: str = "local") -> list[Any]:
        """``count`` workers accept and submit ``hit_id``; each gets the local row a finished
        participant has."""
        side = self.state.workers
        P = self.db.models.Participant
        done = []
        for _ in range(count):
            worker = side.register()
            assignment = side.accept(worker.worker_id, hit_id)
            done.append(side.submit(assignment.assignment_id, {"done": "yes"}))
            with self.db.begin() as session:
                session.add(P(uniqueid=f"{worker.worker_id}:{assignment.assignment_id}",
                              assignmentid=assignment.assignment_id, workerid=worker.worker_id, hitid=hit_id,
                              codeversion=codeversion or self.settings.codeversion, mode=mode, status=status,
                              beginhit=self.clock.now(), endhit=self.clock.now()))
        return done

    def fill_open(self, campaign_id: int, *, limit: int | None = None) -> int:
        """Complete every open slot of the campaign's live HITs (at most ``limit``)."""
        done = 0
        for hit in self.campaign_hits(campaign_id):
            if hit.hit_id is None:
                continue
            snapshot = self.state.get_hit(hit.hit_id)
            n = snapshot.available if snapshot.status == "Assignable" else 0
            if limit is not None:
                n = min(n, limit - done)
            if n > 0:
                self.complete(hit.hit_id, n)
                done += n
        return done

    def completed(self) -> int:
        return campaigns.completed_count(self.db, self.settings.codeversion, "local")


def _sched(make_settings: Callable[..., Any], url: str, clock: ManualClock, tmp_path: Any) -> Iterator[Sched]:
    settings = make_settings(url, launch_in_mode="local")
    db = Database(settings.database_url, settings.tables)
    upgrade(db)
    with ThreadedMarketplace(tmp_path / "mturk.db", clock=clock) as market:
        yield Sched(settings=settings, db=db, clock=clock, market=market)
    jobs.install(None)
    db.dispose()


@pytest.fixture
def sched(make_settings: Callable[..., Any], shared_database_url: str, clock: ManualClock,
          tmp_path: Any) -> Iterator[Sched]:
    """A migrated database on each backend, in local mode, with the offline marketplace."""
    yield from _sched(make_settings, shared_database_url, clock, tmp_path)


@pytest.fixture
def sched_sqlite(make_settings: Callable[..., Any], sqlite_url: str, clock: ManualClock,
                 tmp_path: Any) -> Iterator[Sched]:
    """The same on SQLite only."""
    yield from _sched(make_settings, sqlite_url, clock, tmp_path)


def deliver_then_die(client: Any, operation: str, *, on_call: int) -> list[int]:
    """The ``on_call``-th ``operation`` reaches the marketplace (which applies it), then the
    process dies before the answer is read."""
    import requests

    calls: list[int] = []

    def handler(request: Any, **_: Any) -> None:
        calls.append(1)
        if len(calls) == on_call:
            requests.post(request.url, data=request.body, headers=dict(request.headers.items()), timeout=30)
            raise Killed(f"killed during {operation}")
        return None

    client.meta.events.register(f"before-send.mturk.{operation}", handler)
    return calls
