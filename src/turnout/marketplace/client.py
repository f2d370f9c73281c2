"""The one way turnout talks to a marketplace: an unmodified boto3 ``mturk`` client.

The mode is an explicit argument, never a global (psiTurk kept it in a process-global
that each request overwrote, so an action could run in the wrong marketplace). The client
returned is plain boto3: production code cannot tell the offline marketplace from MTurk,
which is the point of rehearsing against it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from turnout.config import MODES

if TYPE_CHECKING:
    from mypy_boto3_mturk import MTurkClient  # optional stubs; not a dependency
else:
    MTurkClient = Any

__all__ = ["ENDPOINTS", "ENDPOINT_ENV", "MODES", "describe_client_error", "local_credentials", "make_client"]

# The sandbox is its own endpoint: use region us-east-1 with the sandbox
# URL as endpoint_url (botocore's region_name="sandbox" signs with a scope AWS may refuse).
ENDPOINTS = {
    "live": "https://mturk-requester.us-east-1.amazonaws.com",
    "sandbox": "https://mturk-requester-sandbox.us-east-1.amazonaws.com",
}
# Where a researcher's own script (and make_client, when given no endpoint) finds the offline
# marketplace; `turnout marketplace env` prints it beside the project's key pair.
ENDPOINT_ENV = "TURNOUT_MTURK_ENDPOINT"
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60


def make_client(
    mode: str,
    *,
    endpoint_url: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    region: str = "us-east-1",
    max_attempts: int = 5,
    store: str | os.PathLike[str] | None = None,
) -> MTurkClient:
    """A boto3 MTurk client for ``mode`` (``live``, ``sandbox`` or ``local``).

    Retries use botocore's *standard* mode (ServiceFault on 500 and ThrottlingException are
    retried with backoff; botocore's default would try a 500 only 3 times); ``max_attempts`` counts the first try.
    ``local`` needs the offline marketplace's ``endpoint_url`` (e.g.
    ``http://127.0.0.1:22362/_mturk/``; default ``$TURNOUT_MTURK_ENDPOINT``). It signs with
    the key pair of the marketplace store ``store`` (the project's ``[Marketplace]
    local_store``) unless given keys; with neither, boto3's usual chain (e.g. the
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` that `turnout marketplace env` exports).
    The offline marketplace refuses unsigned or wrongly signed calls.
    For ``live``/``sandbox`` an explicit ``endpoint_url`` overrides the default (proxies,
    recorded-traffic tests); credentials left as None come from boto3's usual chain.
    """
    if mode not in MODES:
        raise ValueError(f"unknown marketplace mode {mode!r}; valid modes: {', '.join(MODES)}")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1 (it counts the first attempt)")
    if mode == "local":
        endpoint_url = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
        if not endpoint_url:
            raise ValueError("mode 'local' needs endpoint_url, the offline marketplace's address, e.g. "
                             f"http://127.0.0.1:22362/_mturk/ (or set {ENDPOINT_ENV})")
        if aws_access_key_id is None and aws_secret_access_key is None and store is not None:
            aws_access_key_id, aws_secret_access_key = local_credentials(store)
    else:
        endpoint_url = endpoint_url or ENDPOINTS[mode]
    config = Config(
        # total_max_attempts counts the first try; botocore's "max_attempts" key would
        # count retries only (5 would mean 6 requests).
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    return boto3.session.Session().client(
        "mturk",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        config=config,
    )


def local_credentials(store: str | os.PathLike[str]) -> tuple[str, str]:
    """The offline marketplace store's key pair (made when the store was created).

    Raises ``turnout.marketplace.local.StoreUnusable`` when ``store`` cannot be opened.
    """
    # Imported here, not at the top: live and sandbox clients need not load the offline
    # marketplace. (The offline marketplace never imports this module: no cycle.)
    from turnout.marketplace.local.state import MarketplaceState

    state = MarketplaceState(store)
    try:
        return state.credentials
    finally:
        state.close()


def describe_client_error(exc: BaseException) -> str:
    """One line for logs and flash messages that names the operation and MTurk's answer.

    e.g. ``MTurk ApproveAssignment failed: RequestError: This operation can be called with
    a status of: Submitted (1764065...) [AWS.MechanicalTurk.InvalidAssignmentState]``.
    MTurk's own message is kept verbatim: client code matches on its text.
    """
    if isinstance(exc, ClientError):
        operation = getattr(exc, "operation_name", None) or "call"
        error = exc.response.get("Error", {})
        code = error.get("Code") or "Error"
        message = error.get("Message") or exc.response.get("Message") or str(exc)
        turk = exc.response.get("TurkErrorCode")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        line = f"MTurk {operation} failed: {code}: {message}"
        if turk:
            line += f" [{turk}]"
        elif status and status >= 500:
            line += f" [HTTP {status}]"
        return line
    if isinstance(exc, NoCredentialsError):
        return ("MTurk call not sent: no AWS credentials found. Set aws_access_key_id/aws_secret_access_key "
                "in turnout's settings or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.")
    if isinstance(exc, EndpointConnectionError):
        return f"MTurk call failed: could not connect to {exc.kwargs.get('endpoint_url', 'the endpoint')} (is the marketplace running?)"
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return f"MTurk call failed: timed out talking to {exc.kwargs.get('endpoint_url', 'the endpoint')}"
    if isinstance(exc, ParamValidationError):
        return "MTurk call not sent: invalid parameters: " + " ".join(str(exc.kwargs.get("report", exc)).split())
    if isinstance(exc, BotoCoreError):
        return f"MTurk call failed: {type(exc).__name__}: {exc}"
    return f"MTurk call failed: {type(exc).__name__}: {exc}"
