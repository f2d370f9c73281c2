"""Hostile bodies on the marketplace's JSON protocol (issue 6): signed Requester API calls
with random members and values per operation, and random control API writes. Whatever
arrives: never a 500, never a traceback in the log, and a refused request changes nothing
in the store. In-process (werkzeug's test client), bounded by example counts, a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from turnout.clock import ManualClock
from turnout.marketplace.local import create_app
from turnout.marketplace.local.control import ROUTES
from turnout.marketplace.local.operations import handler_for
from turnout.marketplace.local.testing import START, external_question, signed_headers
from turnout.marketplace.local.validation import service_model

pytestmark = pytest.mark.local_only
TARGET = "MTurkRequesterServiceV20170117."
URL = "http://localhost/"
OPERATIONS = sorted(op for op in service_model().operation_names if handler_for(op) is not None)


class Fuzzed:
    """One marketplace with a HIT, a worker, a submitted and an accepted assignment."""

    def __init__(self, store: Any) -> None:
        self.app = create_app(store, clock=ManualClock(START))
        self.client = Client(self.app)
        self.state = self.app.state
        side = self.state.workers
        self.worker = side.register().worker_id
        reply = self.call("CreateHIT", {
            "Title": "fuzz", "Description": "fuzz", "Reward": "1.00", "AssignmentDurationInSeconds": 600,
            "LifetimeInSeconds": 3600, "MaxAssignments": 3,
            "Question": external_question("https://example.org/fuzz")})
        assert reply.status_code == 200, reply.get_data(as_text=True)
        self.hit = _json(reply)["HIT"]["HITId"]
        submitted = side.accept(self.worker, self.hit)
        side.submit(submitted.assignment_id, {"a": "1"})
        self.submitted = submitted.assignment_id
        other = side.register().worker_id
        self.accepted = side.accept(other, self.hit).assignment_id
        self.ids = [self.hit, self.worker, self.submitted, self.accepted, other]

    def call(self, operation: str, body: Any, *, raw: bytes | None = None) -> Any:
        data = raw if raw is not None else json.dumps(body).encode()
        headers = signed_headers(URL, data, {"X-Amz-Target": TARGET + operation,
                                             "Content-Type": "application/x-amz-json-1.1"},
                                 self.state.credentials)
        return self.client.post("/", data=data, headers=headers)

    def control(self, method: str, path: str, body: Any) -> Any:
        data = json.dumps(body).encode()
        return self.client.open("/_control" + path, method=method, data=data,
                                headers={"Content-Type": "application/json"})

    def snapshot(self) -> str:
        """Every row of every table, hashed: what a refused request must leave alone."""
        digest = hashlib.sha256()
        with sqlite3.connect(self.state.path) as con:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            for table in tables:
                for row in con.execute(f"SELECT * FROM {table} ORDER BY rowid"):  # noqa: S608 - names from the schema
                    digest.update(repr(row).encode())
        return digest.hexdigest()


def _json(reply: Any) -> Any:
    try:
        return json.loads(reply.get_data())
    except ValueError:
        return None


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    target = Fuzzed(tmp_path_factory.mktemp("fuzz") / "mturk.db")
    yield target
    target.state.close()


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING, logger="turnout.marketplace")
    yield
    failures = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not failures, "\n".join(r.getMessage() for r in failures)


def _hostile(ids: list[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([0, -1, 2**31, 2**63, 10**30, 1e12, 1e308, -1e308, 0.5, 1e-9]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20), st.sampled_from(["", "\x00", "a\x00b", "NaN", "1e999", "9" * 400, "\ud800"]),
        st.sampled_from(ids), st.sampled_from(["Submitted", "Approved", "Reviewable", "US", "1.00", "0.01"]),
    )
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def _plausible(shape: Any, ids: list[str], name: str = "") -> st.SearchStrategy[Any]:
    """Values of the member's own type, near its edges, so calls get past the model check."""
    kind = shape.type_name
    for suffix, real in (("HITId", ids[0]), ("WorkerId", ids[1]), ("AssignmentId", ids[2])):
        if name.endswith(suffix):  # mostly the fixture's real IDs, to reach the operation itself
            return st.sampled_from([real, real, real, ids[3], "3NOSUCHTHING00000000000000000"])
    if kind == "string":
        enum = list(getattr(shape, "enum", None) or [])
        return st.sampled_from(["99999999999.99", "a\x00b", "1.00", "0.01", "US", "x", *ids, *enum])
    if kind in ("integer", "long"):
        return st.sampled_from([2**62, 2**31 - 1, -1, 0, 1, 30, 3600, 31536000])
    if kind == "timestamp":
        return st.sampled_from([1e12, -1e12, 4102444800, 0, 1767268800, 1767272400.5, -1])
    if kind == "boolean":
        return st.booleans()
    if kind == "list":
        return st.lists(_plausible(shape.member, ids), max_size=3)
    if kind == "structure":
        return st.fixed_dictionaries({key: _plausible(member, ids, key) for key, member in shape.members.items()
                                      if key in shape.required_members})
    return st.none()


