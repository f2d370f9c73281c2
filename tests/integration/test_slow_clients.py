"""Stalled connections must not starve ``turnout serve`` (issue 6, item 4).

Clients that send headers with ``Content-Length: 1000`` and then one byte used to hold a
worker thread each until they gave up; with more of them than threads, every other
request waited. The buffering worker reads requests whole before a thread takes them.
Nothing here measures speed: the normal request only has to be answered at all while
the stalled sockets are still open (its timeout is a hang detector, far above any
answer time).
"""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from servers import running_server
from turnout.serving.launcher import SQLITE_THREADS

pytestmark = [pytest.mark.slow]

HANG_S = 20


def _stall(host: str, port: int, count: int) -> list[socket.socket]:
    sockets = []
    for i in range(count):
        sock = socket.create_connection((host, port), timeout=HANG_S)
        sock.sendall(f"PUT /sync/slow{i}:x HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     "Content-Length: 1000\r\n\r\n{".encode())
        sockets.append(sock)
    return sockets


def test_stalled_uploads_do_not_block_other_requests(project_dir: Path) -> None:
    with running_server(project_dir, workers=1) as base:
        parts = urlsplit(base)
        stalled = _stall(parts.hostname or "", parts.port or 80, SQLITE_THREADS + 4)
        try:
            with urllib.request.urlopen(base + "/", timeout=HANG_S) as response:
                assert response.status == 200
            # A real save on a connection of its own still goes through whole.
            body = b'{"x": 1}'
            request = urllib.request.Request(base + "/sync/nobody:here", data=body, method="PUT",
                                             headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=HANG_S)
            assert refused.value.code == 404  # read, parsed and answered: no such participant
        finally:
            for sock in stalled:
                sock.close()


def test_requests_that_arrive_in_pieces_are_answered_in_turn(project_dir: Path) -> None:
    """Headers and body split across packets, then a second request on the same connection."""
    with running_server(project_dir, workers=1) as base:
        parts = urlsplit(base)
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=HANG_S) as sock:
            first = (b"PUT /sync/nobody:here HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 8\r\n\r\n{\"x\": 1}")
            for piece in (first[:7], first[7:60], first[60:-3], first[-3:]):
                sock.sendall(piece)
            reply = _read_response(sock)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            second = _read_response(sock)
        assert reply.startswith(b"HTTP/1.1 404 ") and b"no participant" in reply
        assert second.startswith(b"HTTP/1.1 200 ")


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
