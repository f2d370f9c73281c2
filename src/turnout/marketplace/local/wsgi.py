"""Assemble the offline marketplace into one WSGI app, and run it.

One app, three doors, all relative to wherever it is mounted (``/`` standalone,
``/_mturk`` inside turnout's server):

* ``POST /`` (with or without the trailing slash): the MTurk Requester API, for an
  unmodified ``boto3.client("mturk", endpoint_url=...)``;
* ``/_control/...``: the control API (reset, workers, clock, faults, inspection);
* ``POST /mturk/externalSubmit``: where a participant's page posts a finished assignment,
  as on MTurk (``{turkSubmitTo}/mturk/externalSubmit``, MTurk's ExternalQuestion contract).

Each door has its own guard (docs/marketplace.md, "Security"): the Requester API wants a
SigV4 signature by the store's key pair, the control API loopback or the control secret,
and externalSubmit the proof (cookie) handed to whoever accepted the assignment.
"""

from __future__ import annotations

import hmac
import html
import os
import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from turnout.clock import Clock

from .control import ControlAPI
from .errors import WorkerActionRefused
from .protocol import MTurkProtocol
from .state import MarketplaceState

__all__ = ["SUBMIT_COOKIE_PREFIX", "MarketplaceApp", "ThreadedMarketplace", "create_app", "serve", "submit_cookie_name"]

SUBMIT_COOKIE_PREFIX = "turnout_submit_"


def submit_cookie_name(assignment_id: str) -> str:
    """The cookie that proves to externalSubmit that this browser accepted ``assignment_id``."""
    return SUBMIT_COOKIE_PREFIX + assignment_id


class MarketplaceApp:
    """The WSGI app ``create_app`` returns; ``state`` is its Python API."""

    def __init__(self, state: MarketplaceState, *, self_check: bool = False, signature_clock: Clock | None = None) -> None:
        self.state = state
        self.protocol = MTurkProtocol(state, self_check=self_check, signature_clock=signature_clock)
        self.control = ControlAPI(state)

    @property
    def credentials(self) -> tuple[str, str]:
        """The key pair boto3 must sign with (``make_client("local", store=...)`` reads it)."""
        return self.state.credentials

    @property
    def drift(self) -> list[str]:
        """Self-check failures seen so far (always empty unless ``self_check``)."""
        return self.protocol.drift

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or ""
        if path in ("", "/"):
            if environ.get("REQUEST_METHOD") == "POST":
                return self.protocol(environ, start_response)
            return self._about(environ, start_response)
        if path == "/_control" or path.startswith("/_control/"):
            environ = dict(environ)
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/_control"
            environ["PATH_INFO"] = path[len("/_control"):] or "/"
            return self.control(environ, start_response)
        if path.rstrip("/") == "/mturk/externalSubmit":
            return self._external_submit(environ, start_response)
        return Response("Not found. The offline marketplace serves POST / (MTurk API), /_control/ and "
                        "POST /mturk/externalSubmit.", status=404, mimetype="text/plain")(environ, start_response)

    def _about(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        text = ("turnout's offline MTurk marketplace.\n"
                "Point boto3 here: boto3.client('mturk', endpoint_url=<this URL>, region_name='us-east-1') with the "
                "project's local key pair in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: `turnout marketplace env` "
                "prints them. Unsigned calls are refused.\n"
                "Control API: GET _control/ lists its routes (loopback only, or with X-Turnout-Control-Secret).\n")
        return Response(text, mimetype="text/plain")(environ, start_response)

    def _external_submit(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """MTurk's externalSubmit: ``assignmentId`` plus any answer fields, form-encoded."""
        request = Request(environ)
        if request.method != "POST":
            return Response("externalSubmit accepts POST only.", status=405, mimetype="text/plain")(environ, start_response)
        form = request.form
        assignment_id = form.get("assignmentId", "")
        if not assignment_id or assignment_id == "ASSIGNMENT_ID_NOT_AVAILABLE":
            return _page(400, "Not submitted", "The form has no assignmentId (a preview cannot be submitted).")(environ, start_response)
        if not self._holds(request, assignment_id):
            return _page(403, "Not submitted",
                         f"This browser did not accept assignment {assignment_id[:40]}: only the worker who accepted "
                         "it (on the worker site, in this browser) can submit it.")(environ, start_response)
        answers = {key: form.get(key, "") for key in form if key != "assignmentId"}
        try:
            self.state.workers.submit(assignment_id, answers, worker_id=form.get("workerId") or None)
        except WorkerActionRefused as exc:
            status = 404 if exc.code == "UnknownAssignment" else 409
            return _page(status, "Not submitted", exc.message)(environ, start_response)
        return _page(200, "Assignment submitted", f"Assignment {assignment_id} was submitted. Thank you!")(environ, start_response)


    def _holds(self, request: Request, assignment_id: str) -> bool:
        """The browser proves it accepted the assignment: the cookie the worker site (or a
        simulated worker) got at accept time. Knowing the ID, which the task URL, the
        experiment's database and the requester all see, is not enough."""
        sent = request.cookies.get(submit_cookie_name(assignment_id), "")
        expected = self.state.submit_key(assignment_id)
        return bool(sent) and hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode())


def _page(status: int, title: str, message: str) -> Response:
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
            "<p><small>turnout offline marketplace</small></p></body></html>")
    return Response(body, status=status, mimetype="text/html")


