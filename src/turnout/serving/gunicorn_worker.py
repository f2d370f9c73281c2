"""A gunicorn worker that reads each request whole before a thread serves it.

gunicorn's ``gthread`` worker hands a connection to a pool thread as soon as its first
bytes arrive, and the thread then reads the rest of the headers and the body with
blocking reads. A client that sends headers with ``Content-Length: 1000`` and then one
byte holds that thread until it gives up; 25 such sockets were enough to starve the
server for as long as they stayed open (issue 6, item 4).

``BufferedThreadWorker`` keeps gthread's model (a poller thread plus a pool of request
threads, so PostgreSQL and MariaDB drivers and project code run exactly as before) and
adds what a buffering reverse proxy such as nginx does in front of it: the poller reads
the request line, the headers and the body (up to ``BUFFER_LIMIT`` bytes) with
non-blocking reads, and only a complete request goes to a thread. A stalled client costs
a socket and its buffer, not a thread, and one that has not sent its whole request
within ``REQUEST_READ_TIMEOUT_S`` gets ``408`` and is closed.

Chosen over an async worker class (gevent/eventlet) because that would add a dependency
and monkey-patch threading, sockets and the database drivers under project code
(custom.py), and over a plain socket timeout because a timeout only shortens how long
each stalled client holds a thread, it does not stop 25 of them from holding all of
them. HTTPS served directly by gunicorn (``certfile``/``keyfile``) is not buffered: the
bytes are encrypted until a thread does the TLS handshake; put a reverse proxy in front
for that (docs/security.md).
"""

from __future__ import annotations

import contextlib
import selectors
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

# Bytes of headers a request may have before it is handed over unparsed (gunicorn then
# answers 400/431 itself when they break its limits).
HEADER_LIMIT = 64 * 1024
# Body bytes buffered before a thread takes over the read. Saves are far smaller; a larger
# body then costs a thread only while its remainder arrives.
BUFFER_LIMIT = 256 * 1024
# A client must have sent its whole request (or BUFFER_LIMIT of it) within this time.
REQUEST_READ_TIMEOUT_S = 30.0

_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                     b"Content-Type: text/plain\r\nContent-Length: 36\r\n\r\n"
                     b"the request did not arrive in time\r\n")


def request_complete(buf: bytes | bytearray) -> tuple[bool, bool]:
    """Whether ``buf`` holds a whole HTTP/1.x request (or enough to stop buffering).

    Returns ``(ready, expects_continue)``. Anything odd (no parsable length, oversized
    headers, a body over the limit) is "ready": gunicorn's own parser then answers it.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return len(buf) > HEADER_LIMIT, False
    body_start = end + 4
    length: int | None = None
    chunked = expects_continue = False
    for line in bytes(buf[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return True, False
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"expect":
            expects_continue = value.strip().lower() == b"100-continue"
    have = len(buf) - body_start
    if have >= BUFFER_LIMIT:
        return True, expects_continue
    if chunked:
        return _chunked_complete(buf, body_start), expects_continue
    if length is None or length < 0:
        return True, expects_continue
    return have >= length, expects_continue


def _chunked_complete(buf: bytes | bytearray, pos: int) -> bool:
    """Whether a chunked body starting at ``pos`` has arrived up to its trailer's end."""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return False
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return True  # malformed: let gunicorn refuse it
        if size == 0:
            rest = eol + 2
            return buf.startswith(b"\r\n", rest) or buf.find(b"\r\n\r\n", rest) >= 0
        pos = eol + 2 + size + 2
        if pos > len(buf):
            return False


class BufferedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, with each request read whole by the poller before a thread sees it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffering: deque[Any] = deque()  # in deadline order (a fixed timeout each)

    def enqueue_req(self, conn: Any) -> None:
        """Every path to the thread pool (new connection, kept-alive one readable again,
        read-ahead after a response) comes through here: buffer first, unless this
        connection's request is already whole or TLS hides its bytes."""
        if getattr(conn, "turnout_ready", False) or self.cfg.is_ssl:
            conn.turnout_ready = False
            super().enqueue_req(conn)
            return
        held = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.turnout_buf = bytearray(held)
        conn.turnout_deadline = time.monotonic() + REQUEST_READ_TIMEOUT_S
        conn.turnout_continued = False
        conn.sock.setblocking(False)
        if held and self._complete(conn):
            self._dispatch(conn)
            return
        self.buffering.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: Any, _sock: Any) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before finishing its request
            self._drop(conn)
            return
        conn.turnout_buf += data
        if self._complete(conn):
            self.poller.unregister(conn.sock)
            self.buffering.remove(conn)
            self._dispatch(conn)

    def _complete(self, conn: Any) -> bool:
        ready, expects_continue = request_complete(conn.turnout_buf)
        if not ready and expects_continue and not conn.turnout_continued:
            # The client waits for this before it sends the body.
            conn.turnout_continued = True
            with contextlib.suppress(OSError):
                conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        return ready

    def _dispatch(self, conn: Any) -> None:
        conn.turnout_ready = True
        conn.data_ready = True  # gthread's own wait for a first byte is not needed
        self.enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        buffered = getattr(conn, "turnout_buf", None)
        if buffered:
            conn.turnout_buf = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(buffered))
        return super().handle(conn)

    def _drop(self, conn: Any) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        with contextlib.suppress(ValueError):
            self.buffering.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also close connections whose request did not arrive in time (with a 408)."""
        super().murder_pending()
        now = time.monotonic()
        while self.buffering and self.buffering[0].turnout_deadline <= now:
            conn = self.buffering[0]
            if conn.turnout_buf:
                with contextlib.suppress(OSError):
                    conn.sock.send(_TIMEOUT_RESPONSE)
            self._drop(conn)
