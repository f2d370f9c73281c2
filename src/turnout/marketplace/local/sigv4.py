"""Check AWS Signature Version 4 on Requester API calls, with botocore's own signer.

Local mode rehearses real money, so the offline marketplace takes MTurk calls only from
someone holding the project's local key pair (``MarketplaceState.credentials``), as MTurk
takes them only from the requester's AWS keys. The check recomputes the signature the way
the client made it: the same canonical request, string to sign and HMAC chain, computed
by ``botocore.auth.SigV4Auth`` over the headers the client says it signed. Nothing here
re-implements SigV4, so it cannot drift from what boto3 sends.

Refusals are shaped as AWS shapes them for JSON-protocol services (``__type`` and
``Message``, no TurkErrorCode, no millisecond stamp). The wordings are AWS's usual ones;
the HTTP statuses follow AWS's common-errors table (403 for authentication failures, 400
for a malformed header or an expired signature). GUESS: MTurk's exact bodies for these were
not observed.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import turnout.marketplace.local.errors as E

__all__ = ["ALGORITHM", "MAX_SKEW", "SIGNING_NAME", "SignatureRefused", "verify"]

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNING_NAME = "mturk-requester"  # botocore's model: signingName of the mturk service
# AWS: "a request must reach AWS within five minutes of the time stamp in the request"
# (SigV4 documentation, "Elements of a signature"); later by the same margin is refused too.
MAX_SKEW = timedelta(minutes=5)
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 +Credential=(?P<credential>[^,\s]+), *SignedHeaders=(?P<signed>[^,\s]+), *"
    r"Signature=(?P<signature>[0-9a-f]{64})$")


class SignatureRefused(E.MarketplaceError):
    """The request is not signed with the project's local key pair (never retried by botocore)."""

    stamped = False

    def __init__(self, error_type: str, message: str, http_status: int = 403) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.http_status = http_status


def _missing() -> SignatureRefused:
    return SignatureRefused("MissingAuthenticationTokenException", "Missing Authentication Token")


def _incomplete(message: str) -> SignatureRefused:
    return SignatureRefused("IncompleteSignatureException", message, 400)


def verify(*, method: str, host: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
           credentials: tuple[str, str], now: datetime) -> None:
    """Raise ``SignatureRefused`` unless the request carries a valid SigV4 signature by
    ``credentials`` made within ``MAX_SKEW`` of ``now``.

    ``path`` and ``query`` are as the client sent them (before percent-decoding), ``host``
    is the Host header, ``headers`` every request header (case-insensitive mapping).
    """
    authorization = headers.get("Authorization", "")
    if not authorization:
        raise _missing()
    found = _AUTH.match(authorization.strip())
    if not found:
        if not authorization.startswith(ALGORITHM):
            raise _incomplete(f"Only the {ALGORITHM} signing algorithm is accepted "
                              "(sign with boto3 / AWS Signature Version 4).")
        raise _incomplete("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                          f"parameters. Authorization={authorization[:200]}")
    parts = found.group("credential").split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise _incomplete("Credential should be scoped to a valid region, service and date: "
                          f"'{found.group('credential')[:200]}'.")
    access_key, scope_date, region, service, _ = parts
    key_id, secret = credentials
    if not hmac.compare_digest(access_key.encode(), key_id.encode()):
        raise SignatureRefused("UnrecognizedClientException", "The security token included in the request is invalid.")
    if service != SIGNING_NAME:
        raise SignatureRefused("InvalidSignatureException",
                               f"Credential should be scoped to correct service: '{SIGNING_NAME}'. ")
    amz_date = headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.strptime(amz_date, _TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header "
                          "in the form YYYYMMDD'T'HHMMSS'Z'.") from None
    if scope_date != amz_date[:8]:
        raise SignatureRefused("InvalidSignatureException",
                               f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                               f"date from HTTP: '{scope_date}' != '{amz_date[:8]}'.")
    if signed_at < now - MAX_SKEW:
        raise SignatureRefused("InvalidSignatureException",
                               f"Signature expired: {amz_date} is now earlier than "
                               f"{(now - MAX_SKEW).strftime(_TIMESTAMP)} ({now.strftime(_TIMESTAMP)} - 5 min.)", 400)
    if signed_at > now + MAX_SKEW:
        raise SignatureRefused("InvalidSignatureException",
                               f"Signature not yet current: {amz_date} is still later than "
                               f"{(now + MAX_SKEW).strftime(_TIMESTAMP)} ({now.strftime(_TIMESTAMP)} + 5 min.)", 400)
    signed_names = found.group("signed").split(";")
    if "host" not in signed_names:
        raise SignatureRefused("InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    signed: dict[str, str] = {}
    for name in signed_names:
        value = host if name == "host" else headers.get(name)
        if value is None:
            raise SignatureRefused("InvalidSignatureException",
                                   f"The request signature we calculated does not match the signature you provided: "
                                   f"the signed header {name!r} is missing.")
        signed[name] = value
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=signed, data=body)
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(key_id, secret), service, region)
    try:
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
    except (ValueError, UnicodeError) as exc:  # a header or path botocore cannot canonicalize
        raise _incomplete(f"The request cannot be canonicalized for signing: {exc}") from None
    if not hmac.compare_digest(expected, found.group("signature")):
        raise SignatureRefused("InvalidSignatureException",
                               "The request signature we calculated does not match the signature you provided. "
                               "Check your AWS Secret Access Key and signing method. Consult the service "
                               "documentation for details.")
