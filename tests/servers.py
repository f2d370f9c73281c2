"""The shared test kit: the turnout CLI (in-process or as a process), a live ``turnout
serve`` on a free port, and new projects. Test modules import these (``from servers
import ...``); fixtures in conftest.py wrap them.

- ``turnout_cli(project, *args)``: the CLI in-process through click's CliRunner (``-C
  project`` unless None); the root command group is the one the ``turnout`` console
  script loads, wherever it lives.
- ``run_turnout(project, *args)``: the same command as a real process (exit code,
  stdout and stderr apart).
- ``running_server(project, ...)``: ``turnout serve`` as a real process, waited for and
  torn down; yields its base URL (a ``str`` that also carries the port, process and log).
- ``copy_project(dest)``: the small psiTurk-format fixture project;
  ``init_project(dest)``: what ``turnout init`` makes (run once per session, copied after).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

TURNOUT = str(Path(sys.executable).with_name("turnout"))  # the installed console script
FIXTURES = Path(__file__).parent / "fixtures"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the CLI ----------------------------------------------------------------------------------


@cache
def turnout_main() -> Any:
    """The root click group, loaded the way the ``turnout`` console script loads it (so the
    tests follow the command tree wherever its module moves)."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="turnout")
    return script.load()


def turnout_cli(project: Path | str | None, *args: str, input: str | None = None,
                env: Mapping[str, str] | None = None) -> Any:
    """``turnout -C project args...`` in-process (``project=None``: no ``-C``); click's
    Result (exit_code, output...)."""
    from click.testing import CliRunner

    prefix = ["-C", str(project)] if project is not None else []
    return CliRunner().invoke(turnout_main(), [*prefix, *args], input=input, env=env)


def run_turnout(project: Path | str | None, *args: str, env: Mapping[str, str] | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``turnout -C project args...`` as a real process: returncode, stdout, stderr (text)."""
    prefix = ["-C", str(project)] if project is not None else []
    return subprocess.run([TURNOUT, *prefix, *args], env=dict(env) if env is not None else None,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)


# --- projects ---------------------------------------------------------------------------------


def copy_project(dest: Path, source: Path = FIXTURES / "minimal_project") -> Path:
    """A copy of the small psiTurk-format test project (or of ``source``) at ``dest``."""
    shutil.copytree(source, dest)
    return dest


@cache
def _initialised(demo: bool) -> Path:
    """One ``turnout init`` per session (and kind); ``init_project`` copies it."""
    folder = tempfile.mkdtemp(prefix="turnout-init-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    made = Path(folder) / "study"
    result = turnout_cli(None, "init", *(["--for-demo"] if demo else []), str(made))
    assert result.exit_code == 0, result.output
    return made


def init_project(dest: Path, *, demo: bool = False) -> Path:
    """A new project as ``turnout init`` makes it (the Stroop example), at ``dest``.

    ``init`` runs once per session and each call copies its output, so the projects share
    their generated secret_key and dashboard password hash (no test depends on them being
    unique; tests of ``init`` itself invoke it directly)."""
    shutil.copytree(_initialised(demo), dest)
    return dest


# --- a live server ----------------------------------------------------------------------------


class ServerURL(str):
    """The base URL of a running ``turnout serve``, with its port, process and log file."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        """What the server has printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(project: Path, *, env: Mapping[str, str | None] | None = None, workers: int = 1,
                   host: str | None = "127.0.0.1", port: int | None = None, args: Sequence[str] = (),
                   log_path: Path | None = None, own_session: bool = False, timeout_s: float = 90,
                   stop_timeout_s: float = 60) -> Iterator[ServerURL]:
    """Start ``turnout serve`` for ``project`` on ``port`` (a free loopback port by default)
    and yield its base URL once ``/`` answers; stop it (SIGTERM, then SIGKILL) afterwards.

    ``env`` is laid over this process's environment (with ``TURNOUT_LOGFILE=-`` unless
    ``env`` says otherwise; a None value removes a variable); ``host=None`` leaves ``--host`` to the project; ``args`` are
    added to ``serve``; ``own_session`` starts it in its own process group, as a terminal's
    foreground job is (the whole group is killed if it is still up at the end). Fails with
    the server's own output if it exits early or never answers. A test may stop the
    process itself; the teardown then only waits for it.
    """
    port = port or free_port()
    laid = {**os.environ, "TURNOUT_LOGFILE": "-", **(env or {})}
    full_env = {key: value for key, value in laid.items() if value is not None}
    log_path = log_path or project / f"serve-{port}.log"
    command = [TURNOUT, "-C", str(project), "serve", *(["--host", host] if host else []), "--port", str(port),
               "--workers", str(workers), *args]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=project,
                                start_new_session=own_session)
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.port, url.process, url.log_path = port, proc, log_path
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"turnout serve exited with {proc.returncode}:\n{url.output()}")
            try:
                urllib.request.urlopen(url + "/", timeout=5).read()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"turnout serve did not answer in {timeout_s} s:\n{url.output()}") from None
                time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=stop_timeout_s)
        except subprocess.TimeoutExpired:
            if own_session:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
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
