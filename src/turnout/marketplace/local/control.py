"""The control API at ``/_control/``: drive the offline marketplace from outside MTurk's
protocol (moto's ``moto_api``). Never reachable through ``X-Amz-Target``.

Everything a test, the simulated-worker driver or a person rehearsing a study needs:
reset, seed workers, move a ManualClock, act as a worker, inject faults, inspect state.
Bodies are JSON with snake_case keys; errors are ``{"error": {"code", "message"}}`` like
the rest of turnout. Mutations are POST; GET never changes anything (beyond settling
what the clock already made due, which any read does).

Who may use it (``check_access``): a client on loopback that names a loopback host, or
anyone sending the store's control secret in ``X-Turnout-Control-Secret``. Writes must be
``Content-Type: application/json`` and, when the browser says where they come from
(``Origin``, ``Sec-Fetch-Site``), same-origin. So a web page the researcher happens to
visit cannot reset the marketplace with a cross-origin ``text/plain`` POST, and a
DNS-rebinding name that resolves to 127.0.0.1 is refused by its ``Host``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, is_dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

import turnout.marketplace.local.errors as E
import turnout.marketplace.local.money as money

from .protocol import MAX_BODY, is_unicode_clean, json_depth
from .records import Hit
from .state import FAULT_KINDS, MarketplaceState
from .worker_side import WORKER_ATTRIBUTES

CONTROL_SECRET_HEADER = "X-Turnout-Control-Secret"
MAX_DEPTH = 16  # control bodies are at most 3 levels deep ({"workers": [{...}]})
MAX_COUNT = 10_000  # workers created or faults armed by one call
MAX_BALANCE = Decimal("1000000000")  # far above any rehearsal; keeps amounts to plain cents
MAX_SECONDS = 100 * 365 * 86400  # one clock advance: a century is plenty
LOOPBACK_NAMES = {"localhost", "localhost."}
# Set by reverse proxies (Apache by default, Caddy, nginx when told), never by a local
# curl or script. A proxy that rewrites Host to the upstream (Apache's ProxyPreserveHost Off,
# nginx's default proxy_set_header Host $proxy_host) makes an internet client look like
# loopback by address and by Host; these headers are what still tells.
FORWARDING_HEADERS = ("X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-IP")
_MONEY = re.compile(r"[0-9]{1,12}(\.[0-9]{0,2})?")  # MTurk's money pattern, bounded

_REFUSAL_STATUS = {
    "UnknownWorker": 404, "UnknownHIT": 404, "UnknownAssignment": 404,
    "NotQualified": 403, "WrongWorker": 403, "Blocked": 403,
}

ROUTES = [
    ("GET", "/", "index", "this list"),
    ("GET", "/state", "state", "counts, balance and the marketplace's current time"),
    ("POST", "/reset", "reset", 'forget everything; optional {"balance": "10000.00"}'),
    ("GET", "/clock", "clock", "the marketplace's current time"),
    ("POST", "/clock/advance", "advance", '{"seconds": n}: move a ManualClock forward (409 otherwise)'),
    ("GET", "/workers", "workers", "the worker registry"),
    ("POST", "/workers", "create_workers",
     '{"count": n, "percent_approved", "number_approved", "country", "subdivision", "masters", "adult"} '
     'or {"workers": [{"worker_id", ...}]}'),
    ("GET", "/workers/<worker_id>/hits", "worker_hits", "HITs this worker can find"),
    ("GET", "/workers/<worker_id>/assignments", "worker_assignments", "this worker's assignments, any status"),
    ("POST", "/workers/<worker_id>/preview", "preview", '{"hit_id"}: preview (counts as pending for a while)'),
    ("POST", "/workers/<worker_id>/accept", "accept", '{"hit_id"}: accept; returns the assignment and task_url'),
    ("GET", "/assignments/<assignment_id>", "assignment", "one assignment, any status"),
    ("POST", "/assignments/<assignment_id>/return", "return_", "return an accepted assignment"),
    ("POST", "/assignments/<assignment_id>/submit", "submit", '{"answers": {...}}: submit an accepted assignment'),
    ("GET", "/hits/<hit_id>/assignments", "hit_assignments", "a HIT's assignments, any status"),
    ("GET", "/faults", "faults", "pending injected faults"),
    ("POST", "/faults", "add_fault", f'{{"operation", "kind": {"|".join(FAULT_KINDS)}, "count": n}}'),
    ("POST", "/faults/clear", "clear_faults", "drop every pending fault"),
    ("GET", "/events", "events", "notification-style events; ?after=<seq>"),
    ("GET", "/ledger", "ledger", "every debit of the balance"),
    ("GET", "/notifications", "notifications", "messages NotifyWorkers would have mailed"),
]


class ControlError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return money.fmt(value)
    return value


class ControlAPI:
    """WSGI app for ``/_control/`` (mounted by ``create_app``)."""

    def __init__(self, state: MarketplaceState) -> None:
        self.state = state
        self.url_map = Map([Rule(path, endpoint=endpoint, methods=[method]) for method, path, endpoint, _ in ROUTES],
                           strict_slashes=False)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        return self.respond(request, turk_submit_to=self.turk_submit_to(request))(environ, start_response)

    @staticmethod
    def turk_submit_to(request: Request) -> str:
        """Where participants' pages post ``/mturk/externalSubmit``: the marketplace root.

        The control app runs under ``<root>/_control``, so strip that from the script root.
        """
        root = request.script_root
        if root.endswith("/_control"):
            root = root[: -len("/_control")]
        return request.host_url.rstrip("/") + root

    def check_access(self, request: Request) -> None:
        """Loopback (by address and by Host) or the control secret; writes JSON and same-origin.

        Raises ControlError 403/415. GET stays usable from ``curl`` on the same machine.
        """
        sent = request.headers.get(CONTROL_SECRET_HEADER)
        if sent is not None:
            if not hmac.compare_digest(sent.encode("utf-8", "replace"), self.state.control_secret.encode()):
                raise ControlError(403, "BadControlSecret", f"{CONTROL_SECRET_HEADER} is not this marketplace's "
                                                            "control secret (turnout marketplace env --control)")
        else:
            proxied = next((name for name in FORWARDING_HEADERS if name in request.headers), None)
            if proxied is not None:
                raise ControlError(403, "Proxied", f"the control API answers only clients on this machine; this "
                                   f"request came through a reverse proxy ({proxied} header), so it needs "
                                   f"{CONTROL_SECRET_HEADER}")
            if not _is_loopback_address(request.remote_addr):
                raise ControlError(403, "NotLoopback", "the control API answers only clients on this machine "
                                   f"(loopback), or requests carrying {CONTROL_SECRET_HEADER}")
            if not _is_loopback_host(request.host):
                raise ControlError(403, "HostNotLoopback", f"the control API answers only requests addressed to "
                                   f"127.0.0.1, localhost or [::1] (Host was {request.host[:100]!r}), or "
                                   f"requests carrying {CONTROL_SECRET_HEADER}")
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        if request.mimetype != "application/json":
            raise ControlError(415, "UnsupportedMediaType", "control API writes must be Content-Type: application/json")
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise ControlError(403, "CrossOrigin", f"control API writes must come from the same origin "
                                                   f"(Sec-Fetch-Site: {site[:40]})")
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
            raise ControlError(403, "CrossOrigin", f"control API writes must come from the same origin "
                                                   f"(Origin: {origin[:100]})")

    def respond(self, request: Request, *, turk_submit_to: str) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            self.check_access(request)
            endpoint, args = adapter.match()
            handler: Callable[..., Any] = getattr(self, f"do_{endpoint}")
            payload = handler(request, turk_submit_to=turk_submit_to, **args)
            return _json(200, payload)
        except ControlError as exc:
            return _json(exc.status, {"error": {"code": exc.code, "message": exc.message}})
        except E.WorkerActionRefused as exc:
            return _json(_REFUSAL_STATUS.get(exc.code, 409), {"error": {"code": exc.code, "message": exc.message}})
        except E.MarketplaceError as exc:
            return _json(400, {"error": {"code": exc.error_type, "message": exc.message}})
        except MethodNotAllowed as exc:
            return _json(405, {"error": {"code": "MethodNotAllowed", "message": f"use {', '.join(sorted(exc.valid_methods or []))}"}})
        except NotFound:
            return _json(404, {"error": {"code": "NotFound", "message": f"no control route {request.path}; GET /_control/ lists them"}})
        except HTTPException as exc:  # pragma: no cover - other werkzeug errors
            return _json(exc.code or 400, {"error": {"code": type(exc).__name__, "message": str(exc.description)}})
        except (ValueError, TypeError, OverflowError) as exc:
            return _json(400, {"error": {"code": "InvalidInput", "message": str(exc)[:500]}})

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        raw = request.stream.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise ControlError(413, "TooLarge", f"request body is larger than {MAX_BODY} bytes")
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw, parse_constant=_refuse_constant)
        except RecursionError:
            raise ControlError(400, "InvalidJSON", f"request body is nested more than {MAX_DEPTH} levels deep") from None
        except ValueError as exc:  # includes UnicodeDecodeError
            raise ControlError(400, "InvalidJSON", f"request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ControlError(400, "InvalidJSON", "request body must be a JSON object")
        if json_depth(body) > MAX_DEPTH:
            raise ControlError(400, "InvalidJSON", f"request body is nested more than {MAX_DEPTH} levels deep")
        if not is_unicode_clean(body):
            raise ControlError(400, "InvalidJSON", "request body contains an unpaired surrogate, which is not text")
        return body

    @staticmethod
    def _string(body: dict[str, Any], key: str) -> str:
        value = ControlAPI._need(body, key)
        if not isinstance(value, str) or not value or len(value) > 200 or "\x00" in value:
            raise ControlError(400, "InvalidInput", f"{key} must be a non-empty string of at most 200 characters")
        return value

    @staticmethod
    def _count(body: dict[str, Any], key: str, default: int) -> int:
        value = body.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_COUNT:
            raise ControlError(400, "InvalidInput", f"{key} must be a whole number from 1 to {MAX_COUNT}")
        return value

    @staticmethod
    def _need(body: dict[str, Any], key: str) -> Any:
        if key not in body:
            raise ControlError(400, "MissingField", f"missing field {key!r}")
        return body[key]

    def _hit_json(self, hit: Hit, turk_submit_to: str) -> dict[str, Any]:
        out = to_jsonable(hit)
        out["preview_url"] = self.state.workers.task_url_for(None, hit, turk_submit_to=turk_submit_to)
        return out

    # ------------------------------------------------------------------ endpoints

    def do_index(self, request: Request, **_: Any) -> Any:
        return {"routes": [{"method": m, "path": "/_control" + p, "about": about} for m, p, _, about in ROUTES]}

    def do_state(self, request: Request, **_: Any) -> Any:
        return self.state.summary()

    def do_reset(self, request: Request, **_: Any) -> Any:
        body = self._body(request)
        self.state.reset(balance=_balance(body.get("balance", money.fmt(money.INITIAL_BALANCE))))
        return self.state.summary()

    def _clock_json(self) -> dict[str, Any]:
        now = self.state.clock.now()
        return {"now": now.isoformat(), "epoch": now.timestamp(), "manual": hasattr(self.state.clock, "advance")}

    def do_clock(self, request: Request, **_: Any) -> Any:
        return self._clock_json()

    def do_advance(self, request: Request, **_: Any) -> Any:
        clock = self.state.clock
        advance = getattr(clock, "advance", None)
        if advance is None:
            raise ControlError(409, "NotManualClock", "the marketplace runs on the wall clock; start it with a ManualClock to move time")
        seconds = self._need(self._body(request), "seconds")
        if (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds)
                or not 0 <= seconds <= MAX_SECONDS):
            raise ControlError(400, "InvalidInput", f"seconds must be a number from 0 to {MAX_SECONDS}")
        advance(timedelta(seconds=seconds))
        return self._clock_json()

    def do_workers(self, request: Request, **_: Any) -> Any:
        return {"workers": to_jsonable(self.state.workers.all())}

    def do_create_workers(self, request: Request, **_: Any) -> Any:
        body = self._body(request)
        side = self.state.workers
        if "workers" in body:
            specs = body["workers"]
            if not isinstance(specs, list) or not 0 < len(specs) <= MAX_COUNT or not all(isinstance(s, dict) for s in specs):
                raise ControlError(400, "InvalidInput", f"workers must be a list of 1 to {MAX_COUNT} objects")
            for spec in specs:
                _check_worker_attrs(spec, allow_id=True)
            created = [side.register(**spec) for spec in specs]
        else:
            attrs = {k: v for k, v in body.items() if k != "count"}
            _check_worker_attrs(attrs, allow_id=False)
            created = side.seed(self._count(body, "count", 1), **attrs)
        return {"workers": to_jsonable(created)}

    def do_worker_hits(self, request: Request, worker_id: str, turk_submit_to: str) -> Any:
        hits = self.state.workers.assignable_hits(worker_id)
        return {"hits": [self._hit_json(h, turk_submit_to) for h in hits]}

    def do_worker_assignments(self, request: Request, worker_id: str, **_: Any) -> Any:
        return {"assignments": to_jsonable(self.state.workers.assignments_of(worker_id))}

    def do_preview(self, request: Request, worker_id: str, turk_submit_to: str) -> Any:
        hit = self.state.workers.preview(worker_id, self._string(self._body(request), "hit_id"))
        return {"hit": self._hit_json(hit, turk_submit_to)}

    def do_accept(self, request: Request, worker_id: str, turk_submit_to: str) -> Any:
        side = self.state.workers
        assignment = side.accept(worker_id, self._string(self._body(request), "hit_id"))
        hit = side.hit(assignment.hit_id)
        # submit_key: send it as cookie turnout_submit_<assignment id> to externalSubmit.
        return {"assignment": to_jsonable(assignment), "task_url": side.task_url_for(assignment, hit, turk_submit_to=turk_submit_to),
                "turk_submit_to": turk_submit_to, "submit_key": self.state.submit_key(assignment.assignment_id)}

    def do_assignment(self, request: Request, assignment_id: str, **_: Any) -> Any:
        return {"assignment": to_jsonable(self.state.workers.assignment(assignment_id))}

    def do_return_(self, request: Request, assignment_id: str, **_: Any) -> Any:
        worker_id = _optional_string(self._body(request), "worker_id")
        return {"assignment": to_jsonable(self.state.workers.return_assignment(assignment_id, worker_id=worker_id))}

    def do_submit(self, request: Request, assignment_id: str, **_: Any) -> Any:
        body = self._body(request)
        answers = body.get("answers") or {}
        if not isinstance(answers, dict):
            raise ControlError(400, "InvalidInput", "answers must be an object of strings")
        if not all(isinstance(v, (str, int, float, bool)) or v is None for v in answers.values()):
            raise ControlError(400, "InvalidInput", "answers must be an object of strings")
        answers = {str(k): str(v) for k, v in answers.items()}
        worker_id = _optional_string(body, "worker_id")
        return {"assignment": to_jsonable(self.state.workers.submit(assignment_id, answers, worker_id=worker_id))}

    def do_hit_assignments(self, request: Request, hit_id: str, **_: Any) -> Any:
        return {"assignments": to_jsonable(self.state.assignments_for_hit(hit_id))}

    def do_faults(self, request: Request, **_: Any) -> Any:
        return {"faults": self.state.pending_faults()}

    def do_add_fault(self, request: Request, **_: Any) -> Any:
        body = self._body(request)
        self.state.add_fault(self._string(body, "operation"), self._string(body, "kind"), self._count(body, "count", 1))
        return {"faults": self.state.pending_faults()}

    def do_clear_faults(self, request: Request, **_: Any) -> Any:
        self.state.clear_faults()
        return {"faults": []}

    def do_events(self, request: Request, **_: Any) -> Any:
        after = request.args.get("after", "0")
        # isdigit() alone accepts "²" and 400-digit numbers SQLite cannot bind (OverflowError).
        if not (after.isascii() and after.isdigit()) or int(after) > 2**63 - 1:
            raise ControlError(400, "InvalidInput", "after must be a whole number from 0 to 2**63-1")
        return {"events": to_jsonable(self.state.events(after=int(after)))}

    def do_ledger(self, request: Request, **_: Any) -> Any:
        return {"balance": money.fmt(self.state.balance()), "transactions": to_jsonable(self.state.transactions())}

    def do_notifications(self, request: Request, **_: Any) -> Any:
        return {"notifications": to_jsonable(self.state.notifications())}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _balance(value: Any) -> Decimal:
    """A plain amount of dollars and cents, like MTurk's money strings ("10000.00")."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ControlError(400, "InvalidInput", 'balance must be a string amount such as "10000.00"')
    text = str(value)
    try:
        amount = Decimal(text) if _MONEY.fullmatch(text) else None
    except InvalidOperation:
        amount = None
    if amount is None or amount > MAX_BALANCE:
        raise ControlError(400, "InvalidInput", f"balance must be dollars and cents from 0 to {MAX_BALANCE} "
                                                f'such as "10000.00" (got {text[:40]!r})')
    return amount


