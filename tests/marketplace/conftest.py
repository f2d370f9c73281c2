"""Fixtures for the marketplace tests: one offline marketplace served over real HTTP for
the whole session, reset before each test, and an unmodified boto3 client pointed at it.

Set ``TURNOUT_MTURK_SANDBOX_CONTRACT=1`` (with AWS credentials in the usual places) to
run the contract tests against the real MTurk sandbox instead; tests marked
``local_only`` (they need the control API, simulated workers or a ManualClock) are then
skipped.

Every MTurk response the offline marketplace produces during a test is validated against
botocore's output shape (``self_check``); any drift fails the test at teardown.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from turnout.clock import ManualClock
from turnout.marketplace import make_client
from turnout.marketplace.local import ThreadedMarketplace
from turnout.marketplace.local.testing import START, external_question, sandbox_contract_requested

SANDBOX = sandbox_contract_requested()
EXTERNAL_URL = "https://example.org/turnout-contract-test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "local_only: needs the offline marketplace (control API, workers, ManualClock)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SANDBOX:
        return
    if boto3.session.Session().get_credentials() is None:
        skip = pytest.mark.skip(reason="TURNOUT_MTURK_SANDBOX_CONTRACT=1 but no AWS credentials found")
        for item in items:
            if "marketplace" in str(item.path):
                item.add_marker(skip)
        return
    skip_local = pytest.mark.skip(reason="needs the offline marketplace; skipped in the sandbox contract run")
    for item in items:
        if "local_only" in item.keywords:
            item.add_marker(skip_local)


@pytest.fixture(scope="session")
def session_clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(scope="session")
def session_market(tmp_path_factory: pytest.TempPathFactory, session_clock: ManualClock) -> Iterator[ThreadedMarketplace]:
    with ThreadedMarketplace(tmp_path_factory.mktemp("mturk") / "mturk.db", clock=session_clock, self_check=True) as market:
        yield market


@pytest.fixture
def clock(session_clock: ManualClock) -> ManualClock:
    return session_clock


@pytest.fixture
def market(request: pytest.FixtureRequest, session_clock: ManualClock) -> Iterator[ThreadedMarketplace]:
    """The offline marketplace, empty, at START, with no faults (local runs only)."""
    if SANDBOX:
        pytest.skip("needs the offline marketplace")
    market: ThreadedMarketplace = request.getfixturevalue("session_market")
    session_clock.set(START)
    market.state.reset()
    market.app.drift.clear()
    yield market
    drift = list(market.app.drift)
    market.app.drift.clear()
    assert not drift, "responses drifted from botocore's output shapes:\n" + "\n".join(drift)


@pytest.fixture(scope="session")
def _session_client(request: pytest.FixtureRequest) -> Any:
    if SANDBOX:
        return make_client("sandbox", max_attempts=3)
    market: ThreadedMarketplace = request.getfixturevalue("session_market")
    # One attempt: a retried 500 would hide what the marketplace answered (MTURK_FACTS pitfall 3).
    return make_client("local", endpoint_url=market.endpoint_url, store=market.store_path, max_attempts=1)


@pytest.fixture
def mturk(request: pytest.FixtureRequest, _session_client: Any) -> Any:
    """An unmodified boto3 MTurk client: offline marketplace, or the sandbox in contract runs."""
    if not SANDBOX:
        request.getfixturevalue("market")  # empty state for every test
    return _session_client


@pytest.fixture
def make_hit(mturk: Any) -> Iterator[Callable[..., dict[str, Any]]]:
    """Create a HIT with sensible defaults; in sandbox runs, expire and delete it afterwards."""
    created: list[str] = []

    def make(**overrides: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "Title": "turnout contract test",
            "Description": "A HIT created by turnout's marketplace tests.",
            "Reward": "1.00",
            "AssignmentDurationInSeconds": 600,
            "LifetimeInSeconds": 3600,
            "MaxAssignments": 1,
            "AutoApprovalDelayInSeconds": 86400,
            "Question": external_question(EXTERNAL_URL),
        }
        params.update(overrides)
        params = {k: v for k, v in params.items() if v is not None}
        hit = mturk.create_hit(**params)["HIT"]
        created.append(hit["HITId"])
        return hit

    yield make
    if SANDBOX:  # best-effort clean-up of the real sandbox
        for hit_id in created:
            try:
                mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=datetime(2015, 1, 1, tzinfo=UTC))
                mturk.delete_hit(HITId=hit_id)
            except Exception:  # noqa: BLE001 - clean-up must not mask the test's result
                pass


@pytest.fixture
def token() -> Callable[[], str]:
    """Fresh UniqueRequestTokens (fresh per run, so sandbox runs do not collide)."""
    return lambda: f"turnout-test-{uuid.uuid4().hex}"


@pytest.fixture
def worker(market: ThreadedMarketplace) -> Any:
    """One registered worker with default attributes (US, 100% approved, 1000 approved)."""
    return market.state.workers.register()


@pytest.fixture
def submitted(market: ThreadedMarketplace, make_hit: Callable[..., dict[str, Any]], worker: Any) -> Callable[..., Any]:
    """Make a HIT, have ``worker`` accept and submit it; returns the Assignment."""

    def make(**hit_overrides: Any) -> Any:
        hit = make_hit(**hit_overrides)
        side = market.state.workers
        assignment = side.accept(worker.worker_id, hit["HITId"])
        return side.submit(assignment.assignment_id, {"answer": "42"})

    return make
