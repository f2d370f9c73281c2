"""``turnout serve`` starting and stopping as a real process (issue 11 item 6).

Ctrl-C in a terminal sends SIGINT to every process of the foreground group: gunicorn's
master and its workers (the task runner that runs the demo's simulated arrivals has its
own group and follows the server's pid). The server must stop cleanly: every worker says
it is exiting, none is killed ("was sent SIGKILL! Perhaps out of memory?"), no traceback,
and no runner left behind.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from servers import free_port, runner_processes, running_server, turnout_cli


def test_ctrl_c_stops_every_process_cleanly(project_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {"TURNOUT_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
           "TURNOUT_LOGLEVEL": "1", "TURNOUT_LOGFILE": "server.log", "TURNOUT_LAUNCH_IN_MODE": "local",
           "TURNOUT_SIMULATE_ARRIVAL_RATE": "30", "TURNOUT_AD_URL_PORT": str(port)}
    log = project_dir / "server.log"
    terminal = tmp_path / "terminal.txt"
    idle: list[socket.socket] = []
    try:
        with running_server(project_dir, env=env, host=None, port=port, workers=2, args=["--demo"],
                            log_path=terminal, own_session=True) as served:
            process = served.process
            deadline = time.monotonic() + 60
            while len(runner_processes(project_dir)) != 1:  # the runner that runs the arrivals is up
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            while "posted in the offline marketplace" not in terminal.read_text():  # the demo's event lines
                assert time.monotonic() < deadline, terminal.read_text()
                time.sleep(0.2)
            # Connections on which the client has sent nothing yet, as a browser's preconnect
            # leaves them: a request thread waits on each.
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
            time.sleep(0.5)  # let the workers accept them (a pause, not a timing assertion)
            os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail("turnout serve did not stop within 60 s of Ctrl-C")
        deadline = time.monotonic() + 30
        while runner_processes(project_dir):  # the runner stops when the server is gone
            assert time.monotonic() < deadline, "the task runner outlived the server"
            time.sleep(0.2)
    finally:
        for s in idle:
            s.close()
    text = log.read_text()
    printed = terminal.read_text()
    assert process.returncode == 0, printed
    assert "Handling signal: int" in text
    assert text.count("Worker exiting") == 2, text
    assert "Shutting down: Master" in text
    assert "SIGKILL" not in text and "out of memory" not in text, text
    assert "Traceback" not in text and "Traceback" not in printed, text + printed
    assert "ignored due to race condition" not in text + printed
    assert text.count("turnout runner ") == 1 and "started for" in text, text  # one runner, not one per worker
    # The banner says what runs and where the log is; events reach the terminal (item 5).
    assert "  server: gunicorn, 2 worker processes" in printed
    assert f"  log: {log} (level INFO" in printed
    assert re.search(r"^  \d\d:\d\d:\d\d  HIT \w+ posted in the offline marketplace$", printed, re.MULTILINE), printed
    assert "posted in the offline marketplace" in text  # and server.log has them too


# --- the gunicorn hooks behind it ----------------------------------------------------------


class _Worker:
    def __init__(self, pid: int) -> None:
        self.pid = pid


def test_a_cleanly_exiting_worker_skips_interpreter_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    from turnout.serving import launcher as server

    ended: list[int] = []
    monkeypatch.setattr(server.os, "_exit", ended.append)
    try:
        raise SystemExit(0)
    except SystemExit:
        server._end_worker_process(None, _Worker(os.getpid()))
    assert ended == [0]


@pytest.mark.parametrize("code", [3, -1, 1])
def test_a_worker_that_failed_keeps_its_exit_status(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """A worker that could not boot exits with gunicorn's status, so the master stops retrying."""
    from turnout.serving import launcher as server

    ended: list[int] = []
    monkeypatch.setattr(server.os, "_exit", ended.append)
    try:
        raise SystemExit(code)
    except SystemExit:
        server._end_worker_process(None, _Worker(os.getpid()))
    assert ended == []


def test_the_master_reaping_a_worker_is_not_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    from turnout.serving import launcher as server

    ended: list[int] = []
    monkeypatch.setattr(server.os, "_exit", ended.append)
    try:
        raise SystemExit(0)
    except SystemExit:
        server._end_worker_process(None, _Worker(os.getpid() + 1))
    assert ended == []


# --- the demo's terminal ----------------------------------------------------------------------------


def test_events_print_on_the_terminal_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import logging

    from turnout import events

    monkeypatch.setattr(events.log, "handlers", [])
    events.show_on_terminal(io.StringIO())
    assert events.log.handlers == []  # not a demo: server.log only
    monkeypatch.setenv(events.SHOW_ENV, "1")
    terminal = io.StringIO()
    events.show_on_terminal(terminal)
    events.show_on_terminal(terminal)  # configured twice (a worker rebuilding its app): one handler
    assert len(events.log.handlers) == 1
    events.marketplace_event("AssignmentAccepted", hit_id="H1", assignment_id="A1", worker_id="W1")
    events.marketplace_event("QualificationGranted", worker_id="W1")  # not one a researcher watches
    events.participant_completed("W1", "A1", "local")
    lines = terminal.getvalue().splitlines()
    assert [line[12:] for line in lines] == ["worker W1 accepted HIT H1",
                                             "participant W1 (assignment A1, mode local) completed the study"]
    assert events.log.getEffectiveLevel() == logging.INFO


def test_init_for_make_demo_leaves_out_the_next_steps(tmp_path: Path) -> None:


    plain = turnout_cli(None, "init", str(tmp_path / "a"))
    demo = turnout_cli(None, "init", "--for-demo", str(tmp_path / "b"))
    assert "turnout db upgrade" in plain.output and "turnout serve" in plain.output
    assert demo.exit_code == 0 and demo.output == f"Created {tmp_path / 'b'}, a copy of the Stroop study.\n"
    assert "--for-demo" not in turnout_cli(None, "init", "--help").output
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    assert "turnout init --for-demo" in makefile and "TURNOUT_AD_URL_PORT" not in makefile
