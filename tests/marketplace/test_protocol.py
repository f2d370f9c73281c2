"""The JSON 1.1 wire protocol itself, spoken over raw HTTP (what boto3 would never send)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from turnout.marketplace import make_client
from turnout.marketplace.local import ThreadedMarketplace, create_app, operations
from turnout.marketplace.local.testing import START, signed_headers

pytestmark = pytest.mark.local_only
TARGET = "MTurkRequesterServiceV20170117."


def call(market: ThreadedMarketplace, operation: str | None, body: Any = None, *, raw: bytes | None = None,
         url: str | None = None) -> requests.Response:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if operation is not None:
        headers["X-Amz-Target"] = TARGET + operation
    data = raw if raw is not None else json.dumps({} if body is None else body).encode()
    url = url or market.endpoint_url
    return requests.post(url, data=data, headers=signed_headers(url, data, headers, market.credentials), timeout=10)


def test_success_is_amz_json_with_a_fresh_request_id(market: ThreadedMarketplace) -> None:
    first, second = call(market, "GetAccountBalance"), call(market, "GetAccountBalance")
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert first.json() == {"AvailableBalance": "10000.00", "OnHoldBalance": "0.00"}
    assert re.fullmatch(r"[0-9a-f-]{36}", first.headers["x-amzn-RequestId"])
    assert first.headers["x-amzn-RequestId"] != second.headers["x-amzn-RequestId"]


def test_unimplemented_operation_fails_loudly(market: ThreadedMarketplace) -> None:
    response = call(market, "GetFileUploadURL", {"AssignmentId": "3AAA", "QuestionIdentifier": "q"})
    assert response.status_code == 400
    body = response.json()
    assert body["__type"] == "RequestError"
    assert body["Message"].startswith("operation GetFileUploadURL is not implemented by turnout's offline marketplace")
    assert body["Message"].endswith(f"({int(START.timestamp() * 1000)})")


@pytest.mark.parametrize("target", [None, "NotMTurk.ListHITs", TARGET + "LaunchRockets"])
def test_bad_or_foreign_targets_are_request_errors(market: ThreadedMarketplace, target: str | None) -> None:
    headers = {"X-Amz-Target": target} if target else {}
    headers = signed_headers(market.endpoint_url, b"{}", headers, market.credentials)
    response = requests.post(market.endpoint_url, data=b"{}", headers=headers, timeout=10)
    assert response.status_code == 400 and response.json()["__type"] == "RequestError"


def test_body_that_is_not_json_is_a_serialization_exception(market: ThreadedMarketplace) -> None:
    response = call(market, "ListHITs", raw=b"{not json")
    assert response.status_code == 400 and response.json()["__type"] == "SerializationException"


def test_unknown_and_mistyped_members_are_refused_by_name(market: ThreadedMarketplace) -> None:
    unknown = call(market, "ListHITs", {"MaxResult": 10}).json()
    assert unknown["__type"] == "SerializationException" and "'MaxResult'" in unknown["Message"]
    mistyped = call(market, "ListHITs", {"MaxResults": "10"}).json()
    assert mistyped["__type"] == "SerializationException" and "maxResults" in mistyped["Message"]


def test_missing_members_get_coral_wording_without_a_stamp(market: ThreadedMarketplace) -> None:
    one = call(market, "GetHIT", {}).json()
    assert one == {"__type": "ValidationException",
                   "Message": "1 validation error detected: Value null at 'hITId' failed to satisfy constraint: Member must not be null"}
    two = call(market, "RejectAssignment", {}).json()
    assert two["Message"].startswith("2 validation errors detected: ")
    assert "'requesterFeedback'" in two["Message"]  # boto/boto3#1222 saw exactly this one


def test_lower_bounds_boto3_would_catch_are_checked_server_side_too(market: ThreadedMarketplace) -> None:
    body = call(market, "ListHITs", {"MaxResults": 0}).json()
    assert "Member must have value greater than or equal to 1" in body["Message"]


def test_get_on_the_endpoint_explains_itself_and_other_paths_404(market: ThreadedMarketplace) -> None:
    about = requests.get(market.endpoint_url, timeout=10)
    assert about.status_code == 200 and "boto3.client('mturk'" in about.text
    assert requests.post(market.base_url + "/elsewhere", data=b"{}", timeout=10).status_code == 404


@pytest.fixture
def mounted(tmp_path: Any) -> Iterator[str]:
    """The marketplace mounted under /_mturk inside another WSGI app, as turnout mounts it."""
    def outer(environ: Any, start_response: Any) -> Any:
        return Response("outer app", status=404)(environ, start_response)

    app = DispatcherMiddleware(outer, {"/_mturk": create_app(tmp_path / "mounted.db", self_check=True)})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.mark.parametrize("suffix", ["/_mturk", "/_mturk/"])
def test_boto3_works_with_the_marketplace_mounted_under_a_path(mounted: str, suffix: str, tmp_path: Any) -> None:
    client = make_client("local", endpoint_url=mounted + suffix, store=tmp_path / "mounted.db", max_attempts=1)
    assert client.get_account_balance()["AvailableBalance"] == "10000.00"
    control = requests.get(mounted + "/_mturk/_control/state", timeout=10)
    assert control.status_code == 200 and control.json()["balance"] == "10000.00"


def test_self_check_turns_a_drifting_response_into_a_loud_fault(market: ThreadedMarketplace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "get_account_balance", lambda state, p, ctx: {"AvailableBalance": 5})
    response = call(market, "GetAccountBalance")
    assert response.status_code == 500
    assert response.json()["__type"] == "ServiceFault"
    assert market.app.drift and "AvailableBalance" in market.app.drift[0]
    market.app.drift.clear()  # expected drift: keep the fixture's teardown check green
