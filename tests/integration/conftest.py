"""Fixtures for recruitment tests: the offline marketplace over real HTTP, a database on
each backend, and a ``MarketContext`` wiring the two together, all on one ManualClock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from turnout.clock import ManualClock
from turnout.db.engine import Database
from turnout.db.migrate import upgrade
from turnout.marketplace import make_client
from turnout.marketplace.local import ThreadedMarketplace
from turnout.services.recruitment import MarketContext


@pytest.fixture
def market(tmp_path: Any, clock: ManualClock) -> Iterator[ThreadedMarketplace]:
    """The offline marketplace in a thread, on the test's clock; responses self-checked."""
    with ThreadedMarketplace(tmp_path / "mturk.db", clock=clock, self_check=True) as running:
        yield running
        assert not running.app.drift, "responses drifted from botocore's shapes: " + "; ".join(running.app.drift)


def local_client(market: ThreadedMarketplace) -> Any:
    # One attempt: the tests decide what a retry is, not botocore's retry loop.
    return make_client("local", endpoint_url=market.endpoint_url, store=market.store_path, max_attempts=1)


@dataclass
class Recruiting:
    """A study wired to the marketplace: what a recruitment test needs in one object."""

    ctx: MarketContext
    market: ThreadedMarketplace
    clock: ManualClock

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def state(self) -> Any:
        return self.market.state

    def context(self, *, db: Database | None = None, client: Any = None, actor: str = "test") -> MarketContext:
        """Another context on the same study: its own engine and client, as another process has."""
        return MarketContext(db=db or self.ctx.db, settings=self.ctx.settings, clock=self.clock, mode="local",
                             client=client or local_client(self.market), actor=actor)

    def set_hit_config(self, key: str, value: str) -> None:
        """Change one [HIT Configuration] key, as editing config.txt and restarting would
        (the section is read once, when the settings are loaded)."""
        from dataclasses import replace

        from turnout.config import read_hit_settings

        raw = self.ctx.settings.raw
        raw.set("HIT Configuration", key, value)
        self.ctx = replace(self.ctx, settings=replace(self.ctx.settings, hit=read_hit_settings(raw)))

    def new_database(self) -> Database:
        return Database(self.ctx.settings.database_url, self.ctx.settings.tables)

    def create_hit(self, assignments: int = 5, reward: str = "1.00") -> str:
        from turnout.services import hits

        return str(hits.create_hit(self.ctx, max_assignments=assignments, reward=reward, duration_hours=1)["hit_id"])

    def add_participant(self, assignment: Any, *, bonus: float | None = 0.0, status: int = 3,
                        codeversion: str | None = None) -> str:
        """The local row a participant who went through /exp ... /complete would have."""
        P = self.db.models.Participant
        uniqueid = f"{assignment.worker_id}:{assignment.assignment_id}"
        with self.db.begin() as session:
            session.add(P(uniqueid=uniqueid, assignmentid=assignment.assignment_id, workerid=assignment.worker_id,
                          hitid=assignment.hit_id, codeversion=codeversion or self.ctx.codeversion, mode="local",
                          status=status, bonus=bonus, beginhit=self.clock.now()))
        return uniqueid

    def participant_status(self, uniqueid: str) -> int | None:
        with self.db.begin() as session:
            return session.get(self.db.models.Participant, uniqueid).status

    def ledger(self, **where: Any) -> list[Any]:
        from sqlalchemy import select

        L = self.db.models.LedgerEntry
        query = select(L).order_by(L.id)
        for key, value in where.items():
            query = query.where(getattr(L, key) == value)
        with self.db.begin() as session:
            return list(session.scalars(query))

    def submitted_assignments(self, hit_id: str, count: int) -> list[Any]:
        """``count`` fresh workers accept and submit ``hit_id``; returns their assignments."""
        side = self.state.workers
        done = []
        for _ in range(count):
            worker = side.register()
            assignment = side.accept(worker.worker_id, hit_id)
            done.append(side.submit(assignment.assignment_id, {"done": "yes"}))
        return done

    def bonus_payments(self, assignment_id: str) -> list[dict[str, Any]]:
        client = local_client(self.market)
        return client.list_bonus_payments(AssignmentId=assignment_id)["BonusPayments"]

    def balance(self) -> str:
        return str(local_client(self.market).get_account_balance()["AvailableBalance"])


@pytest.fixture
def recruiting(make_settings: Callable[..., Any], shared_database_url: str, clock: ManualClock,
               market: ThreadedMarketplace) -> Iterator[Recruiting]:
    """A migrated database on each backend, in local mode, against the offline marketplace.

    The database is the run's shared one for the backend (migrated once, every row deleted
    after each test): migrating a fresh schema per test cost more than most tests."""
    settings = make_settings(shared_database_url)
    db = Database(settings.database_url, settings.tables)
    upgrade(db)
    ctx = MarketContext(db=db, settings=settings, clock=clock, mode="local", client=local_client(market),
                        actor="test")
    yield Recruiting(ctx, market, clock)
    db.dispose()


def timeout_after_delivery(client: Any, operation: str, times: int = 1) -> list[int]:
    """Make ``client``'s next ``times`` calls of ``operation`` reach the marketplace (which
    applies them) and then time out on the client side, as a dropped connection would.

    Returns a list that counts the calls so cut off.
    """
    import requests

    cut: list[int] = []

    def deliver_then_time_out(request: Any, **_: Any) -> None:
        if len(cut) >= times:
            return None
        cut.append(1)
        requests.post(request.url, data=request.body, headers=dict(request.headers.items()), timeout=30)
        raise ReadTimeoutError(endpoint_url=request.url)

    client.meta.events.register(f"before-send.mturk.{operation}", deliver_then_time_out)
    return cut


def never_delivered(client: Any, operation: str) -> None:
    """Make every call of ``operation`` on ``client`` time out before it reaches the
    marketplace (nothing is applied), as a connection that never opens would."""
    from botocore.exceptions import ConnectTimeoutError

    def never_sent(request: Any, **_: Any) -> None:
        raise ConnectTimeoutError(endpoint_url=request.url)

    client.meta.events.register(f"before-send.mturk.{operation}", never_sent)
