"""Issue 6, items 2 and 5: who may use the offline marketplace, and inputs that used to 500.

The Requester API wants a SigV4 signature by the store's key pair; the control API wants
loopback (by address and Host) or the control secret, and JSON same-origin writes;
externalSubmit wants the proof cookie handed to the browser that accepted the assignment.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from werkzeug.test import Client

from turnout.clock import ManualClock
from turnout.marketplace import make_client
from turnout.marketplace.local import (
    MarketplaceState,
    StoreUnusable,
    ThreadedMarketplace,
    create_app,
)
from turnout.marketplace.local.testing import START, signed_headers

pytestmark = pytest.mark.local_only
TARGET = "MTurkRequesterServiceV20170117."


def raw_call(market: ThreadedMarketplace, operation: str, body: Any, *, credentials: tuple[str, str] | None = None,
             sign: bool = True, **sign_options: Any) -> requests.Response:
    data = json.dumps(body).encode()
    headers = {"X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.1"}
    if sign:
        headers = signed_headers(market.endpoint_url, data, headers, credentials or market.credentials, **sign_options)
    return requests.post(market.endpoint_url, data=data, headers=headers, timeout=10)


# --------------------------------------------------------------------------- signatures


def test_unsigned_calls_move_no_money(market: ThreadedMarketplace, submitted: Any, worker: Any) -> None:
    """The issue's case: anonymous ApproveAssignment and SendBonus moved the balance."""
    assignment = submitted()
    before = market.state.balance()
    approve = raw_call(market, "ApproveAssignment", {"AssignmentId": assignment.assignment_id}, sign=False)
    bonus = raw_call(market, "SendBonus", {"WorkerId": worker.worker_id, "AssignmentId": assignment.assignment_id,
                                           "BonusAmount": "5.00", "Reason": "x"}, sign=False)
    for reply in (approve, bonus):
        assert reply.status_code == 403
        assert reply.json() == {"__type": "MissingAuthenticationTokenException", "Message": "Missing Authentication Token"}
    assert market.state.balance() == before
    assert market.state.workers.assignment(assignment.assignment_id).status == "Submitted"


def test_a_signature_by_another_key_pair_is_refused(market: ThreadedMarketplace) -> None:
    key_id, secret = market.credentials
    wrong_id = raw_call(market, "GetAccountBalance", {}, credentials=("AKLOCALNOTTHEKEY0000", secret))
    assert wrong_id.status_code == 403 and wrong_id.json()["__type"] == "UnrecognizedClientException"
    wrong_secret = raw_call(market, "GetAccountBalance", {}, credentials=(key_id, secret + "x"))
    assert wrong_secret.status_code == 403 and wrong_secret.json()["__type"] == "InvalidSignatureException"
    assert raw_call(market, "GetAccountBalance", {}).status_code == 200


def test_a_body_changed_after_signing_is_refused(market: ThreadedMarketplace, make_hit: Any) -> None:
    data = json.dumps({"MaxResults": 1}).encode()
    headers = signed_headers(market.endpoint_url, data, {"X-Amz-Target": TARGET + "ListHITs"}, market.credentials)
    tampered = requests.post(market.endpoint_url, data=json.dumps({"MaxResults": 2}).encode(), headers=headers, timeout=10)
    assert tampered.status_code == 403 and tampered.json()["__type"] == "InvalidSignatureException"
    other_target = dict(headers, **{"X-Amz-Target": TARGET + "DeleteHIT"})
    assert requests.post(market.endpoint_url, data=data, headers=other_target, timeout=10).status_code == 403


def test_boto3_with_the_wrong_secret_gets_an_aws_shaped_error(market: ThreadedMarketplace) -> None:
    key_id, _ = market.credentials
    client = make_client("local", endpoint_url=market.endpoint_url, aws_access_key_id=key_id,
                         aws_secret_access_key="not-the-secret", max_attempts=1)
    with pytest.raises(ClientError) as excinfo:
        client.create_hit(Title="t", Description="d", Reward="1.00", AssignmentDurationInSeconds=60,
                          LifetimeInSeconds=60, Question="<x/>")
    assert excinfo.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert market.state.list_hits().items == []


def test_malformed_authorization_headers_are_400s(market: ThreadedMarketplace) -> None:
    for value in ("AWS4-HMAC-SHA256 Credential=x", "Basic Zm9vOmJhcg==", "AWS4-HMAC-SHA256 " + "A" * 5000):
        reply = requests.post(market.endpoint_url, data=b"{}", timeout=10,
                              headers={"Authorization": value, "X-Amz-Target": TARGET + "GetAccountBalance"})
        assert reply.status_code == 400 and reply.json()["__type"] == "IncompleteSignatureException"


