"""A stub participant server and a headless Chromium for testing psiturk.js on its own.

The stub speaks only the wire calls psiturk.js makes (/sync, /inexp, /quitter, /complete,
raw pages) and records every request, so a test can script failures (a 503, a 409, a
dropped connection) and then read exactly what the browser sent. A second stub on another
port stands in for a foreign origin.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
PSITURK_JS = ROOT / "src" / "turnout" / "experiment" / "static" / "psiturk.js"
TEMPLATE_LIB = ROOT / "src" / "turnout" / "project_template" / "static" / "lib"
TEST_LIB = Path(__file__).resolve().parent / "vendor"
TOKEN = "tok-123_abc"

# Library stacks psiTurk projects ship: an old one (jQuery 1.x era) and today's.
STACKS = {
    "old": [TEST_LIB / "jquery-1.9.1.min.js", TEST_LIB / "underscore-1.6.0.min.js",
            TEST_LIB / "backbone-1.1.2.min.js"],
    "new": [TEMPLATE_LIB / "jquery.min.js", TEMPLATE_LIB / "underscore-min.js",
            TEMPLATE_LIB / "backbone-min.js"],
}

PAGES = {
    "instructions/one.html": (
        '<div id="page-one"><div class="instructionsnav">'
        '<button id="next" class="continue">Next</button></div></div>'),
    "instructions/two.html": (
        '<div id="page-two"><div class="instructionsnav">'
        '<button id="prev" class="previous">Back</button>'
        '<button id="next" class="continue">Next</button></div></div>'),
    "stage.html": '<div id="stage">stage {{ raw braces }}</div>',
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class StubState:
    """What the stub has seen, and the scripted answers it will give."""

    requests: list[Recorded] = field(default_factory=list)
    # Answers for successive PUT /sync requests: an HTTP status, "drop" (close the
    # connection without answering) or ("delay", seconds, status). Empty means 200.
    put_script: list[Any] = field(default_factory=list)
    sync_get: dict[str, Any] = field(default_factory=lambda: {
        "condition": 1, "counterbalance": 0, "assignmentId": "A1", "workerId": "W1",
        "hitId": "H1", "bonus": 0.0})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def wait_for(self, method: str, path_prefix: str, count: int = 1, timeout: float = 10) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.calls(method, path_prefix)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} x {method} {path_prefix}, saw "
                             f"{[(r.method, r.path) for r in self.requests]}")


def _page(stack: str, token: bool, page_load: str | None = None) -> str:
    # window.__globalsBefore lets a test list what psiturk.js adds to the global scope.
    scripts = "".join(f'<script src="/lib/{stack}/{p.name}"></script>' for p in STACKS[stack])
    scripts += "<script>window.__globalsBefore = Object.keys(window);</script>"
    meta = f'<meta name="turnout-participant-token" content="{TOKEN}">' if token else ""
    if page_load is not None:  # the server's page-load time, as turnout's /exp writes it
        meta += f'<meta name="turnout-page-load" content="{page_load}">'
    return (f"<!doctype html><html><head>{meta}<meta charset='utf-8'><title>stub</title>"
            f"{scripts}<script src='/static/js/psiturk.js'></script></head>"
            "<body><div id='start'>ready</div></body></html>")


def _handler(state: StubState, foreign: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _record(self) -> Recorded:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            rec = Recorded(self.command, url.path, parse_qs(url.query),
                           {k.lower(): v for k, v in self.headers.items()}, body)
            with state.lock:
                state.requests.append(rec)
            return rec

        def _send(self, status: int, body: bytes | str, ctype: str = "application/json",
                  extra: dict[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            if foreign:
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Headers", "*")
                self.send_header("Access-Control-Allow-Methods", "GET, POST, PUT")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_OPTIONS(self) -> None:  # noqa: N802 (http.server naming)
            self._record()
            self._send(204, b"")

        def do_GET(self) -> None:  # noqa: N802
            rec = self._record()
            path = rec.path
            if path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            elif foreign or path == "/echo":
                self._send(200, json.dumps({"ok": True}))
            elif path == "/exp":
                stack = rec.query.get("stack", ["new"])[0]
                self._send(200, _page(stack, token="notoken" not in rec.query,
                                      page_load=(rec.query.get("page_load") or [None])[0]), "text/html")
            elif path.startswith("/lib/"):
                _, _, stack, name = path.split("/", 3)
                match = [p for p in STACKS[stack] if p.name == name]
                self._send(200, match[0].read_bytes(), "application/javascript")
            elif path == "/static/js/psiturk.js":
                self._send(200, PSITURK_JS.read_bytes(), "application/javascript")
            elif path.startswith("/sync/"):
                self._send(200, json.dumps(state.sync_get))
            elif path.lstrip("/") in PAGES:
                self._send(200, PAGES[path.lstrip("/")], "text/html")
            elif path == "/complete":
                self._send(200, "<html><body><h1 id='done'>complete</h1></body></html>", "text/html")
            elif path == "/compute_bonus":
                self._send(200, json.dumps({"bonusComputed": "success"}))
            else:
                self._send(404, json.dumps({"error": "not found"}))

        def do_POST(self) -> None:  # noqa: N802
            rec = self._record()
            if rec.path in ("/inexp", "/echo") or foreign:
                self._send(200, json.dumps({"status": "success"}))
            elif rec.path == "/quitter":
                self._send(200, json.dumps({"status": "marked as quitter"}))
            else:
                self._send(404, json.dumps({"error": "not found"}))

        def do_PUT(self) -> None:  # noqa: N802
            rec = self._record()
            if not rec.path.startswith("/sync/"):
                self._send(404, b"{}")
                return
            with state.lock:
                answer = state.put_script.pop(0) if state.put_script else 200
            if answer == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if isinstance(answer, tuple):
                _, seconds, answer = answer
                time.sleep(seconds)
            body = {"status": "user data saved"} if answer == 200 else {"error": {"code": answer}}
            self._send(answer, json.dumps(body))

    return Handler


@dataclass
class Stub:
    base: str
    foreign: str
    state: StubState
    foreign_state: StubState


@pytest.fixture
def stub() -> Iterator[Stub]:
    state, foreign_state = StubState(), StubState()
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, False)),
               ThreadingHTTPServer(("127.0.0.1", 0), _handler(foreign_state, True))]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        yield Stub(f"http://127.0.0.1:{servers[0].server_port}",
                   f"http://127.0.0.1:{servers[1].server_port}",
                   state, foreign_state)
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def _chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None
