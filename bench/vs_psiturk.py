"""psiTurk 3.3.1 and turnout side by side: the same project, the same load, one run.

Serves psiTurk's own example project (``psiturk-setup-example``) on psiTurk and then on
turnout (or the other way round with ``--turnout-first``), each on a fresh SQLite
database with the project's own ``config.txt`` (``threads = auto``), and drives both with
the load of bench/participants.py: N participants × K trials at concurrency C, each doing
GET /exp, GET /sync, K growing PUT /sync saves, POST /inexp, GET /complete. Afterwards
every participant's stored data is read from the database and compared with the last
save the server acknowledged (as JSON: psiTurk re-serialises what it stores). It also
samples each server's process tree: CPU time used (user + system, from /proc) and total
PSS (peak of samples taken every 0.5 s during the load).

    # once: make psiTurk's virtual environment (fetches psiturk 3.3.1 and its pins)
    .venv/bin/python bench/vs_psiturk.py --install
    # then, with nothing fetched:
    .venv/bin/python bench/vs_psiturk.py -n 200 -c 20 -k 50 --runs 3

Loopback only; not a test (it prints, and exits 1 on errors or lost data).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from participants import Plan, run_load
from workload import ManagedServer, cpu_seconds, free_port, process_tree, pss_mib

PSITURK_PINS = ["psiturk==3.3.1"]
# psiTurk 3.3.1's own pins no longer install on Python 3.11; these do, and it runs with them.
PSITURK_PY311_PINS = ["cryptography==38.0.4", "boto3==1.26.165", "botocore==1.29.165"]
DEFAULT_VENV = Path(tempfile.gettempdir()) / "turnout-bench" / "psiturk-3.3.1-venv"


def install_psiturk(venv: Path) -> None:
    """The only step that fetches anything, and only when asked (``--install``)."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(pip + PSITURK_PINS, check=True)
    subprocess.run(pip + PSITURK_PY311_PINS, check=True)


def example_project(venv: Path, into: Path) -> Path:
    """A fresh copy of psiTurk's example project (from the installed psiturk package)."""
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(venv / "bin" / "psiturk-setup-example")], cwd=into, check=True,
                   stdout=subprocess.DEVNULL)
    return into / "psiturk-example"


def set_server_options(project: Path, port: int) -> None:
    """Listen on loopback at ``port``; log to a file. Everything else stays as shipped."""
    config = project / "config.txt"
    text = config.read_text(encoding="utf-8")
    for old, new in ((";host = localhost", "host = 127.0.0.1"), (";port = 22362", f"port = {port}"),
                     (";logfile = server.log", "logfile = server.log")):
        if old not in text:
            raise SystemExit(f"{config}: expected the line {old!r} of psiTurk's example config")
        text = text.replace(old, new)
    config.write_text(text, encoding="utf-8")


class PsiturkServer:
    def __init__(self, venv: Path, project: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = project / "psiturk-server.out"
        env = dict(os.environ, PSITURK_GLOBAL_CONFIG_LOCATION=str(project), PYTHONUNBUFFERED="1")
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([str(venv / "bin" / "psiturk-server")], cwd=project, env=env,
                                            stdout=out, stderr=subprocess.STDOUT)
        wait_until_up(self.url, self.process, self.log)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "/", timeout=5):
                return
        except urllib.error.HTTPError:
            return  # answering
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise SystemExit(f"the server at {url} did not answer within {timeout_s:.0f} s; log: {log}")


# --- the server's process tree: CPU and memory ----------------------------------------