def create_app(store_path: str | os.PathLike[str], *, clock: Clock | None = None, allow_http_external_url: bool = True,
               self_check: bool = False, signature_clock: Clock | None = None) -> MarketplaceApp:
    """The offline marketplace as a WSGI app over the SQLite file ``store_path``.

    ``clock`` defaults to the wall clock; pass a ``ManualClock`` to move time from tests
    or the control API. ``self_check`` validates every response against botocore's model
    (tests turn it on). ``signature_clock`` is what signatures' timestamps are checked
    against (default the wall clock, since boto3 signs with it even when ``clock`` is
    manual). Nothing runs at import time; creating the app creates the schema and, for a new
    store, its key pair and secrets.
    """
    state = MarketplaceState(store_path, clock, allow_http_external_url=allow_http_external_url)
    return MarketplaceApp(state, self_check=self_check, signature_clock=signature_clock)


def serve(host: str, port: int, store_path: str | os.PathLike[str], *, clock: Clock | None = None,
          allow_http_external_url: bool = True, self_check: bool = False) -> None:
    """Run the marketplace standalone until interrupted (threaded werkzeug server)."""
    app = create_app(store_path, clock=clock, allow_http_external_url=allow_http_external_url, self_check=self_check)
    server = make_server(host, port, app, threaded=True)
    print(f"turnout offline marketplace on http://{host}:{server.server_port}/ (store: {os.fspath(store_path)}; "
          "unsigned calls are refused: python -m turnout.marketplace.local --store <store> --print-env prints the key pair)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class _QuietHandler(WSGIRequestHandler):
    """No access log: a test run would otherwise print a line per MTurk call."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class ThreadedMarketplace:
    """Serve the marketplace from a background thread on 127.0.0.1 (port 0 = any free port).

    For tests and in-process demos (moto's ThreadedMotoServer idea)::

        with ThreadedMarketplace(tmp_path / "mturk.db", clock=ManualClock()) as market:
            client = make_client("local", endpoint_url=market.endpoint_url)
    """

    def __init__(self, store_path: str | os.PathLike[str], *, clock: Clock | None = None, host: str = "127.0.0.1",
                 port: int = 0, allow_http_external_url: bool = True, self_check: bool = False, quiet: bool = True,
                 signature_clock: Clock | None = None) -> None:
        self.quiet = quiet
        self.store_path = os.fspath(store_path)
        self.app = create_app(store_path, clock=clock, allow_http_external_url=allow_http_external_url, self_check=self_check,
                              signature_clock=signature_clock)
        self.host = host
        self._requested_port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def state(self) -> MarketplaceState:
        return self.app.state

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the marketplace is not running; call start() or use it as a context manager")
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """What to pass as boto3's ``endpoint_url``."""
        return self.base_url + "/"

    @property
    def control_url(self) -> str:
        return self.base_url + "/_control"

    @property
    def credentials(self) -> tuple[str, str]:
        """The store's key pair; ``make_client("local", store=market.store_path)`` uses it."""
        return self.app.state.credentials

    def start(self) -> ThreadedMarketplace:
        if self._server is not None:
            return self
        handler = _QuietHandler if self.quiet else None
        self._server = make_server(self.host, self._requested_port, self.app, threaded=True, request_handler=handler)
        self._thread = threading.Thread(target=self._serve, name=f"offline-mturk:{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):  # pragma: no cover - a thread that never starts
            raise RuntimeError("offline marketplace thread did not start")
        return self

    def _serve(self) -> None:
        assert self._server is not None
        self._ready.set()
        self._server.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server.server_close()
        self._server = None
        self._thread = None
        self._ready.clear()
        self.app.state.close()  # idle SQLite connections; the state stays usable

    def __enter__(self) -> ThreadedMarketplace:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
