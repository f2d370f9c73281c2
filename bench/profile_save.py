"""Server CPU per request of the participant routes, in one process, with no network.

Builds the app on a fresh SQLite file (or --database-url), starts P participants through
/exp and /inexp, then runs their PUT /sync saves (growing task data, as psiturk.js sends
it) straight through the WSGI app, one at a time, and prints the process CPU time per
save. ``--profile`` wraps the saves in cProfile and prints the top functions. Not a test:
it measures and prints.

    .venv/bin/python bench/profile_save.py -n 20 -k 50            # CPU ms per save
    .venv/bin/python bench/profile_save.py -n 20 -k 50 --profile   # where it goes
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from workload import BASE_MS, USER_AGENT, load_project_settings, task_body, task_trials  # noqa: E402

TOKEN = re.compile(r'name="turnout-participant-token" content="([^"]+)"')


def environ_for(method: str, path: str, query: str = "", body: bytes = b"",
                headers: dict[str, str] | None = None, content_type: str = "") -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": False, "wsgi.run_once": False, "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": USER_AGENT,
        "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9",
    }
    if content_type:
        env["CONTENT_TYPE"] = content_type
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def call(app: Any, env: dict[str, Any]) -> tuple[str, bytes]:
    out: dict[str, str] = {}

    def start_response(status: str, _headers: Any, _exc: Any = None) -> Any:
        out["status"] = status
        return lambda _data: None

    chunks = app(env, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    return out["status"], body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", default="tests/fixtures/minimal_project")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("-n", type=int, default=20, help="participants")
    parser.add_argument("-k", type=int, default=50, help="saves (trials) per participant")
    parser.add_argument("--trial-bytes", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-saves", action="store_true",
                        help="do everything but the saves (run under valgrind --tool=callgrind with and "
                             "without it: the difference in instructions is the saves' own)")
    args = parser.parse_args()

    from turnout.app import create_app
    from turnout.db.engine import Database
    from turnout.db.migrate import upgrade

    workdir = Path(tempfile.mkdtemp(prefix="turnout-profile-"))
    project = workdir / "project"
    shutil.copytree(args.project, project)
    url = args.database_url or f"sqlite:///{workdir / 'participants.db'}"
    settings = load_project_settings(project, url)
    db = Database(settings.database_url, settings.tables)
    upgrade(db)
    app = create_app(settings, db=db)

    people = []
    for i in range(args.n):
        worker, assignment = f"W{i:05d}{int(time.time())}", f"A{i:05d}"
        query = f"hitId=H1&assignmentId={assignment}&workerId={worker}&mode=sandbox"
        status, html = call(app, environ_for("GET", "/exp", query))
        token = TOKEN.search(html.decode())
        assert status.startswith("200") and token, (status, html[:300])
        uid = f"{worker}:{assignment}"
        headers = {"X-Turnout-Token": token.group(1)}
        status, body = call(app, environ_for("GET", f"/sync/{uid}", headers=headers))
        import json
        fields = json.loads(body)
        status, _ = call(app, environ_for("POST", "/inexp", body=f"uniqueId={uid}".encode(), headers=headers,
                                          content_type="application/x-www-form-urlencoded"))
        trials = task_trials(1, uid, args.k, args.trial_bytes)
        people.append((uid, headers, fields, trials))

    bodies = []
    for k in range(1, args.k + 1):
        for uid, headers, fields, trials in people:
            body = task_body(fields, trials, k, mode="sandbox")
            h = dict(headers, **{"X-Turnout-Save": f"{BASE_MS}-0000abcd.{k}"})
            bodies.append((uid, body, h))
    size = sum(len(b) for _, b, _ in bodies) / len(bodies)

    profiler = cProfile.Profile() if args.profile else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for uid, body, h in ([] if args.no_saves else bodies):
        status, out = call(app, environ_for("PUT", f"/sync/{uid}", body=body, headers=h,
                                            content_type="application/json"))
        if not status.startswith("200"):
            raise SystemExit(f"save refused: {status} {out[:200]!r}")
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if args.no_saves:
        bodies = bodies[:1]
    print(f"{len(bodies)} saves, mean body {size / 1024:.1f} KB: server CPU {cpu / len(bodies) * 1000:.3f} ms/save, "
          f"wall {wall / len(bodies) * 1000:.3f} ms/save ({settings.database_url.split(':')[0]})")
    if profiler:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(args.top)
        print(stream.getvalue())
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(args.top)
        print(stream.getvalue())
    db.dispose()
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