@pytest.fixture
def at_noon(tmp_path: Any) -> tuple[Client, MarketplaceState]:
    """A marketplace whose signature clock stands at START, driven in-process."""
    app = create_app(tmp_path / "skew.db", clock=ManualClock(START), signature_clock=ManualClock(START))
    return Client(app), app.state


@pytest.mark.parametrize(("minutes", "status"), [(-6, 400), (-4, 200), (4, 200), (6, 400)])
def test_clock_skew_up_to_five_minutes_is_tolerated(at_noon: tuple[Client, MarketplaceState], minutes: int,
                                                    status: int) -> None:
    client, state = at_noon
    headers = signed_headers("http://localhost/", b"{}", {"X-Amz-Target": TARGET + "GetAccountBalance"},
                             state.credentials, at=START + timedelta(minutes=minutes))
    reply = client.post("/", data=b"{}", headers=headers)
    assert reply.status_code == status
    if status == 400:
        body = json.loads(reply.get_data())
        assert body["__type"] == "InvalidSignatureException" and "5 min." in body["Message"]


def test_the_key_pair_belongs_to_the_store_and_survives_reset(tmp_path: Any) -> None:
    first = MarketplaceState(tmp_path / "a.db")
    again = MarketplaceState(tmp_path / "a.db")
    other = MarketplaceState(tmp_path / "b.db")
    assert first.credentials == again.credentials != other.credentials
    first.reset()
    assert MarketplaceState(tmp_path / "a.db").credentials == again.credentials
    assert (tmp_path / "a.db").stat().st_mode & 0o077 == 0  # owner-only: it holds the secret


# --------------------------------------------------------------------------- control API


def test_cross_origin_text_plain_writes_are_refused(market: ThreadedMarketplace, make_hit: Any) -> None:
    make_hit()
    url = market.control_url + "/reset"
    plain = requests.post(url, data='{"balance": "1.00"}', headers={"Content-Type": "text/plain"}, timeout=10)
    assert plain.status_code == 415 and plain.json()["error"]["code"] == "UnsupportedMediaType"
    form = requests.post(url, data={"balance": "1.00"}, timeout=10)
    assert form.status_code == 415
    origin = requests.post(url, json={}, headers={"Origin": "http://evil.example"}, timeout=10)
    assert origin.status_code == 403 and origin.json()["error"]["code"] == "CrossOrigin"
    site = requests.post(url, json={}, headers={"Sec-Fetch-Site": "cross-site"}, timeout=10)
    assert site.status_code == 403
    assert market.state.summary()["hits"] == 1 and market.state.balance() == 10000
    same = requests.post(url, json={}, headers={"Origin": market.base_url, "Sec-Fetch-Site": "same-origin"}, timeout=10)
    assert same.status_code == 200


def test_a_rebinding_host_name_is_refused(market: ThreadedMarketplace) -> None:
    for method in ("GET", "POST"):
        reply = requests.request(method, market.control_url + "/workers", json={}, timeout=10,
                                 headers={"Host": f"attacker.example:{market.port}"})
        assert reply.status_code == 403 and reply.json()["error"]["code"] == "HostNotLoopback"
    assert requests.get(market.control_url + "/state", headers={"Host": f"localhost:{market.port}"},
                        timeout=10).status_code == 200
    assert market.state.workers.all() == []


@pytest.mark.parametrize("forwarded", [
    {"X-Forwarded-For": "198.51.100.4"},
    {"X-Forwarded-Host": "study.example.org"},
    {"Forwarded": "for=198.51.100.4;host=study.example.org"},
    {"X-Real-IP": "198.51.100.4"},
], ids=["x-forwarded-for", "x-forwarded-host", "forwarded", "x-real-ip"])
def test_a_request_forwarded_by_a_reverse_proxy_is_not_a_loopback_client(
        tmp_path: Any, forwarded: dict[str, str]) -> None:
    # Apache's ProxyPass (ProxyPreserveHost Off) and a bare nginx proxy_pass send the
    # upstream's own Host (127.0.0.1:port) from REMOTE_ADDR 127.0.0.1: only the forwarding
    # headers tell that the client is somewhere on the internet.
    app = create_app(tmp_path / "proxied.db", clock=ManualClock(START))
    client = Client(app)
    local = {"REMOTE_ADDR": "127.0.0.1"}
    for method in ("GET", "POST"):
        reply = client.open("/_control/workers", method=method, json={}, environ_base=local,
                            headers={"Host": "127.0.0.1:22362", **forwarded})
        assert reply.status_code == 403 and reply.get_json()["error"]["code"] == "Proxied"
    assert app.state.workers.all() == []
    allowed = client.post("/_control/workers", json={}, environ_base=local,
                          headers={"Host": "127.0.0.1:22362", "X-Turnout-Control-Secret": app.state.control_secret,
                                   **forwarded})
    assert allowed.status_code == 200 and len(app.state.workers.all()) == 1
    assert client.get("/_control/state", environ_base=local, headers={"Host": "127.0.0.1:22362"}).status_code == 200