def _optional_string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > 200):
        raise ControlError(400, "InvalidInput", f"{key} must be a string")
    return value


def _check_worker_attrs(spec: dict[str, Any], *, allow_id: bool) -> None:
    """Types of the worker attributes before they reach the registry (else TypeError deep down)."""
    for key, value in spec.items():
        expected = WORKER_ATTRIBUTES.get(key)
        if key == "worker_id" and allow_id:
            expected = str
        if expected is None:
            raise ControlError(400, "InvalidInput", f"unknown worker attribute {key[:60]!r}; "
                                                    f"use {', '.join(sorted(WORKER_ATTRIBUTES))}")
        if value is None and key in ("subdivision", "worker_id"):
            continue
        if expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**31
        elif expected is bool:
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, str) and 0 < len(value) <= 64 and "\x00" not in value
        if not ok:
            kind = {int: "a whole number", bool: "true or false", str: "a short string"}[expected]
            raise ControlError(400, "InvalidInput", f"worker attribute {key} must be {kind}")


def _is_loopback_address(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_loopback_host(host: str) -> bool:
    """Host header names a loopback interface (port ignored): not a DNS-rebinding name."""
    name = host.lower()
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name in LOOPBACK_NAMES or _is_loopback_address(name)


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload, indent=1), status=status, mimetype="application/json")
