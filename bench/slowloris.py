"""Stalled-connection probe: do slow clients tie up the server's workers?

Opens ``--sockets`` connections (default 25) to a loopback server, each sending complete
request headers for ``PUT /sync/<id>`` with ``Content-Length: 1000`` and then a single byte
of the body, and holds them open for ``--hold`` seconds (default 20) without sending more.
Meanwhile one normal client sends ``GET /`` every ``--interval`` seconds on a fresh
connection and records how long each answer takes. A server that lets slow clients hold
its worker threads answers those normal requests late (or not at all); one that buffers
requests before handing them to a thread answers them as fast as with no attack.

    .venv/bin/python bench/slowloris.py --project tests/fixtures/minimal_project \\
        --database-url sqlite:////tmp/bench/slowloris.db            # starts `turnout serve`
    .venv/bin/python bench/slowloris.py --url http://127.0.0.1:22362  # a running server

Bounded: at most 500 sockets and 120 s of holding, loopback addresses only; it stops by
itself and closes every socket. Not a test: it measures and prints (exit 1 if a normal
request timed out or failed).
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from workload import ManagedServer

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def stall(host: str, port: int, count: int) -> list[socket.socket]:
    """Open ``count`` connections that send headers and one body byte, then go quiet."""
    sockets = []
    for i in range(count):
        sock = socket.create_connection((host, port), timeout=10)
        head = (f"PUT /sync/slow{i}:probe HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        sock.sendall(head.encode())
        sockets.append(sock)
    return sockets


def timed_get(host: str, port: int, timeout_s: float) -> float | None:
    """Seconds for one ``GET /`` on a new connection, or None if it failed or timed out."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    started = time.perf_counter()
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            return None
        return time.perf_counter() - started
    except OSError:
        return None
    finally:
        conn.close()


def probe(host: str, port: int, *, sockets: int, hold_s: float, interval_s: float,
          timeout_s: float) -> dict[str, object]:
    baseline = [t for t in (timed_get(host, port, timeout_s) for _ in range(5)) if t is not None]
    stalled = stall(host, port, sockets)
    latencies: list[float | None] = []
    ends = time.monotonic() + hold_s
    try:
        while time.monotonic() < ends:
            started = time.monotonic()
            latencies.append(timed_get(host, port, min(timeout_s, max(0.5, ends - started + 1))))
            time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
        closed = 0
        for sock in stalled:  # did the server drop the stalled ones (it may), or keep them?
            sock.setblocking(False)
            try:
                closed += len(sock.recv(4096)) >= 0  # b"" (closed) or an error response
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
    finally:
        for sock in stalled:
            sock.close()
    after = [t for t in (timed_get(host, port, timeout_s) for _ in range(5)) if t is not None]
    ok = [t for t in latencies if t is not None]
    return {"baseline_ms": [round(1000 * t, 1) for t in baseline], "requests": len(latencies),
            "failed_or_timed_out": len(latencies) - len(ok),
            "p50_ms": 1000 * statistics.median(ok) if ok else float("nan"),
            "max_ms": 1000 * max(ok) if ok else float("nan"),
            "closed_by_server": closed, "after_ms": [round(1000 * t, 1) for t in after]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running server on loopback, e.g. http://127.0.0.1:22362")
    target.add_argument("--project", type=Path, help="start `turnout serve` for this project folder")
    parser.add_argument("--database-url", help="the database when starting the server")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: config)")
    parser.add_argument("--sockets", type=int, default=25, help="stalled connections (at most 500)")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds to hold them (at most 120)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between normal requests")
    parser.add_argument("--timeout", type=float, default=15.0, help="a normal request's timeout (s)")
    args = parser.parse_args(argv)
    if not 1 <= args.sockets <= 500 or not 0 < args.hold <= 120:
        parser.error("--sockets must be 1..500 and --hold 0..120 seconds")
    if args.project and not args.database_url:
        parser.error("--database-url is required with --project")
    server = ManagedServer.start(args.project, args.database_url, args.workers) if args.project else None
    url = server.url if server else args.url
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    try:
        if host not in LOOPBACK:
            raise SystemExit("loopback only: --url must be http://127.0.0.1:PORT or http://localhost:PORT")
        result = probe(host, port, sockets=args.sockets, hold_s=args.hold, interval_s=args.interval,
                       timeout_s=args.timeout)
    finally:
        if server:
            server.stop()
    print(f"slowloris probe: {args.sockets} stalled sockets (headers + 1 of 1000 body bytes) held "
          f"{args.hold:g} s against {url}")
    print(f"  normal GET / before: {result['baseline_ms']} ms")
    print(f"  during: {result['requests']} requests, {result['failed_or_timed_out']} failed or timed out "
          f"(timeout {args.timeout:g} s), p50 {result['p50_ms']:.1f} ms, max {result['max_ms']:.1f} ms")
    print(f"  stalled sockets closed by the server by the end: {result['closed_by_server']}")
    print(f"  normal GET / after: {result['after_ms']} ms")
    return 1 if result["failed_or_timed_out"] else 0


if __name__ == "__main__":
    sys.exit(main())
