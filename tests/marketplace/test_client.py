"""make_client and describe_client_error. Error paths use botocore's Stubber (no network);
nothing here patches the client used elsewhere."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
)
from botocore.stub import Stubber

from turnout.marketplace import ENDPOINTS, describe_client_error, local_credentials, make_client


def test_each_mode_points_at_its_endpoint() -> None:
    assert make_client("live", aws_access_key_id="a", aws_secret_access_key="b").meta.endpoint_url == \
        "https://mturk-requester.us-east-1.amazonaws.com"
    assert make_client("sandbox", aws_access_key_id="a", aws_secret_access_key="b").meta.endpoint_url == \
        "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
    local = make_client("local", endpoint_url="http://127.0.0.1:22362/_mturk/")
    assert local.meta.endpoint_url == "http://127.0.0.1:22362/_mturk/"
    assert local.meta.region_name == "us-east-1"
    assert set(ENDPOINTS) == {"live", "sandbox"}


def test_unknown_mode_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="local, sandbox, live"):
        make_client("production")


def test_local_mode_needs_an_endpoint_and_signs_with_the_store_key_pair(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Any) -> None:
    monkeypatch.delenv("TURNOUT_MTURK_ENDPOINT", raising=False)
    with pytest.raises(ValueError, match="endpoint_url"):
        make_client("local")
    store = tmp_path / "mturk.db"
    credentials = make_client("local", endpoint_url="http://127.0.0.1:1/", store=store)._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == local_credentials(store)
    key_id, secret = local_credentials(store)
    assert len(key_id) == 20 and key_id.startswith("AKLOCAL") and len(secret) == 40
    assert local_credentials(tmp_path / "other.db") != (key_id, secret)  # one key pair per store


def test_local_mode_honours_the_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_MTURK_ENDPOINT", "http://127.0.0.1:4242/_mturk/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKLOCALXXXXXXXXXXXXX")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
    client = make_client("local")
    assert client.meta.endpoint_url == "http://127.0.0.1:4242/_mturk/"
    assert client._request_signer._credentials.access_key == "AKLOCALXXXXXXXXXXXXX"


def test_retries_are_standard_mode_counting_the_first_attempt() -> None:
    config = make_client("local", endpoint_url="http://127.0.0.1:1/", max_attempts=4).meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert config.connect_timeout and config.read_timeout
    with pytest.raises(ValueError):
        make_client("local", endpoint_url="http://127.0.0.1:1/", max_attempts=0)


def _stubbed() -> tuple[Any, Stubber]:
    client = make_client("sandbox", aws_access_key_id="a", aws_secret_access_key="b")
    return client, Stubber(client)


def test_describe_request_error_names_operation_code_message_and_turk_code() -> None:
    client, stub = _stubbed()
    stub.add_client_error("approve_assignment", service_error_code="RequestError", http_status_code=400,
                          service_message="This operation can be called with a status of: Submitted (1764065000000)",
                          modeled_fields={"Message": "This operation can be called with a status of: Submitted (1764065000000)",
                                          "TurkErrorCode": "AWS.MechanicalTurk.InvalidAssignmentState"})
    with stub, pytest.raises(ClientError) as excinfo:
        client.approve_assignment(AssignmentId="3ABC")
    assert describe_client_error(excinfo.value) == (
        "MTurk ApproveAssignment failed: RequestError: This operation can be called with a status of: "
        "Submitted (1764065000000) [AWS.MechanicalTurk.InvalidAssignmentState]")


def test_describe_service_fault_mentions_the_http_status() -> None:
    client, stub = _stubbed()
    stub.add_client_error("send_bonus", service_error_code="ServiceFault", http_status_code=500, service_message="oops")
    with stub, pytest.raises(ClientError) as excinfo:
        client.send_bonus(WorkerId="A1", AssignmentId="3A", BonusAmount="1.00", Reason="r")
    assert describe_client_error(excinfo.value) == "MTurk SendBonus failed: ServiceFault: oops [HTTP 500]"


def test_describe_connection_failure_names_the_endpoint() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client("local", endpoint_url=f"http://127.0.0.1:{port}/", aws_access_key_id="a",
                         aws_secret_access_key="b", max_attempts=1)
    with pytest.raises(EndpointConnectionError) as excinfo:
        client.get_account_balance()
    line = describe_client_error(excinfo.value)
    assert line.startswith("MTurk call failed: could not connect to") and str(port) in line


def test_describe_missing_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe the network for credentials
    client = make_client("sandbox")
    with pytest.raises(NoCredentialsError) as excinfo:
        client.get_account_balance()
    assert "no AWS credentials found" in describe_client_error(excinfo.value)


def test_describe_parameter_validation() -> None:
    client = make_client("local", endpoint_url="http://127.0.0.1:1/")
    with pytest.raises(ParamValidationError) as excinfo:
        client.get_hit()
    assert describe_client_error(excinfo.value).startswith("MTurk call not sent: invalid parameters:")
