"""The control API at ``/_control/``: drive the offline marketplace from outside MTurk's
protocol (moto's ``moto_api``). Never reachable through ``X-Amz-Target``.

Everything a test, the simulated-worker driver or a person rehearsing a study needs:
reset, seed workers, move a ManualClock, act as a worker, inject faults, inspect state.
Bodies are JSON with snake_case keys; errors are ``{"error": {"code", "message"}}`` like
the rest of turnout. Mutations are POST; GET never changes anything (beyond settling
what the clock already made due, which any read does).

The control API has no authentication: the marketplace is a local rehearsal tool and
should be bound to loopback (ThreadedMarketplace and ``serve`` default to 127.0.0.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, is_dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import errors as E
from . import money
from .records import Hit
from .state import FAULT_KINDS, MarketplaceState

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

    def respond(self, request: Request, *, turk_submit_to: str) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
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
        except (ValueError, TypeError) as exc:
            return _json(400, {"error": {"code": "InvalidInput", "message": str(exc)}})

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        raw = request.get_data(cache=False)
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ControlError(400, "InvalidJSON", f"request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ControlError(400, "InvalidJSON", "request body must be a JSON object")
        return body

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
        try:
            balance = Decimal(str(body.get("balance", money.fmt(money.INITIAL_BALANCE))))
        except InvalidOperation as exc:
            raise ControlError(400, "InvalidInput", "balance must be a decimal amount") from exc
        self.state.reset(balance=balance)
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
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ControlError(400, "InvalidInput", "seconds must be a non-negative number")
        advance(timedelta(seconds=seconds))
        return self._clock_json()

    def do_workers(self, request: Request, **_: Any) -> Any:
        return {"workers": to_jsonable(self.state.workers.all())}

    def do_create_workers(self, request: Request, **_: Any) -> Any:
        body = self._body(request)
        side = self.state.workers
        if "workers" in body:
            created = [side.register(**spec) for spec in body["workers"]]
        else:
            attrs = {k: v for k, v in body.items() if k != "count"}
            created = side.seed(int(body.get("count", 1)), **attrs)
        return {"workers": to_jsonable(created)}

    def do_worker_hits(self, request: Request, worker_id: str, turk_submit_to: str) -> Any:
        hits = self.state.workers.assignable_hits(worker_id)
        return {"hits": [self._hit_json(h, turk_submit_to) for h in hits]}

    def do_worker_assignments(self, request: Request, worker_id: str, **_: Any) -> Any:
        return {"assignments": to_jsonable(self.state.workers.assignments_of(worker_id))}

    def do_preview(self, request: Request, worker_id: str, turk_submit_to: str) -> Any:
        hit = self.state.workers.preview(worker_id, self._need(self._body(request), "hit_id"))
        return {"hit": self._hit_json(hit, turk_submit_to)}

    def do_accept(self, request: Request, worker_id: str, turk_submit_to: str) -> Any:
        side = self.state.workers
        assignment = side.accept(worker_id, self._need(self._body(request), "hit_id"))
        hit = side.hit(assignment.hit_id)
        return {"assignment": to_jsonable(assignment), "task_url": side.task_url_for(assignment, hit, turk_submit_to=turk_submit_to),
                "turk_submit_to": turk_submit_to}

    def do_assignment(self, request: Request, assignment_id: str, **_: Any) -> Any:
        return {"assignment": to_jsonable(self.state.workers.assignment(assignment_id))}

    def do_return_(self, request: Request, assignment_id: str, **_: Any) -> Any:
        worker_id = self._body(request).get("worker_id")
        return {"assignment": to_jsonable(self.state.workers.return_assignment(assignment_id, worker_id=worker_id))}

    def do_submit(self, request: Request, assignment_id: str, **_: Any) -> Any:
        body = self._body(request)
        answers = body.get("answers") or {}
        if not isinstance(answers, dict):
            raise ControlError(400, "InvalidInput", "answers must be an object of strings")
        answers = {str(k): str(v) for k, v in answers.items()}
        return {"assignment": to_jsonable(self.state.workers.submit(assignment_id, answers, worker_id=body.get("worker_id")))}

    def do_hit_assignments(self, request: Request, hit_id: str, **_: Any) -> Any:
        return {"assignments": to_jsonable(self.state.assignments_for_hit(hit_id))}

    def do_faults(self, request: Request, **_: Any) -> Any:
        return {"faults": self.state.pending_faults()}

    def do_add_fault(self, request: Request, **_: Any) -> Any:
        body = self._body(request)
        self.state.add_fault(self._need(body, "operation"), self._need(body, "kind"), int(body.get("count", 1)))
        return {"faults": self.state.pending_faults()}

    def do_clear_faults(self, request: Request, **_: Any) -> Any:
        self.state.clear_faults()
        return {"faults": []}

    def do_events(self, request: Request, **_: Any) -> Any:
        after = request.args.get("after", "0")
        if not after.isdigit():
            raise ControlError(400, "InvalidInput", "after must be a non-negative integer")
        return {"events": to_jsonable(self.state.events(after=int(after)))}

    def do_ledger(self, request: Request, **_: Any) -> Any:
        return {"balance": money.fmt(self.state.balance()), "transactions": to_jsonable(self.state.transactions())}

    def do_notifications(self, request: Request, **_: Any) -> Any:
        return {"notifications": to_jsonable(self.state.notifications())}


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload, indent=1), status=status, mimetype="application/json")