def test_other_machines_need_the_control_secret(tmp_path: Any) -> None:
    app = create_app(tmp_path / "remote.db", clock=ManualClock(START))
    remote = Client(app)
    environ = {"REMOTE_ADDR": "192.0.2.7"}
    refused = remote.post("/_control/workers", json={}, environ_base=environ)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "NotLoopback"
    wrong = remote.post("/_control/workers", json={}, environ_base=environ,
                        headers={"X-Turnout-Control-Secret": "guess", "Host": "lab.example"})
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "BadControlSecret"
    assert app.state.workers.all() == []
    allowed = remote.post("/_control/workers", json={}, environ_base=environ,
                          headers={"X-Turnout-Control-Secret": app.state.control_secret, "Host": "lab.example"})
    assert allowed.status_code == 200 and len(app.state.workers.all()) == 1


# --------------------------------------------------------------------------- externalSubmit


def test_external_submit_needs_the_accepting_browsers_proof(market: ThreadedMarketplace, make_hit: Any,
                                                            worker: Any) -> None:
    hit = make_hit()
    assignment = market.state.workers.accept(worker.worker_id, hit["HITId"])
    url = market.base_url + "/mturk/externalSubmit"
    form = {"assignmentId": assignment.assignment_id, "hitId": hit["HITId"]}
    anonymous = requests.post(url, data=form, timeout=10)
    forged = requests.post(url, data=form, timeout=10,
                           cookies={f"turnout_submit_{assignment.assignment_id}": "0" * 40})
    other = market.state.workers.accept(market.state.workers.register().worker_id, hit["HITId"]) \
        if hit["MaxAssignments"] > 1 else None
    assert anonymous.status_code == 403 and forged.status_code == 403 and other is None
    assert market.state.workers.assignment(assignment.assignment_id).status == "Accepted"
    proof = {f"turnout_submit_{assignment.assignment_id}": market.state.submit_key(assignment.assignment_id)}
    assert requests.post(url, data=form, cookies=proof, timeout=10).status_code == 200
    assert market.state.workers.assignment(assignment.assignment_id).status == "Submitted"


def test_one_assignments_proof_does_not_submit_another(market: ThreadedMarketplace, make_hit: Any) -> None:
    hit = make_hit(MaxAssignments=2)
    side = market.state.workers
    mine = side.accept(side.register().worker_id, hit["HITId"])
    theirs = side.accept(side.register().worker_id, hit["HITId"])
    reply = requests.post(market.base_url + "/mturk/externalSubmit", data={"assignmentId": theirs.assignment_id},
                          cookies={f"turnout_submit_{theirs.assignment_id}": market.state.submit_key(mine.assignment_id)},
                          timeout=10)
    assert reply.status_code == 403 and side.assignment(theirs.assignment_id).status == "Accepted"


# --------------------------------------------------------------------------- 500s that must be 400s


def control(market: ThreadedMarketplace, path: str, body: Any = None, *, raw: bytes | None = None) -> requests.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(market.control_url + path, data=data, headers={"Content-Type": "application/json"}, timeout=10)


@pytest.mark.parametrize("depth", [100, 995, 5000])
def test_deep_nesting_is_a_400_on_both_apis(market: ThreadedMarketplace, depth: int) -> None:
    nested = ("[" * depth + "]" * depth).encode()
    body = b'{"a": ' + nested + b"}"
    reply = control(market, "/workers", raw=body)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "InvalidJSON"
    headers = signed_headers(market.endpoint_url, body, {"X-Amz-Target": TARGET + "ListHITs"}, market.credentials)
    api = requests.post(market.endpoint_url, data=body, headers=headers, timeout=10)
    assert api.status_code == 400 and api.json()["__type"] == "SerializationException"


@pytest.mark.parametrize("balance", ["NaN", "Infinity", "-Infinity", "1e30", "-1.00", "1.001", "", "12,00", True,
                                     1.5, None, {"a": 1}])
def test_reset_refuses_balances_that_are_not_plain_amounts(market: ThreadedMarketplace, make_hit: Any,
                                                           balance: Any) -> None:
    make_hit()
    reply = control(market, "/reset", {"balance": balance})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "InvalidInput" and "balance" in reply.json()["error"]["message"]
    assert market.state.summary()["hits"] == 1  # nothing was reset


