"""Helpers for tests that talk to a marketplace (offline or the real sandbox), kept in the
package like ``flask.testing`` so every test suite in turnout can share them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from unittest import mock
from xml.sax.saxutils import escape

__all__ = ["EXTERNAL_QUESTION_NS", "START", "external_question", "sandbox_contract_requested", "signed_headers"]

EXTERNAL_QUESTION_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
# A fixed instant tests start ManualClocks at, so expected timestamps are literals.
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def external_question(url: str, frame_height: int = 600) -> str:
    """An ExternalQuestion document pointing at ``url`` (XML-escaped)."""
    return (f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_NS}"><ExternalURL>{escape(url)}</ExternalURL>'
            f"<FrameHeight>{frame_height}</FrameHeight></ExternalQuestion>")


def sandbox_contract_requested() -> bool:
    """True when ``TURNOUT_MTURK_SANDBOX_CONTRACT=1``: run contract tests against the sandbox."""
    return os.environ.get("TURNOUT_MTURK_SANDBOX_CONTRACT") == "1"


def signed_headers(url: str, body: bytes, headers: Mapping[str, str], credentials: tuple[str, str], *,
                   at: datetime | None = None, region: str = "us-east-1",
                   service: str = "mturk-requester") -> dict[str, str]:
    """``headers`` plus SigV4 ``Authorization``/``X-Amz-Date``, as boto3 would sign a POST
    of ``body`` to ``url`` (botocore's own signer); ``at`` signs at another instant."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    auth = SigV4Auth(Credentials(*credentials), service, region)
    if at is None:
        auth.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=at.astimezone(UTC).replace(tzinfo=None)):
            auth.add_auth(request)
    return dict(request.headers.items())
