"""Marketplace benchmark: post N assignments in HITs of at most K, have N simulated workers
accept and submit them, then list and approve every submission, all through an unmodified
boto3 MTurk client against turnout's local marketplace.

Phases, each timed with ``time.perf_counter``:

* ``post``: CreateHITType once, then CreateHITWithHITType per HIT (MaxAssignments <= K,
  ExternalQuestion, a deterministic UniqueRequestToken as turnout's own create_hit sends);
* ``work`` (setup, not requester traffic): N workers are registered, each accepts one
  assignment and submits it (in a shuffled order), through the control API (``--work-via
  control``) or the worker side's Python API on the same store (``--work-via python``);
* ``list``: ListReviewableHITs (HITTypeId filter) and ListAssignmentsForHIT (Submitted)
  for every HIT, following NextToken, MaxResults ``--page-size``;
* ``approve``: ApproveAssignment for every listed submission.

Then ``verify`` (not part of the timings): GetAccountBalance must have dropped by exactly the
reward plus MTurk's commission for every assignment (20%, +20% on HITs of 10 or more, at
least $0.01 each), ListAssignmentsForHIT (Approved) must return every assignment, the
control API's counts must show N Approved and nothing else, and no call may have failed or
been retried.

Every boto3 call is counted by operation through botocore's event system (provide-client-
params / before-call / before-send / after-call / after-call-error on ``mturk.*``), not by
wrapping the client; per-call latency is from provide-client-params to after-call (what the
caller waits for, client-side serialisation and parsing included).

    # default: the marketplace as a subprocess (python -m turnout.marketplace.local), 3 runs
    .venv/bin/python bench/marketplace.py --repeat 3

    # in-process ThreadedMarketplace, HITs of 10 (shows the +20% fee), JSON on stdout
    .venv/bin/python bench/marketplace.py --mode thread --hit-size 10 --json

Loopback only (the marketplace binds 127.0.0.1 on a free port); every run uses a fresh
temporary store that is deleted afterwards (``--keep`` keeps it). Not a test: it measures
and prints, and exits 1 if the verification fails.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import random
import re
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

HOST = "127.0.0.1"
PHASES = ("post", "work", "list", "approve")
MAX_ASSIGNMENTS_TOTAL = 100_000
MAX_HIT_SIZE = 100
CENT = Decimal("0.01")
EXTERNAL_URL = "https://127.0.0.1:22362/ad"  # never fetched; only stored in the HIT
QUESTION = ('<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
            '2006-07-14/ExternalQuestion.xsd"><ExternalURL>{url}</ExternalURL><FrameHeight>600</FrameHeight>'
            '</ExternalQuestion>')
WORDS = ("fun", "easy", "long", "clear", "confusing", "fine", "boring", "short")


class BenchError(Exception):
    """The run could not complete or its result is wrong."""


# --------------------------------------------------------------------------- call accounting


@dataclass
class CallRecorder:
    """Counts and times every boto3 call through the client's event hooks.

    ``phase`` is set by the driver; every call is booked to the phase it started in, and
    latencies are kept for calls of the timed phases (``PHASES``).
    """

    phase: str = "setup"
    calls: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    attempts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    error_samples: list[str] = field(default_factory=list)

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("provide-client-params.mturk.*", self._start)
        events.register("before-call.mturk.*", self._before_call)
        events.register("before-send.mturk.*", self._before_send)
        events.register("after-call.mturk.*", self._after_call)
        events.register("after-call-error.mturk.*", self._after_error)

    @staticmethod
    def _op(event_name: str) -> str:
        return event_name.rsplit(".", 1)[-1]

    def _start(self, context: dict[str, Any], **_: Any) -> None:
        context["bench_t0"] = time.perf_counter()
        context["bench_phase"] = self.phase

    def _before_call(self, event_name: str, context: dict[str, Any], **_: Any) -> None:
        self.calls[context.get("bench_phase", self.phase)][self._op(event_name)] += 1

    def _before_send(self, event_name: str, **_: Any) -> None:
        # Once per HTTP attempt: more attempts than calls means botocore retried.
        self.attempts[self.phase][self._op(event_name)] += 1

    def _after_call(self, event_name: str, http_response: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
        op = self._op(event_name)
        phase = context.get("bench_phase", self.phase)
        if phase in PHASES:  # latency of the timed phases only (verification calls are not in it)
            self.latencies[op].append(time.perf_counter() - context.get("bench_t0", time.perf_counter()))
        if http_response.status_code >= 300:
            self.errors[phase][op] += 1
            if len(self.error_samples) < 10:
                error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
                self.error_samples.append(f"{op}: HTTP {http_response.status_code} {error.get('Code')}: {error.get('Message')}")

    def _after_error(self, event_name: str, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        op = self._op(event_name)
        self.errors[context.get("bench_phase", self.phase)][op] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{op}: {type(exception).__name__}: {exception}")

    def total(self, table: dict[str, Counter[str]], phases: tuple[str, ...] | None = None) -> int:
        return sum(sum(c.values()) for p, c in table.items() if phases is None or p in phases)


# --------------------------------------------------------------------------- the marketplace


class Marketplace:
    """A local marketplace on a fresh store: a subprocess or an in-process thread."""

    endpoint_url: str
    control_url: str
    store: Path

    def stop(self) -> None:
        raise NotImplementedError

    def cpu_s(self) -> float | None:
        """CPU seconds the server process has used so far (None when it is this process)."""
        return None

    def state(self) -> Any:
        """A ``MarketplaceState`` over the store (for ``--work-via python``)."""
        raise NotImplementedError


class SubprocessMarketplace(Marketplace):
    """``python -m turnout.marketplace.local --port 0 --store X``; the port comes from its banner."""

    BANNER = re.compile(r"on http://127\.0\.0\.1:(\d+)/")

    def __init__(self, workdir: Path, *, port: int = 0, timeout_s: float = 60) -> None:
        self.store = workdir / "mturk.db"
        self.log = workdir / "server.log"
        self._state: Any = None
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "turnout.marketplace.local", "--host", HOST, "--port", str(port),
                 "--store", str(self.store)],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        deadline = time.monotonic() + timeout_s
        while True:
            match = self.BANNER.search(self.log.read_text(errors="replace"))
            if match:
                break
            if self.process.poll() is not None:
                raise BenchError(f"the marketplace exited with {self.process.returncode}:\n{self.log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"the marketplace did not start within {timeout_s:.0f}s; log: {self.log}")
            time.sleep(0.05)
        base = f"http://{HOST}:{match.group(1)}"
        self.endpoint_url = base + "/"
        self.control_url = base + "/_control"

    def state(self) -> Any:
        if self._state is None:
            from turnout.marketplace.local import MarketplaceState

            self._state = MarketplaceState(self.store)  # shares the SQLite file (WAL) with the server
        return self._state

    def cpu_s(self) -> float | None:
        try:  # Linux: utime + stime, fields 14 and 15 of /proc/<pid>/stat
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def server_errors(self) -> list[str]:
        """Tracebacks and 5xx lines in the server's log."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if "Traceback" in line or re.search(r'" 5\d\d ', line)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class ThreadMarketplace(Marketplace):
    """``ThreadedMarketplace`` in this process (the werkzeug server shares this process's GIL)."""

    def __init__(self, workdir: Path, *, port: int = 0) -> None:
        from turnout.marketplace.local import ThreadedMarketplace

        self.store = workdir / "mturk.db"
        self.market = ThreadedMarketplace(self.store, host=HOST, port=port).start()
        self.endpoint_url = self.market.endpoint_url
        self.control_url = self.market.control_url

    def state(self) -> Any:
        return self.market.state

    def server_errors(self) -> list[str]:
        return []

    def stop(self) -> None:
        self.market.stop()