@st.composite
def _request(draw: st.DrawFn, operation: str, ids: list[str]) -> dict[str, Any]:
    shape = service_model().operation_model(operation).input_shape
    members = dict(shape.members) if shape is not None else {}
    body: dict[str, Any] = {}
    for name, member in members.items():  # required members mostly present, optional ones sometimes
        if draw(st.integers(0, 9)) < (8 if shape and name in shape.required_members else 3):
            plausible = _plausible(member, ids, name)
            body[name] = draw(st.one_of(plausible, _hostile(ids)) if draw(st.booleans()) else plausible)
    if draw(st.integers(0, 9)) == 0:  # now and then a stranger (refused before the operation runs)
        body.setdefault(draw(st.text(max_size=6)), draw(_hostile(ids)))
    return body


FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.mark.parametrize("operation", OPERATIONS)
@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_requester_api_never_fails_on_hostile_members(fuzzed: Fuzzed, no_tracebacks: None, operation: str,
                                                      data: st.DataObject) -> None:
    body = data.draw(_request(operation, fuzzed.ids))
    before = fuzzed.snapshot()
    reply = fuzzed.call(operation, body)
    answer = _json(reply)
    assert reply.status_code < 500, (operation, body, answer)
    if reply.status_code >= 400:
        assert answer and answer.get("__type") and answer.get("Message"), answer
        assert fuzzed.snapshot() == before, (operation, body, answer)


# Every write but reset, whose success would wipe the fixture (test_security covers its refusals).
CONTROL_WRITES = [path for method, path, _, _ in ROUTES if method == "POST" and path != "/reset"]


@FUZZ
@given(data=st.data())
def test_control_api_never_fails_on_hostile_bodies(fuzzed: Fuzzed, no_tracebacks: None, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(CONTROL_WRITES))
    path = path.replace("<worker_id>", data.draw(st.sampled_from(fuzzed.ids + ["ANOBODY"])))
    path = path.replace("<assignment_id>", data.draw(st.sampled_from(fuzzed.ids)))
    keys = ["balance", "seconds", "count", "percent_approved", "number_approved", "country", "subdivision",
            "masters", "adult", "workers", "worker_id", "hit_id", "answers", "operation", "kind"]
    body = data.draw(st.dictionaries(st.sampled_from(keys), _hostile(fuzzed.ids), max_size=4))
    before = fuzzed.snapshot()
    reply = fuzzed.control("POST", path, body)
    answer = reply.get_json(silent=True)
    assert reply.status_code < 500, (path, body, answer)
    if reply.status_code >= 400:
        assert answer and answer["error"]["code"] and answer["error"]["message"], answer
        assert fuzzed.snapshot() == before, (path, body, answer)