def test_reset_refuses_json_nan_constants(market: ThreadedMarketplace) -> None:
    reply = control(market, "/reset", raw=b'{"balance": NaN}')
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "InvalidJSON"


@pytest.mark.parametrize("attrs", [{"country": {"a": 1}}, {"country": 7}, {"percent_approved": "x"},
                                   {"percent_approved": 1e308}, {"masters": "yes"}, {"subdivision": ["CA"]},
                                   {"count": "3"}, {"count": 10**30}, {"nickname": "x"}, {"country": "U\x00"}])
def test_worker_attributes_of_the_wrong_type_are_400s(market: ThreadedMarketplace, attrs: dict[str, Any]) -> None:
    reply = control(market, "/workers", attrs)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "InvalidInput"
    listed = control(market, "/workers", {"workers": [attrs]})
    assert listed.status_code == 400
    assert market.state.workers.all() == []


@pytest.mark.parametrize("after", ["9" * 400, "²", "-1", "1.5", str(2**63)])
def test_events_after_must_be_a_bindable_whole_number(market: ThreadedMarketplace, after: str) -> None:
    reply = requests.get(market.control_url + "/events", params={"after": after}, timeout=10)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "InvalidInput"


@pytest.mark.parametrize("body", [{"seconds": 1e308}, {"seconds": 10**30}, {"seconds": "1"}])
def test_clock_advance_refuses_absurd_amounts(market: ThreadedMarketplace, body: dict[str, Any]) -> None:
    reply = control(market, "/clock/advance", body)
    assert reply.status_code == 400 and market.state.clock.now() == START


@pytest.mark.parametrize("body", [{"operation": "ListHITs", "kind": "throttle", "count": 10**30},
                                  {"operation": {"a": 1}, "kind": "throttle"}, {"operation": "ListHITs", "kind": 5},
                                  {"operation": "ListHITs", "kind": "throttle", "count": "2"}])
def test_faults_refuse_wrong_types(market: ThreadedMarketplace, body: dict[str, Any]) -> None:
    reply = control(market, "/faults", body)
    assert reply.status_code == 400 and market.state.pending_faults() == []


@pytest.mark.parametrize("expire_at", [1e12, -1e12, 1e308, 2**70])
def test_update_expiration_far_outside_time_is_a_validation_error(market: ThreadedMarketplace, make_hit: Any,
                                                                   expire_at: float) -> None:
    hit = make_hit()
    reply = raw_call(market, "UpdateExpirationForHIT", {"HITId": hit["HITId"], "ExpireAt": expire_at})
    assert reply.status_code == 400
    assert reply.json()["__type"] in ("ValidationException", "ParameterValidationError")
    assert market.state.get_hit(hit["HITId"]).expiration == START + timedelta(seconds=3600)


@pytest.mark.parametrize(("member", "value"), [("LifetimeInSeconds", 2**63), ("AssignmentDurationInSeconds", 10**20),
                                               ("MaxAssignments", 2**64), ("AutoApprovalDelayInSeconds", 10**19),
                                               ("Title", "a\x00b"), ("Reward", "1" * 400)])
def test_create_hit_huge_numbers_and_nuls_are_400s(market: ThreadedMarketplace, member: str, value: Any) -> None:
    from turnout.marketplace.local.testing import external_question

    body = {"Title": "t", "Description": "d", "Reward": "1.00", "AssignmentDurationInSeconds": 600,
            "LifetimeInSeconds": 3600, "Question": external_question("https://example.org/x"), member: value}
    reply = raw_call(market, "CreateHIT", body)
    assert reply.status_code == 400, reply.text
    assert market.state.list_hits().items == []


def test_a_lone_surrogate_is_refused_not_stored(market: ThreadedMarketplace) -> None:
    raw = b'{"Name": "q\\ud800", "Description": "d", "QualificationTypeStatus": "Active"}'
    headers = signed_headers(market.endpoint_url, raw, {"X-Amz-Target": TARGET + "CreateQualificationType"},
                             market.credentials)
    reply = requests.post(market.endpoint_url, data=raw, headers=headers, timeout=10)
    assert reply.status_code == 400


# --------------------------------------------------------------------------- the store


def test_an_unusable_store_is_one_clear_error(tmp_path: Any) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnusable, match="is a directory"):
        MarketplaceState(tmp_path)
    with pytest.raises(StoreUnusable, match="not an SQLite database"):
        MarketplaceState(garbage)
    with pytest.raises(StoreUnusable, match="does not exist"):
        MarketplaceState(tmp_path / "missing" / "deeper" / "m.db")
    assert garbage.read_bytes() == b"this is not sqlite" * 100  # left as it was
