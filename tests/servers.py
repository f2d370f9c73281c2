"""Run ``turnout serve`` as a real subprocess for tests that need a real server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TURNOUT = str(Path(sys.executable).with_name("turnout"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(project: Path, *, env: dict[str, str] | None = None, workers: int = 1,
                   timeout_s: float = 60) -> Iterator[str]:
    """Start ``turnout serve`` for ``project`` on a free loopback port; yield its base URL.

    Fails with the server's own output if it exits early or never answers.
    """
    port = free_port()
    full_env = {**os.environ, "TURNOUT_LOGFILE": "-", **(env or {})}
    log_path = project / f"serve-{port}.log"
    with open(log_path, "w+b") as log:
        proc = subprocess.Popen([TURNOUT, "-C", str(project), "serve", "--host", "127.0.0.1", "--port",
                                 str(port), "--workers", str(workers)], env=full_env, stdout=log,
                                stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"turnout serve exited with {proc.returncode}:\n{log_path.read_text()}")
                try:
                    urllib.request.urlopen(base + "/", timeout=2).read()
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"turnout serve did not answer:\n{log_path.read_text()}") from None
                    time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def runner_processes(project: Path) -> list[int]:
    """PIDs of the task-runner children ``turnout serve`` started for ``project`` (they run
    the demo's simulated arrivals); read from /proc, nothing is signalled."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"turnout.scheduler" in argv and b"--watch-pid" in argv and str(project).encode() in argv:
            found.append(int(entry.name))
    return found


def quicken_stroop(project: Path) -> Path:
    """Shorten the pauses of the `turnout init` Stroop task (the fixation cross, practice
    feedback and the gap between words) in this copy of the project, so a browser test walks
    its 32 trials in seconds; what the task does, saves and shows is unchanged."""
    task = project / "static" / "js" / "task.js"
    text = task.read_text(encoding="utf-8")
    for name in ("FIXATION_MS", "FEEDBACK_MS", "GAP_MS"):
        text, found = re.subn(rf"var {name} = \d+;", f"var {name} = 20;", text)
        assert found == 1, f"{name} not found in {task}"
    task.write_text(text, encoding="utf-8")
    return project
