"""Load benchmark: N simulated participants, C at a time, against a running ``turnout serve``.

Each participant does what psiturk.js does, with no think time:
GET /exp, GET /sync, PUT /sync (1 trial), POST /inexp, PUT /sync (2..K trials, the whole
growing task data each time, each stamped X-Turnout-Save: <page load>.<n>), GET /complete. Then the database is read directly and every
participant's stored data is checked against the last body sent (byte for byte).

    # start the server itself (4 worker processes) on a database, 1000 x 50 trials at 50:
    .venv/bin/python bench/participants.py --project tests/fixtures/minimal_project \\
        --database-url sqlite:////tmp/bench/participants.db --workers 4 -n 1000 -c 50 -k 50

    # or against a server that is already running:
    .venv/bin/python bench/participants.py --url http://127.0.0.1:22362 \\
        --database-url postgresql://postgres@127.0.0.1/bench -n 200

Loopback only: --url must point at 127.0.0.1 or localhost. Not a test: it asserts nothing,
it measures and prints (and exits 1 if any participant's data is lost or wrong).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import re
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from workload import (
    BASE_MS,
    ManagedServer,
    cpu_seconds,
    load_project_settings,
    process_tree,
    task_body,
    task_trials,
)

TOKEN = re.compile(rb'name="turnout-participant-token" content="([^"]+)"')
ROUTES = ("exp", "sync_get", "sync_put", "inexp", "complete")
COMPLETED = 3


class StepFailed(Exception):
    pass


@dataclass
class Client:
    """A keep-alive HTTP/1.1 connection, as one browser tab would hold, reopened for each
    participant."""

    host: str
    port: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    reconnects: int = 0
    conn: http.client.HTTPConnection | None = None

    def request(self, route: str, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
                reused = False
            else:
                reused = True
            started = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                # The server closed an idle keep-alive connection before reading this request;
                # any HTTP client resends then (urllib3 does). Anything else is an error.
                if reused and attempt == 1:
                    self.reconnects += 1
                    continue
                raise
            elapsed = time.perf_counter() - started
            if response.will_close:
                self.conn.close()
                self.conn = None
            self.latencies[route].append(elapsed)
            return response.status, data
        raise AssertionError("unreachable")

    def expect(self, route: str, method: str, path: str, ok: tuple[int, ...] = (200,), **kw: Any) -> bytes:
        try:
            status, data = self.request(route, method, path, **kw)
        except OSError as exc:
            self._error(route, f"{type(exc).__name__}: {exc}")
            raise StepFailed(route) from None
        if status not in ok:
            self._error(route, f"HTTP {status}: {data[:200]!r}")
            raise StepFailed(route)
        return data

    def _error(self, route: str, what: str) -> None:
        self.errors[route] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{route}: {what}")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Plan:
    run_id: str
    seed: int
    participants: int
    trials: int
    trial_bytes: int
    mode: str
    # psiTurk's own server issues no participant token; turnout's always does.
    require_token: bool = True

    def ids(self, i: int) -> tuple[str, str, str]:
        return f"{self.run_id}W{i:06d}", f"{self.run_id}A{i:06d}", f"{self.run_id}H"


def run_participant(client: Client, plan: Plan, i: int, acked: dict[str, tuple[int, bytes]]) -> None:
    """One participant from /exp to /complete. ``acked[uid]`` holds the trial count and the
    last body the server acknowledged, which is what the database must then hold."""
    worker, assignment, hit = plan.ids(i)
    uid = f"{worker}:{assignment}"
    # A new participant is a new browser: a new connection, which may land on any worker
    # process. (Keeping one connection per client thread for the whole run would pin each
    # thread to one process and turn uneven accept() luck into a permanent latency split.)
    client.close()
    query = urlencode({"hitId": hit, "assignmentId": assignment, "workerId": worker, "mode": plan.mode})
    page = client.expect("exp", "GET", f"/exp?{query}")
    match = TOKEN.search(page)
    if not match and plan.require_token:
        client._error("exp", f"no participant token in the page: {page[:200]!r}")
        raise StepFailed("exp")
    auth = {"X-Turnout-Token": match.group(1).decode()} if match else {}
    fields = json.loads(client.expect("sync_get", "GET", f"/sync/{quote(uid, safe='')}", headers=auth))
    fields["id"] = uid
    trials = task_trials(plan.seed, uid, plan.trials, plan.trial_bytes)
    # psiturk.js stamps each save with its page load (ms time + random hex) and a sequence.
    page_load = f"{BASE_MS + i:013d}-{random.Random(f'{plan.seed}|{uid}|page').getrandbits(32):08x}"
    for count in range(1, plan.trials + 1):
        questions = {"age": "31", "feedback": "fine"} if count == plan.trials else None
        body = task_body(fields, trials, count, mode=plan.mode, questions=questions)
        put_headers = dict(auth, **{"Content-Type": "application/json", "X-Turnout-Save": f"{page_load}.{count}"})
        client.expect("sync_put", "PUT", f"/sync/{uid}", body=body, headers=put_headers)
        acked[uid] = (count, body)
        if count == 1:
            form = dict(auth, **{"Content-Type": "application/x-www-form-urlencoded"})
            client.expect("inexp", "POST", "/inexp", body=urlencode({"uniqueId": uid}).encode(), headers=form)
    client.expect("complete", "GET", f"/complete?{urlencode({'uniqueId': uid, 'mode': plan.mode})}",
                  headers=auth)


def kill_workers(master: int) -> None:
    """SIGKILL every child of the gunicorn master (its workers), as a crash would."""
    import signal

    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == master:
            os.kill(int(entry), signal.SIGKILL)
            print(f"  killed worker {entry} with SIGKILL", flush=True)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def run_load(url: str, plan: Plan, concurrency: int) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback only: --url must be http://127.0.0.1:PORT or http://localhost:PORT")
    next_index = iter(range(plan.participants))
    take = threading.Lock()
    acked: dict[str, tuple[int, bytes]] = {}  # each key is written by one thread only
    completed: list[int] = []
    failed: list[int] = []

    def worker() -> Client:
        client = Client(host, port)
        while True:
            with take:
                i = next(next_index, None)
            if i is None:
                client.close()
                return client
            try:
                run_participant(client, plan, i, acked)
            except StepFailed:
                with take:
                    failed.append(i)
                continue
            with take:
                completed.append(i)

    cpu0, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        clients = [f.result() for f in [pool.submit(worker) for _ in range(concurrency)]]
    wall, client_cpu = time.perf_counter() - started, time.process_time() - cpu0

    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    samples: list[str] = []
    for client in clients:
        for route, values in client.latencies.items():
            latencies[route].extend(values)
        errors.update(client.errors)
        samples.extend(client.error_samples)
    routes = {}
    for route in ROUTES:
        values = sorted(latencies.get(route, []))
        routes[route] = {"count": len(values), "errors": errors.get(route, 0),
                         "p50_ms": 1000 * percentile(values, 50), "p95_ms": 1000 * percentile(values, 95),
                         "p99_ms": 1000 * percentile(values, 99),
                         "mean_ms": 1000 * statistics.fmean(values) if values else float("nan")}
    requests = sum(r["count"] for r in routes.values())
    return {"run_id": plan.run_id, "participants": plan.participants, "trials": plan.trials,
            "concurrency": concurrency, "wall_s": wall, "completed": len(completed),
            "completed_per_s": len(completed) / wall, "requests": requests, "requests_per_s": requests / wall,
            "errors": sum(errors.values()), "failed_participants": len(failed),
            "reconnects": sum(c.reconnects for c in clients), "client_cpu_s": client_cpu,
            "routes": routes, "error_samples": samples[:5], "acked": acked,
            "completed_uids": {":".join(plan.ids(i)[:2]) for i in completed}}


def verify(database_url: str, table: str, plan: Plan, acked: dict[str, tuple[int, bytes]],
           completed: set[str]) -> dict[str, Any]:
    """Read every participant of this run straight from the database and compare it with the
    last save the server acknowledged: a trial acknowledged but not stored is lost."""
    from sqlalchemy import select

    from turnout.config import TableNames
    from turnout.db.engine import Database

    db = Database(database_url, TableNames(participants=table))
    P = db.models.Participant
    try:
        with db.begin() as session:
            rows = session.execute(
                select(P.uniqueid, P.status, P.cond, P.counterbalance, P.trial_count, P.datastring)
                .where(P.workerid.like(f"{plan.run_id}W%"))).all()
    finally:
        db.dispose()
    by_uid = {r.uniqueid: r for r in rows}
    lost = mismatched = missing = wrong_status = stored_trials = 0
    for uid, (count, body) in acked.items():
        digest = hashlib.sha256(body).hexdigest()
        row = by_uid.get(uid)
        if row is None:
            missing += 1
            lost += count
            continue
        try:
            stored = len(json.loads(row.datastring or "").get("data") or [])
        except (ValueError, AttributeError):
            stored = 0
        stored_trials += stored
        lost += max(0, count - stored)
        text = (row.datastring or "").encode()
        if row.trial_count != stored or hashlib.sha256(text).hexdigest() != digest:
            mismatched += 1
        if uid in completed and row.status != COMPLETED:
            wrong_status += 1
    conds = Counter((r.cond, r.counterbalance) for r in rows)
    return {"rows": len(rows), "missing_rows": missing,
            "acknowledged_trials": sum(count for count, _ in acked.values()),
            "stored_trials": stored_trials, "lost_trials": lost, "mismatched": mismatched,
            "not_completed": wrong_status, "conditions": {f"{c}/{k}": n for (c, k), n in sorted(conds.items())}}


def already_used(database_url: str, table: str, run_id: str) -> int:
    from sqlalchemy import func, select

    from turnout.config import TableNames
    from turnout.db.engine import Database

    db = Database(database_url, TableNames(participants=table))
    P = db.models.Participant
    try:
        with db.begin() as session:
            return session.scalar(select(func.count()).select_from(P).where(P.workerid.like(f"{run_id}W%"))) or 0
    except Exception:  # no table yet: the server will create it
        return 0
    finally:
        db.dispose()


def count_rows(database_url: str, table: str) -> int:
    from sqlalchemy import func, select

    from turnout.config import TableNames
    from turnout.db.engine import Database

    db = Database(database_url, TableNames(participants=table))
    try:
        with db.begin() as session:
            return session.scalar(select(func.count()).select_from(db.models.Participant)) or 0
    finally:
        db.dispose()


def print_run(result: dict[str, Any], check: dict[str, Any] | None) -> None:
    print(f"\nrun {result['run_id']}: {result['completed']}/{result['participants']} participants completed "
          f"in {result['wall_s']:.1f} s = {result['completed_per_s']:.2f} participants/s "
          f"({result['requests_per_s']:.0f} requests/s; client used {result['client_cpu_s']:.1f} s CPU)")
    if "server_cpu_ms_per_request" in result:
        print(f"  server CPU (user + system, all its processes): {result['server_cpu_ms_per_request']:.2f} ms "
              f"per request; load average {os.getloadavg()[0]:.1f}")
    print(f"  errors: {result['errors']} (failed participants {result['failed_participants']}; "
          f"keep-alive reconnects {result['reconnects']})")
    for sample in result["error_samples"]:
        print(f"    e.g. {sample}")
    print(f"  {'route':<10}{'count':>8}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for route, r in result["routes"].items():
        print(f"  {route:<10}{r['count']:>8}{r['errors']:>8}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
              f"{r['p99_ms']:>9.1f}{r['mean_ms']:>9.1f}")
    if check is not None:
        print(f"  verified in the database: rows {check['rows']} (missing {check['missing_rows']}), "
              f"trials stored {check['stored_trials']} of {check['acknowledged_trials']} acknowledged, "
              f"lost trials {check['lost_trials']}, mismatched participants {check['mismatched']}, "
              f"not completed {check['not_completed']}")
        print(f"  conditions (cond/counterbalance: participants): {check['conditions']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running server on loopback, e.g. http://127.0.0.1:22362")
    target.add_argument("--project", type=Path, help="start `turnout serve` for this project folder")
    parser.add_argument("--database-url", help="the server's database (required with --url to verify)")
    parser.add_argument("--table", default=None, help="participant table (default: from the project, else assignments)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes when starting the server (default: the project's `threads`)")
    parser.add_argument("-n", "--participants", type=int, default=1000)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("-k", "--trials", type=int, default=50, help="/sync PUTs per participant (1..K trials)")
    parser.add_argument("--trial-bytes", type=int, default=300, help="size of one trial in the JSON")
    parser.add_argument("--mode", default="sandbox")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--run-id", help="prefix of this run's worker ids (default: b<seed>)")
    parser.add_argument("--runs", type=int, default=1, help="repeat the load this many times on one server")
    parser.add_argument("--no-verify", action="store_true", help="skip reading the database afterwards")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--kill-workers-after", type=float, metavar="S",
                        help="with --project: kill -9 the server's worker processes S seconds into each run "
                             "(gunicorn starts new ones); requests in flight then fail, but no acknowledged "
                             "save may be missing from the database")
    args = parser.parse_args(argv)
    if args.participants < 1 or args.concurrency < 1 or args.trials < 1 or args.runs < 1:
        parser.error("-n, -c, -k and --runs must be at least 1")

    database_url, table = args.database_url, args.table
    if args.project:
        settings = load_project_settings(args.project, args.database_url)
        database_url, table = settings.database_url, table or settings.tables.participants
    table = table or "assignments"
    verify_db = database_url if not args.no_verify else None
    if verify_db is None and not args.no_verify:
        parser.error("--database-url is needed to verify the stored data (or pass --no-verify)")

    base_id = args.run_id or f"b{args.seed}"
    run_ids = [base_id if args.runs == 1 else f"{base_id}r{j + 1}" for j in range(args.runs)]
    if verify_db:
        for run_id in run_ids:
            if already_used(verify_db, table, run_id):
                raise SystemExit(f"the database already holds participants of run {run_id!r}; "
                                 "pass another --run-id or --seed, or use a fresh database")

    server = ManagedServer.start(args.project, database_url, args.workers) if args.project else None
    url = server.url if server else args.url
    results = []
    try:
        print(f"turnout bench: {args.participants} participants x {args.trials} trials "
              f"({args.trial_bytes} B each) at concurrency {args.concurrency}, against {url}"
              + (f" ({f'{args.workers} worker processes' if args.workers else 'processes per config threads'}"
                 f", log {server.log})" if server else ""))
        if verify_db:
            print(f"  existing participant rows before the run: {count_rows(verify_db, table)}")
        for run_id in run_ids:
            plan = Plan(run_id=run_id, seed=args.seed, participants=args.participants, trials=args.trials,
                        trial_bytes=args.trial_bytes, mode=args.mode)
            killer = None
            if server and args.kill_workers_after:
                killer = threading.Timer(args.kill_workers_after, kill_workers, (server.process.pid,))
                killer.start()
            cpu0 = cpu_seconds(process_tree(server.process.pid)) if server else 0.0
            result = run_load(url, plan, args.concurrency)
            if server:  # CPU time of the whole server (master and workers), per request
                cpu = cpu_seconds(process_tree(server.process.pid)) - cpu0
                result["server_cpu_ms_per_request"] = 1000 * cpu / max(1, result["requests"])
            if killer:
                killer.cancel()
            acked, completed = result.pop("acked"), result.pop("completed_uids")
            check = verify(verify_db, table, plan, acked, completed) if verify_db else None
            result["verify"] = check
            print_run(result, check)
            results.append(result)
    finally:
        if server:
            server.stop()

    if len(results) > 1:
        print(f"\nmedian over {len(results)} runs: "
              f"{statistics.median(r['completed_per_s'] for r in results):.2f} participants/s")
        for route in ROUTES:
            print(f"  {route:<10} p50 {statistics.median(r['routes'][route]['p50_ms'] for r in results):7.1f} ms"
                  f"  p95 {statistics.median(r['routes'][route]['p95_ms'] for r in results):7.1f} ms"
                  f"  p99 {statistics.median(r['routes'][route]['p99_ms'] for r in results):7.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if args.kill_workers_after:
        # Failed requests are expected then, and a save committed just before the kill but never
        # acknowledged leaves more trials stored than acknowledged ("mismatched"); fewer is lost data.
        return 1 if any(r["verify"] and r["verify"]["lost_trials"] for r in results) else 0
    bad = any(r["errors"] or (r["verify"] and (r["verify"]["lost_trials"] or r["verify"]["mismatched"]))
              for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