class Sampler(threading.Thread):
    """Peak PSS of a process tree while the load runs."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.peak, self.stopped = root, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            self.peak = max(self.peak, pss_mib(process_tree(self.root)))


# --- checking the stored data ----------------------------------------------------------


def verify(database_url: str, run_id: str, acked: dict[str, tuple[int, bytes]],
           completed: set[str]) -> dict[str, Any]:
    """Both servers' tables have psiTurk's columns; compare stored data as JSON."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT uniqueid, status, cond, datastring FROM assignments "
                                     "WHERE workerid LIKE :p"), {"p": f"{run_id}W%"}).all()
    finally:
        engine.dispose()
    by_uid = {r.uniqueid: r for r in rows}
    lost = mismatched = not_completed = 0
    for uid, (count, body) in acked.items():
        row = by_uid.get(uid)
        stored = json.loads(row.datastring) if row is not None and row.datastring else {}
        lost += max(0, count - len(stored.get("data") or []))
        if stored != json.loads(body):
            mismatched += 1
        if uid in completed and (row is None or row.status != 3):
            not_completed += 1
    return {"rows": len(rows), "lost_trials": lost, "mismatched": mismatched, "not_completed": not_completed,
            "conditions": dict(Counter(str(r.cond) for r in rows))}


def one_side(name: str, start: Any, database_url: str, plan: Plan, concurrency: int) -> dict[str, Any]:
    server = start()
    try:
        root = server.process.pid
        sampler = Sampler(root)
        sampler.start()
        cpu0 = cpu_seconds(process_tree(root))
        result = run_load(server.url, plan, concurrency)
        cpu = cpu_seconds(process_tree(root)) - cpu0
        sampler.stopped.set()
        sampler.join()
        processes = len(process_tree(root))
    finally:
        server.stop()
    acked, completed = result.pop("acked"), result.pop("completed_uids")
    result.update(name=name, server_cpu_s=cpu, peak_pss_mib=sampler.peak, server_processes=processes,
                  verify=verify(database_url, plan.run_id, acked, completed))
    saves = result["routes"]["sync_put"]["count"]
    result["server_cpu_ms_per_request"] = 1000 * cpu / max(1, result["requests"])
    result["saves"] = saves
    return result