class ControlClient:
    """The control API over one keep-alive HTTP/1.1 connection."""

    def __init__(self, control_url: str) -> None:
        rest = control_url.removeprefix("http://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        if host not in (HOST, "localhost"):
            raise BenchError(f"refusing a non-loopback control URL: {control_url}")
        self.prefix = "/" + path
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        self.requests = 0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        # The control API takes writes only as JSON (a cross-origin form cannot send that).
        headers = {"Content-Type": "application/json"} if method == "POST" else {}
        for attempt in (1, 2):
            try:
                self.conn.request(method, self.prefix + path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()  # an idle keep-alive connection closed by the server: resend once
                if attempt == 2:
                    raise
        self.requests += 1
        if response.status != 200:
            raise BenchError(f"control {method} {path}: HTTP {response.status}: {payload[:300]!r}")
        return json.loads(payload)

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------- simulated workers


class Workers:
    """Register workers, accept and submit, either over HTTP (control API) or in Python."""

    def __init__(self, via: str, market: Marketplace) -> None:
        self.via = via
        self.control = ControlClient(market.control_url) if via == "control" else None
        self.side = market.state().workers if via == "python" else None

    def set_balance(self, balance: Decimal) -> None:
        if self.control:
            self.control.call("POST", "/reset", {"balance": str(balance)})
        else:
            self.side.state.reset(balance=balance)

    def register(self, worker_ids: list[str]) -> None:
        if self.control:
            for start in range(0, len(worker_ids), 500):
                chunk = worker_ids[start:start + 500]
                self.control.call("POST", "/workers", {"workers": [{"worker_id": w} for w in chunk]})
        else:
            for worker_id in worker_ids:
                self.side.register(worker_id)

    def accept(self, worker_id: str, hit_id: str) -> str:
        if self.control:
            return str(self.control.call("POST", f"/workers/{worker_id}/accept", {"hit_id": hit_id})["assignment"]["assignment_id"])
        return str(self.side.accept(worker_id, hit_id).assignment_id)

    def submit(self, assignment_id: str, answers: dict[str, str]) -> None:
        if self.control:
            self.control.call("POST", f"/assignments/{assignment_id}/submit", {"answers": answers})
        else:
            self.side.submit(assignment_id, answers)

    def summary(self) -> dict[str, Any]:
        if self.control:
            return dict(self.control.call("GET", "/state"))
        return dict(self.side.state.summary())

    def close(self) -> None:
        if self.control:
            self.control.close()


# --------------------------------------------------------------------------- one run


def hit_sizes(assignments: int, hit_size: int) -> list[int]:
    """111 x 9 + 1 for 1,000 in HITs of 9."""
    full, rest = divmod(assignments, hit_size)
    return [hit_size] * full + ([rest] if rest else [])


def fee_for(reward: Decimal, max_assignments: int) -> Decimal:
    """MTurk's commission on one approved assignment, computed here independently of the
    marketplace's money module: 20%, +20% for HITs of 10 or more, at least $0.01."""
    rate = Decimal("0.20") + (Decimal("0.20") if max_assignments >= 10 else 0)
    return max(CENT, (reward * rate).quantize(CENT, rounding=ROUND_HALF_UP))


def expected_cost(reward: Decimal, sizes: list[int]) -> Decimal:
    return sum((n * (reward + fee_for(reward, n)) for n in sizes), Decimal("0.00"))


def worker_ids_for(rng: random.Random, count: int) -> list[str]:
    alphabet = string.ascii_uppercase + string.digits
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        wid = "A" + "".join(rng.choice(alphabet) for _ in range(13))
        if wid not in seen:
            seen.add(wid)
            out.append(wid)
    return out


@contextmanager
def phase(recorder: CallRecorder, timings: dict[str, float], cpu: dict[str, dict[str, float | None]], name: str,
          market: Marketplace) -> Iterator[None]:
    """Time a phase (wall clock), and the CPU this process and the server process used in it."""
    recorder.phase = name
    server0 = market.cpu_s()
    client0 = time.process_time()
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - started
        server1 = market.cpu_s()
        cpu[name] = {"client": time.process_time() - client0,
                     "server": server1 - server0 if server0 is not None and server1 is not None else None}
        recorder.phase = "between"


def paginate(call: Callable[..., dict[str, Any]], key: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every item of a listing, following NextToken; also how many pages it took."""
    items: list[dict[str, Any]] = []
    pages = 0
    token: str | None = None
    while True:
        answer = call(**params, **({"NextToken": token} if token else {}))
        pages += 1
        items.extend(answer.get(key, []))
        token = answer.get("NextToken")
        if not token:
            return items, pages
        if pages > 100_000:  # a token that never ends would otherwise loop forever
            raise BenchError(f"{key}: more than 100,000 pages")


def run_once(args: argparse.Namespace, run: int) -> dict[str, Any]:
    from turnout.marketplace import make_client

    reward = Decimal(args.reward).quantize(CENT)
    sizes = hit_sizes(args.assignments, args.hit_size)
    rng = random.Random(f"{args.seed}|{run}")
    workdir = Path(tempfile.mkdtemp(prefix="turnout-bench-marketplace-"))
    recorder = CallRecorder()
    timings: dict[str, float] = {}
    cpu: dict[str, dict[str, float | None]] = {}
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    work_detail: dict[str, float] = {}
    problems: list[str] = []
    started = time.perf_counter()
    market: Marketplace = (SubprocessMarketplace(workdir, port=args.port) if args.mode == "subprocess"
                           else ThreadMarketplace(workdir, port=args.port))
    startup_s = time.perf_counter() - started
    workers = Workers(args.work_via, market)
    try:
        client = make_client("local", endpoint_url=market.endpoint_url, store=market.store)
        recorder.attach(client)
        needed = expected_cost(reward, sizes)
        if needed * Decimal("1.5") > Decimal("10000.00"):  # CreateHIT checks funds for every assignment
            workers.set_balance((needed * 2).quantize(CENT))

        recorder.phase = "verify"
        balance_before = Decimal(client.get_account_balance()["AvailableBalance"])

        # ---- post
        hits: list[tuple[str, int]] = []
        with phase(recorder, timings, cpu, "post", market):
            hit_type_id = client.create_hit_type(
                Title="Stroop task (turnout marketplace benchmark)",
                Description="Name the ink colour of each word; about 5 minutes.",
                Keywords="psychology, stroop, benchmark", Reward=str(reward),
                AssignmentDurationInSeconds=3600, AutoApprovalDelayInSeconds=7 * 86400,
            )["HITTypeId"]
            for i, n in enumerate(sizes):
                token = hashlib.sha256(f"bench|{args.seed}|{run}|{i}".encode()).hexdigest()[:64]
                hit = client.create_hit_with_hit_type(
                    HITTypeId=hit_type_id, MaxAssignments=n, LifetimeInSeconds=86400,
                    Question=QUESTION.format(url=EXTERNAL_URL), RequesterAnnotation=f"bench-{run}-{i}",
                    UniqueRequestToken=token,
                )["HIT"]
                hits.append((hit["HITId"], n))

        # ---- work (setup: the worker side, not requester traffic)
        wids = worker_ids_for(rng, args.assignments)
        slots = [hit_id for hit_id, n in hits for _ in range(n)]
        with phase(recorder, timings, cpu, "work", market):
            t0 = time.perf_counter()
            workers.register(wids)
            t1 = time.perf_counter()
            accepted = [workers.accept(wid, hit_id) for wid, hit_id in zip(wids, slots, strict=True)]
            t2 = time.perf_counter()
            order = list(range(len(accepted)))
            rng.shuffle(order)
            for k in order:
                workers.submit(accepted[k], {"condition": str(k % 4), "feedback": rng.choice(WORDS)})
            t3 = time.perf_counter()
        work_detail = {"register": t1 - t0, "accept": t2 - t1, "submit": t3 - t2}

        # ---- list
        to_approve: list[str] = []
        pages = {"ListReviewableHITs": 0, "ListAssignmentsForHIT": 0}
        with phase(recorder, timings, cpu, "list", market):
            reviewable, pages["ListReviewableHITs"] = paginate(
                client.list_reviewable_hits, "HITs", HITTypeId=hit_type_id, Status="Reviewable", MaxResults=args.page_size)
            for hit in reviewable:
                found, n_pages = paginate(client.list_assignments_for_hit, "Assignments", HITId=hit["HITId"],
                                          AssignmentStatuses=["Submitted"], MaxResults=args.page_size)
                pages["ListAssignmentsForHIT"] += n_pages
                to_approve.extend(a["AssignmentId"] for a in found)
        if len(reviewable) != len(hits):
            problems.append(f"ListReviewableHITs returned {len(reviewable)} HITs, posted {len(hits)}")
        if sorted(to_approve) != sorted(accepted):
            problems.append(f"listed {len(to_approve)} submitted assignments ({len(set(to_approve))} distinct), "
                            f"workers submitted {len(accepted)}")

        # ---- approve
        with phase(recorder, timings, cpu, "approve", market):
            for assignment_id in to_approve:
                client.approve_assignment(AssignmentId=assignment_id)

        # ---- verify (not timed as a phase; its calls are booked to "verify")
        recorder.phase = "verify"
        balance_after = Decimal(client.get_account_balance()["AvailableBalance"])
        approved: list[str] = []
        for hit_id, _ in hits:
            found, _ = paginate(client.list_assignments_for_hit, "Assignments", HITId=hit_id,
                                AssignmentStatuses=["Approved"], MaxResults=100)
            approved.extend(a["AssignmentId"] for a in found)
        summary = workers.summary()
        spent = balance_before - balance_after
        want = expected_cost(reward, sizes)
        if spent != want:
            problems.append(f"balance dropped by {spent}, expected {want}")
        if sorted(approved) != sorted(accepted):
            problems.append(f"{len(approved)} assignments Approved through ListAssignmentsForHIT, expected {len(accepted)}")
        if summary.get("assignments") != {"Approved": args.assignments}:
            problems.append(f"control API counts {summary.get('assignments')}, expected {{'Approved': {args.assignments}}}")
        errors = recorder.total(recorder.errors)
        retries = recorder.total(recorder.attempts) - recorder.total(recorder.calls)
        if errors:
            problems.append(f"{errors} API calls failed: {recorder.error_samples}")
        if retries:
            problems.append(f"botocore retried {retries} times")
        server_errors = market.server_errors() if isinstance(market, SubprocessMarketplace) else []
        if server_errors:
            problems.append(f"server log has {len(server_errors)} error lines, e.g. {server_errors[0]}")
    finally:
        workers.close()
        market.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    main_phases = ("post", "list", "approve")
    return {
        "run": run,
        "startup_s": startup_s,
        "phases_s": timings,
        "cpu_s": cpu,
        "load_average_1m": load_before,
        "work_detail_s": work_detail,
        "work_requests": workers.control.requests if workers.control else None,
        "calls": {p: dict(c) for p, c in recorder.calls.items()},
        "attempts": {p: dict(c) for p, c in recorder.attempts.items()},
        "errors": {p: dict(c) for p, c in recorder.errors.items() if c},
        "requester_calls": recorder.total(recorder.calls, main_phases),
        "latency_ms": {op: percentiles(v) for op, v in sorted(recorder.latencies.items())},
        "pages": pages,
        "hits": len(hits),
        "balance_before": str(balance_before),
        "balance_after": str(balance_after),
        "spent": str(spent),
        "expected_spent": str(want),
        "approved": len(approved),
        "store": str(workdir) if args.keep else None,
        "problems": problems,
    }


def percentiles(values: list[float]) -> dict[str, float]:
    """Nearest-rank p50/p95/p99 and max, in milliseconds."""
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * p // 100) - 1))] * 1000

    return {"n": len(ordered), "p50": rank(50), "p95": rank(95), "p99": rank(99), "max": ordered[-1] * 1000}


# --------------------------------------------------------------------------- reporting


def summarise(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    phases = {p: {"median_s": med([r["phases_s"][p] for r in runs]),
                  "min_s": min(r["phases_s"][p] for r in runs),
                  "max_s": max(r["phases_s"][p] for r in runs)} for p in PHASES}
    first = runs[0]
    for p in PHASES:
        n = sum(first["calls"].get(p, {}).values())
        phases[p]["api_calls"] = n
        phases[p]["calls_per_s"] = n / phases[p]["median_s"] if n and phases[p]["median_s"] else None
        for side in ("client", "server"):
            values = [r["cpu_s"][p][side] for r in runs]
            phases[p][f"{side}_cpu_s"] = med(values) if None not in values else None
    if first["work_requests"] is not None:
        phases["work"]["control_requests"] = first["work_requests"]
        phases["work"]["requests_per_s"] = first["work_requests"] / phases["work"]["median_s"]
    requester_s = med([sum(r["phases_s"][p] for p in ("post", "list", "approve")) for r in runs])
    ops = sorted({op for r in runs for op in r["latency_ms"]})
    latency = {op: {k: med([r["latency_ms"][op][k] for r in runs if op in r["latency_ms"]]) for k in ("p50", "p95", "p99", "max")}
               for op in ops}
    by_op: Counter[str] = Counter()
    for p in ("post", "list", "approve"):
        by_op.update(first["calls"].get(p, {}))
    verify_calls: Counter[str] = Counter(first["calls"].get("verify", {}))
    same_counts = all(r["calls"] == first["calls"] for r in runs)
    problems = [f"run {r['run']}: {p}" for r in runs for p in r["problems"]]
    if not same_counts:
        problems.append("API-call counts differ between runs")
    return {
        "command": " ".join([".venv/bin/python", "bench/marketplace.py", *sys.argv[1:]]),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {"mode": args.mode, "work_via": args.work_via, "assignments": args.assignments, "hit_size": args.hit_size,
                     "hits": first["hits"], "reward": args.reward, "page_size": args.page_size, "seed": args.seed,
                     "repeat": args.repeat},
        "phases": phases,
        "requester_median_s": requester_s,
        "requester_calls": first["requester_calls"],
        "requester_calls_per_s": first["requester_calls"] / requester_s if requester_s else None,
        "startup_median_s": med([r["startup_s"] for r in runs]),
        "load_average_1m": [r["load_average_1m"] for r in runs],
        "work_detail_median_s": {k: med([r["work_detail_s"][k] for r in runs]) for k in first["work_detail_s"]},
        "calls_by_operation": dict(sorted(by_op.items())),
        "verify_calls_by_operation": dict(sorted(verify_calls.items())),
        "pages": first["pages"],
        "latency_ms": latency,
        "verification": {"spent": [r["spent"] for r in runs], "expected": first["expected_spent"],
                         "approved": [r["approved"] for r in runs],
                         "errors": sum(sum(c.values()) for r in runs for c in r["errors"].values()),
                         "ok": not problems},
        "problems": problems,
        "runs": runs,
    }


def print_report(s: dict[str, Any]) -> None:
    st = s["settings"]
    print(f"turnout local marketplace benchmark: {st['assignments']} assignments in {st['hits']} HITs of <= {st['hit_size']}, "
          f"reward ${st['reward']}, mode={st['mode']}, work via {st['work_via']}, page size {st['page_size']}, "
          f"seed {st['seed']}, median of {st['repeat']} run(s)")
    print(f"machine: nproc={s['machine']['nproc']}, Python {s['machine']['python']}, {s['machine']['platform']}")
    loads = ", ".join(f"{x:.1f}" for x in s["load_average_1m"] if x is not None)
    print(f"marketplace startup: {s['startup_median_s']:.2f} s; 1-minute load average before each run: {loads}\n")
    print(f"{'phase':<10}{'median s':>10}{'min s':>9}{'max s':>9}{'calls':>8}{'calls/s':>10}"
          f"{'client CPU ms/call':>20}{'server CPU ms/call':>20}")
    for name, p in s["phases"].items():
        calls = p["api_calls"] or p.get("control_requests") or 0
        rate = p["calls_per_s"] or p.get("requests_per_s")
        label = name + (" *" if name == "work" else "")
        per_call = ["-" if p[f"{side}_cpu_s"] is None or not calls else f"{p[f'{side}_cpu_s'] / calls * 1000:.2f}"
                    for side in ("client", "server")]
        print(f"{label:<10}{p['median_s']:>10.3f}{p['min_s']:>9.3f}{p['max_s']:>9.3f}{calls or '-':>8}"
              f"{f'{rate:.0f}' if rate else '-':>10}{per_call[0]:>20}{per_call[1]:>20}")
    print(f"{'requester':<10}{s['requester_median_s']:>10.3f}{'':>18}{s['requester_calls']:>8}{s['requester_calls_per_s']:>10.0f}")
    work = s["work_detail_median_s"]
    print(f"* work is setup through the {st['work_via']} worker side, not boto3: register {work['register']:.3f} s, "
          f"accept {work['accept']:.3f} s, submit {work['submit']:.3f} s\n")
    print(f"{'operation':<30}{'calls':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for op, n in s["calls_by_operation"].items():
        lat = s["latency_ms"][op]
        print(f"{op:<30}{n:>7}{lat['p50']:>9.2f}{lat['p95']:>9.2f}{lat['p99']:>9.2f}{lat['max']:>9.2f}")
    print(f"{'total':<30}{s['requester_calls']:>7}")
    print(f"pages: {s['pages']}; verification calls (not timed): {s['verify_calls_by_operation']}\n")
    v = s["verification"]
    print(f"verify: balance dropped by {', '.join(sorted(set(v['spent'])))} (expected {v['expected']}), "
          f"Approved {', '.join(str(a) for a in sorted(set(v['approved'])))}/{st['assignments']}, "
          f"{v['errors']} errors: {'OK' if v['ok'] else 'FAILED'}")
    for problem in s["problems"]:
        print(f"  PROBLEM: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignments", type=int, default=1000, help="assignments to post, do and approve (default 1000)")
    parser.add_argument("--hit-size", type=int, default=9,
                        help="MaxAssignments per HIT (default 9; 10 or more costs MTurk's extra 20%%)")
    parser.add_argument("--reward", default="0.50", help="reward per assignment in dollars (default 0.50)")
    parser.add_argument("--seed", type=int, default=1, help="worker IDs, answers and submission order")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on a fresh store; the median is reported")
    parser.add_argument("--mode", choices=("subprocess", "thread"), default="subprocess",
                        help="python -m turnout.marketplace.local in a subprocess (default) or a ThreadedMarketplace here")
    parser.add_argument("--work-via", choices=("control", "python"), default="control",
                        help="the simulated workers use the control API over HTTP (default) or the Python worker side")
    parser.add_argument("--page-size", type=int, default=100, help="MaxResults for the listings (1..100, default 100)")
    parser.add_argument("--port", type=int, default=0, help="loopback port for the marketplace (default: any free one)")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="write the results as JSON to PATH, or to stdout instead of the table")
    parser.add_argument("--keep", action="store_true", help="keep each run's store and server log")
    args = parser.parse_args(argv)
    if not 1 <= args.assignments <= MAX_ASSIGNMENTS_TOTAL:
        parser.error(f"--assignments must be between 1 and {MAX_ASSIGNMENTS_TOTAL}")
    if not 1 <= args.hit_size <= MAX_HIT_SIZE:
        parser.error(f"--hit-size must be between 1 and {MAX_HIT_SIZE}")
    if not 1 <= args.repeat <= 50:
        parser.error("--repeat must be between 1 and 50")
    if not 1 <= args.page_size <= 100:
        parser.error("--page-size must be between 1 and 100 (MTurk's MaxResults)")
    if not re.fullmatch(r"[0-9]+(\.[0-9]{1,2})?", args.reward) or Decimal(args.reward) < CENT:
        parser.error("--reward must be a dollar amount of at least 0.01, e.g. 0.50")

    runs: list[dict[str, Any]] = []
    for run in range(1, args.repeat + 1):
        try:
            runs.append(run_once(args, run))
        except BenchError as exc:
            print(f"run {run} failed: {exc}", file=sys.stderr)
            return 1
        except (ClientError, BotoCoreError) as exc:
            from turnout.marketplace import describe_client_error

            print(f"run {run} failed: {describe_client_error(exc)}", file=sys.stderr)
            return 1
        if args.json != "-":
            r = runs[-1]
            print(f"run {run}: " + ", ".join(f"{p} {r['phases_s'][p]:.3f} s" for p in PHASES)
                  + ("" if not r["problems"] else f"  PROBLEMS: {r['problems']}"), file=sys.stderr)
    summary = summarise(args, runs)
    if args.json == "-":
        print(json.dumps(summary, indent=2))
    else:
        print_report(summary)
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0 if summary["verification"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
