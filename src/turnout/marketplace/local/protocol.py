"""The MTurk Requester wire protocol (JSON 1.1) as a WSGI app: dispatch, errors, faults.

What botocore sends (verified against an unmodified boto3 client): ``POST`` to the endpoint path with
``X-Amz-Target: MTurkRequesterServiceV20170117.<Operation>`` and a compact JSON body.
What it needs back: JSON with ``application/x-amz-json-1.1`` (any JSON type parses,
pitfall 8), ``x-amzn-RequestId``, and for errors a body whose ``__type`` names the error
(pitfall 2: the header ``x-amzn-ErrorType`` is ignored for this protocol).

Order of work for one request: find the operation -> consume an injected fault, if any
-> decode JSON -> validate against botocore's model and the cross-field rules -> run the
operation -> (self-check the response) -> answer. Before all of that the SigV4 signature
is checked against the store's key pair (``sigv4.py``): an unsigned or wrongly signed call
changes nothing and learns nothing but the refusal.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

import turnout.marketplace.local.errors as E
import turnout.marketplace.local.sigv4 as sigv4
from turnout.clock import Clock, SystemClock

from .operations import Context, handler_for
from .state import MarketplaceState, to_ms
from .validation import (
    OutputDrift,
    check_cross_field,
    service_model,
    validate_input,
    validate_output,
)

log = logging.getLogger(__name__)

TARGET_PREFIX = "MTurkRequesterServiceV20170117"
CONTENT_TYPE = "application/x-amz-json-1.1"
# botocore's MTurk requests are a few kB; Question documents at most 64 KiB (model doc).
MAX_BODY = 1024 * 1024
# The deepest MTurk request shape is about 5 levels (CreateHIT > QualificationRequirements >
# LocaleValues > Locale); anything far deeper is hostile, and json/recursion would 500 on it.
MAX_DEPTH = 32


class MTurkProtocol:
    """WSGI app answering MTurk Requester API calls from ``state``.

    With ``self_check`` every successful response is validated against botocore's output
    shape; drift is recorded in ``self.drift`` and answered as a ServiceFault so the
    calling test fails loudly instead of receiving a subtly wrong payload.
    """

    def __init__(self, state: MarketplaceState, *, self_check: bool = False,
                 signature_clock: Clock | None = None, require_signature: bool = True) -> None:
        self.state = state
        self.self_check = self_check
        # Signatures carry real (wall-clock) time even when the marketplace runs on a
        # ManualClock, so the skew check has its own clock (injectable for tests).
        self.signature_clock: Clock = signature_clock or SystemClock()
        self.require_signature = require_signature
        self.drift: list[str] = []
        self._drift_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        return self.respond(request)(environ, start_response)

    def respond(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        if request.method != "POST":
            return _json_response(405, {"message": "The MTurk endpoint accepts POST requests only."}, request_id)
        operation = ""
        try:
            raw = self._body(request)
            if self.require_signature:
                self._check_signature(request, raw)
            operation = self._operation(request.headers.get("X-Amz-Target", ""))
            return self._run(operation, raw, request_id)
        except E.MarketplaceError as exc:
            return self._error(exc, request_id)
        except OutputDrift as exc:
            self._record_drift(f"{operation}: {exc}")
            return self._error(E.ServiceFault(f"turnout self-check failed: {exc}"), request_id)
        except Exception as exc:  # a bug in the marketplace: answer like MTurk would, and say so
            log.exception("offline marketplace failed on %s", operation or "<no operation>")
            if self.self_check:
                self._record_drift(f"{operation}: unhandled {type(exc).__name__}: {exc}")
            return self._error(E.ServiceFault(f"Internal error in turnout's offline marketplace: {type(exc).__name__}: {exc}"), request_id)

    @staticmethod
    def _body(request: Request) -> bytes:
        length = request.content_length
        if length is not None and length > MAX_BODY:
            raise E.SerializationException(f"The request body is larger than {MAX_BODY} bytes.")
        raw = request.stream.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise E.SerializationException(f"The request body is larger than {MAX_BODY} bytes.")
        return raw

    def _check_signature(self, request: Request, body: bytes) -> None:
        environ = request.environ
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
        if raw_uri.startswith("/"):
            path, _, query = raw_uri.partition("?")
        else:  # a server that keeps no raw URI: rebuild it as botocore quotes it
            path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/~")
            query = environ.get("QUERY_STRING", "")
        sigv4.verify(method=request.method, host=request.headers.get("Host", ""), path=path, query=query,
                     headers=request.headers, body=body, credentials=self.state.credentials,
                     now=self.signature_clock.now())

    @staticmethod
    def _operation(target: str) -> str:
        prefix, _, operation = target.partition(".")
        if prefix != TARGET_PREFIX or not operation:
            # GUESS: AWS answers a bad target with UnknownOperationException.
            raise E.RequestError(f"X-Amz-Target must be '{TARGET_PREFIX}.<Operation>', got {target!r}.",
                                 "AWS.MechanicalTurk.UnknownOperation")
        if operation not in service_model().operation_names:
            raise E.RequestError(f"{operation} is not an operation of the MTurk Requester API.",
                                 "AWS.MechanicalTurk.UnknownOperation")
        return operation

    def _run(self, operation: str, raw: bytes, request_id: str) -> Response:
        handler = handler_for(operation)
        if handler is None:
            raise E.NotImplementedOperation(operation)
        fault = self.state.take_fault(operation)
        if fault == "service_fault":
            raise E.ServiceFault(f"Injected ServiceFault for {operation} (turnout fault injection).")
        if fault == "throttle":
            raise E.ThrottlingException()
        params = _decode(raw)
        validate_input(operation, params)
        check_cross_field(operation, params)
        result = handler(self.state, params, Context(request_id=request_id))
        if self.self_check:
            validate_output(operation, result)
        if fault == "drop_response":
            # The change above is committed; the caller never learns it succeeded.
            raise E.ServiceFault(f"Injected ServiceFault for {operation} after the change was committed (turnout fault injection: drop_response).")
        return _json_response(200, result, request_id)

    def _error(self, exc: E.MarketplaceError, request_id: str) -> Response:
        body = exc.body(to_ms(self.state.clock.now()))
        return _json_response(exc.http_status, body, request_id)

    def _record_drift(self, message: str) -> None:
        with self._drift_lock:
            self.drift.append(message)


def _decode(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        params = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise E.SerializationException(f"The request body is nested more than {MAX_DEPTH} levels deep.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise E.SerializationException(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise E.SerializationException("The request body must be a JSON object.")
    if json_depth(params) > MAX_DEPTH:
        raise E.SerializationException(f"The request body is nested more than {MAX_DEPTH} levels deep.")
    if not is_unicode_clean(params):
        raise E.SerializationException("The request body contains an unpaired surrogate (\\ud800-\\udfff), "
                                       "which is not text.")
    return params


def is_unicode_clean(value: Any) -> bool:
    """No lone surrogates: JSON's \\ud800 escapes decode to them, and SQLite cannot store them."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> Any:
    """``NaN``/``Infinity`` are not JSON (RFC 8259); Python's parser accepts them unless told."""
    raise ValueError(f"{name} is not a JSON number")


def json_depth(value: Any, limit: int = 10_000) -> int:
    """How deeply ``value`` nests lists and objects, without recursion (iterative walk)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _json_response(status: int, payload: Any, request_id: str) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status=status,
        headers={"x-amzn-RequestId": request_id, "Content-Type": CONTENT_TYPE},
    )
