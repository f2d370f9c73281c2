"""The store survives restarts and tolerates several servers on one file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from turnout.clock import ManualClock
from turnout.marketplace import make_client
from turnout.marketplace.local import ThreadedMarketplace, WorkerActionRefused
from turnout.marketplace.local.testing import START, external_question

pytestmark = pytest.mark.local_only
HIT = {"Title": "t", "Description": "d", "Reward": "1.00", "AssignmentDurationInSeconds": 600,
       "LifetimeInSeconds": 3600, "Question": external_question("https://example.org/x")}


def _client(market: ThreadedMarketplace) -> Any:
    return make_client("local", endpoint_url=market.endpoint_url, store=market.store_path, max_attempts=1)


def test_hits_money_workers_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    clock = ManualClock(START)
    store = tmp_path / "mturk.db"
    with ThreadedMarketplace(store, clock=clock, self_check=True) as first:
        client = _client(first)
        hit = client.create_hit(**HIT, UniqueRequestToken="campaign:1:round:1:hit:1")["HIT"]
        worker = first.state.workers.register()
        done = first.state.workers.submit(first.state.workers.accept(worker.worker_id, hit["HITId"]).assignment_id)
        client.approve_assignment(AssignmentId=done.assignment_id)
    with ThreadedMarketplace(store, clock=clock, self_check=True) as second:
        client = _client(second)
        assert client.get_hit(HITId=hit["HITId"])["HIT"]["NumberOfAssignmentsCompleted"] == 1
        assert client.get_account_balance()["AvailableBalance"] == "9998.80"
        assert second.state.workers.get(worker.worker_id) == worker
        with pytest.raises(client.exceptions.RequestError, match=hit["HITId"]):
            client.create_hit(**HIT, UniqueRequestToken="campaign:1:round:1:hit:1")
        assert second.app.drift == []


def test_two_servers_on_one_file_never_overfill_a_hit_or_lose_a_write(tmp_path: Path) -> None:
    clock = ManualClock(START)
    store = tmp_path / "shared.db"
    with ThreadedMarketplace(store, clock=clock, self_check=True) as a, ThreadedMarketplace(store, clock=clock, self_check=True) as b:
        clients = [_client(m) for m in (a, b)]
        hit = clients[0].create_hit(**HIT, MaxAssignments=5)["HIT"]
        workers = a.state.workers.seed(12)

        def accept(i: int) -> bool:
            side = (a, b)[i % 2].state.workers
            try:
                side.accept(workers[i].worker_id, hit["HITId"])
                return True
            except WorkerActionRefused:
                return False

        def create(i: int) -> str:
            return clients[i % 2].create_hit(**HIT, RequesterAnnotation=str(i))["HIT"]["HITId"]

        with ThreadPoolExecutor(max_workers=8) as pool:
            accepted = list(pool.map(accept, range(12)))
            created = list(pool.map(create, range(16)))
        assert sum(accepted) == 5
        assert len(set(created)) == 16
        seen = b.state.get_hit(hit["HITId"])
        assert (seen.pending, seen.available, seen.status) == (5, 0, "Unassignable")
        total = 0
        token: Any = None
        while True:
            page = clients[1].list_hits(MaxResults=100, **({"NextToken": token} if token else {}))
            total += page["NumResults"]
            token = page.get("NextToken")
            if not token:
                break
        assert total == 17
        assert a.state.balance() == Decimal("10000.00")
        assert a.app.drift == b.app.drift == []


def test_a_server_in_another_process_shares_the_store(tmp_path: Path) -> None:
    """Real multi-process use (gunicorn workers): a standalone server process and this one."""
    import subprocess
    import sys

    store = tmp_path / "procs.db"
    proc = subprocess.Popen([sys.executable, "-m", "turnout.marketplace.local", "--port", "0", "--store", str(store), "--self-check"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # "turnout offline marketplace on http://127.0.0.1:PORT/ (store: ...)"
        assert "offline marketplace on http://" in banner, banner + (proc.stdout.read() if proc.poll() is not None else "")
        other = make_client("local", endpoint_url=banner.split(" on ", 1)[1].split(" ", 1)[0], store=store, max_attempts=1)
        # Both on the wall clock: two processes must agree on time, or one settles the other's future.
        with ThreadedMarketplace(store, self_check=True) as here:
            mine = _client(here)
            hit = other.create_hit(**HIT, MaxAssignments=3)["HIT"]
            assert mine.get_hit(HITId=hit["HITId"])["HIT"]["Title"] == "t"
            worker = here.state.workers.register()
            done = here.state.workers.submit(here.state.workers.accept(worker.worker_id, hit["HITId"]).assignment_id)
            other.approve_assignment(AssignmentId=done.assignment_id)
            with pytest.raises(mine.exceptions.RequestError, match="status of: Submitted"):
                mine.approve_assignment(AssignmentId=done.assignment_id)
            assert mine.get_account_balance()["AvailableBalance"] == "9998.80"
            assert here.app.drift == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_shared_manual_clock_is_one_time_for_every_server_on_the_store(tmp_path: Path) -> None:
    from datetime import timedelta

    import requests

    from turnout.marketplace.local import SharedManualClock

    store = tmp_path / "clocked.db"
    clock_a, clock_b = SharedManualClock(store, start=START), SharedManualClock(store, start=START + timedelta(days=9))
    assert clock_b.now() == START  # the first start wins; later openers join it
    with ThreadedMarketplace(store, clock=clock_a, self_check=True) as a, ThreadedMarketplace(store, clock=clock_b, self_check=True) as b:
        hit = _client(a).create_hit(**HIT)["HIT"]
        moved = requests.post(b.control_url + "/clock/advance", json={"seconds": 3600}, timeout=10).json()
        assert moved["manual"] is True and moved["now"] == (START + timedelta(hours=1)).isoformat()
        assert _client(a).get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Reviewable"
    with pytest.raises(ValueError):
        clock_a.advance(-1)