def show(r: dict[str, Any]) -> None:
    v, put = r["verify"], r["routes"]["sync_put"]
    print(f"  {r['name']:<8} {r['completed_per_s']:6.2f} participants/s  {r['requests_per_s']:5.0f} req/s  "
          f"save p50/p95/p99 {put['p50_ms']:.1f}/{put['p95_ms']:.1f}/{put['p99_ms']:.1f} ms  "
          f"exp p99 {r['routes']['exp']['p99_ms']:.1f} ms  errors {r['errors']}  "
          f"lost trials {v['lost_trials']}  mismatched {v['mismatched']}  not completed {v['not_completed']}  "
          f"server CPU {r['server_cpu_ms_per_request']:.2f} ms/request  peak PSS {r['peak_pss_mib']:.0f} MiB "
          f"({r['server_processes']} processes)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install", action="store_true",
                        help="make psiTurk's virtual environment first (fetches psiturk 3.3.1)")
    parser.add_argument("--psiturk-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("-n", "--participants", type=int, default=200)
    parser.add_argument("-c", "--concurrency", type=int, default=20)
    parser.add_argument("-k", "--trials", type=int, default=50)
    parser.add_argument("--trial-bytes", type=int, default=300)
    parser.add_argument("--runs", type=int, default=1, help="pairs of runs (each on fresh databases)")
    parser.add_argument("--turnout-first", action="store_true", help="serve turnout first in each pair")
    parser.add_argument("--only", choices=("psiturk", "turnout"), help="run one side only")
    parser.add_argument("--baseline-venv", type=Path,
                        help="also serve with the turnout installed in this virtual environment (e.g. an "
                             "earlier version), as a third side 'baseline' in each run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not (1 <= args.participants <= 100_000 and 1 <= args.concurrency <= 500 and 1 <= args.trials <= 1000
            and 1 <= args.runs <= 20):
        parser.error("-n 1..100000, -c 1..500, -k 1..1000, --runs 1..20")
    if args.install:
        install_psiturk(args.psiturk_venv)
    if not (args.psiturk_venv / "bin" / "psiturk-server").exists():
        raise SystemExit(f"no psiTurk in {args.psiturk_venv}: run with --install once (it fetches psiturk "
                         "3.3.1), or pass --psiturk-venv")
    sides = ["turnout", "psiturk"] if args.turnout_first else ["psiturk", "turnout"]
    if args.only:
        sides = [args.only]
    if args.baseline_venv:
        if not (args.baseline_venv / "bin" / "turnout").exists():
            raise SystemExit(f"no turnout in {args.baseline_venv}")
        sides.insert(sides.index("turnout") if "turnout" in sides else len(sides), "baseline")
    pairs = []
    for run in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix="turnout-vs-psiturk-"))
        pair = {}
        try:
            print(f"run {run + 1}/{args.runs}: {args.participants} participants x {args.trials} trials at "
                  f"concurrency {args.concurrency}, psiTurk's example project, SQLite; load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
            for side in sides:
                project = example_project(args.psiturk_venv, work / side)
                port = free_port()
                set_server_options(project, port)
                database_url = f"sqlite:///{project / 'participants.db'}"
                plan = Plan(run_id=f"v{run}{side[0]}", seed=run + 1, participants=args.participants,
                            trials=args.trials, trial_bytes=args.trial_bytes, mode="sandbox",
                            require_token=side != "psiturk")
                if side == "psiturk":
                    def start(project: Path = project, port: int = port) -> Any:
                        return PsiturkServer(args.psiturk_venv, project, port)
                else:
                    binary = args.baseline_venv / "bin" / "turnout" if side == "baseline" else None

                    def start(project: Path = project, database_url: str = database_url,
                              binary: Path | None = binary) -> Any:
                        return ManagedServer.start(project, database_url, None, binary=binary)
                pair[side] = one_side(side, start, database_url, plan, args.concurrency)
                show(pair[side])
            if "baseline" in pair and "turnout" in pair:
                b, t = pair["baseline"], pair["turnout"]
                print(f"  ratio turnout/baseline: participants/s {t['completed_per_s'] / b['completed_per_s']:.2f}, "
                      f"save p99 {t['routes']['sync_put']['p99_ms'] / b['routes']['sync_put']['p99_ms']:.2f}, "
                      f"server CPU per request "
                      f"{t['server_cpu_ms_per_request'] / b['server_cpu_ms_per_request']:.2f}", flush=True)
            if "baseline" in pair and "psiturk" in pair:
                b, p = pair["baseline"], pair["psiturk"]
                print(f"  ratio baseline/psiTurk: participants/s {b['completed_per_s'] / p['completed_per_s']:.2f}",
                      flush=True)
            if "turnout" in pair and "psiturk" in pair:
                t, p = pair["turnout"], pair["psiturk"]
                print(f"  ratio turnout/psiTurk: participants/s {t['completed_per_s'] / p['completed_per_s']:.2f}, "
                      f"save p99 {t['routes']['sync_put']['p99_ms'] / p['routes']['sync_put']['p99_ms']:.2f}, "
                      f"server CPU per request "
                      f"{t['server_cpu_ms_per_request'] / p['server_cpu_ms_per_request']:.2f}, "
                      f"peak PSS {t['peak_pss_mib'] / max(p['peak_pss_mib'], 1e-9):.2f}; load average now "
                      f"{os.getloadavg()[0]:.1f}", flush=True)
            pairs.append(pair)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if len(pairs) > 1 and all("turnout" in p and "psiturk" in p for p in pairs):
        ratios = [p["turnout"]["completed_per_s"] / p["psiturk"]["completed_per_s"] for p in pairs]
        print(f"median over {len(pairs)} pairs: ratio of participants/s {statistics.median(ratios):.2f} "
              f"(each: {', '.join(f'{x:.2f}' for x in ratios)}); turnout save p99 "
              f"{statistics.median(p['turnout']['routes']['sync_put']['p99_ms'] for p in pairs):.1f} ms, psiTurk "
              f"{statistics.median(p['psiturk']['routes']['sync_put']['p99_ms'] for p in pairs):.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(pairs, indent=2), encoding="utf-8")
    bad = any(r["errors"] or r["verify"]["lost_trials"] or r["verify"]["mismatched"]
              for pair in pairs for r in pair.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
