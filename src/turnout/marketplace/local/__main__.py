"""``python -m turnout.marketplace.local --port 22362 --store mturk.db``: run it standalone."""

from __future__ import annotations

import argparse
import shlex
import sys

from turnout.clock import SharedManualClock, utcnow

from .state import MarketplaceState, StoreUnusable
from .wsgi import serve


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
    parser.add_argument("--print-env", action="store_true",
                        help="print the export lines a boto3 script needs (the store's key pair, the endpoint) and exit")
    args = parser.parse_args(argv)
    try:
        state = MarketplaceState(args.store)  # creates the store and its key pair if new
    except StoreUnusable as exc:
        sys.exit(f"python -m turnout.marketplace.local: --store {args.store}: {exc.reason}")
    if args.print_env:
        key_id, secret = state.credentials
        shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        host = f"[{shown}]" if ":" in shown else shown
        print(f"export AWS_ACCESS_KEY_ID={shlex.quote(key_id)}")
        print(f"export AWS_SECRET_ACCESS_KEY={shlex.quote(secret)}")
        print(f"export TURNOUT_MTURK_ENDPOINT={shlex.quote(f'http://{host}:{args.port}/')}")
        return
    state.close()
    clock = SharedManualClock(args.store, start=utcnow()) if args.manual_clock else None
    serve(args.host, args.port, args.store, clock=clock, self_check=args.self_check)


if __name__ == "__main__":
    main()
