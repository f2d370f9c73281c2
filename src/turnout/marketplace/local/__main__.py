"""``python -m turnout.marketplace.local --port 22362 --store mturk.db``: run it standalone."""

from __future__ import annotations

import argparse

from turnout.clock import utcnow

from .clock import SharedManualClock
from .server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m turnout.marketplace.local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=22362)
    parser.add_argument("--store", default="offline-mturk.db", help="SQLite file holding the marketplace state")
    parser.add_argument("--manual-clock", action="store_true",
                        help="keep time in the store (a SharedManualClock starting now), moved only by "
                             "POST /_control/clock/advance; every process serving the store shares it")
    parser.add_argument("--self-check", action="store_true",
                        help="validate every response against botocore's model; drift answers a ServiceFault (for tests)")
    args = parser.parse_args(argv)
    clock = SharedManualClock(args.store, start=utcnow()) if args.manual_clock else None
    serve(args.host, args.port, args.store, clock=clock, self_check=args.self_check)


if __name__ == "__main__":
    main()
