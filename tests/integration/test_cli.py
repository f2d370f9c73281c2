"""The turnout command: init, serve, debug, export, db upgrade.

Each is driven with click's CliRunner; two run as real subprocesses (a usage error and a
served project answering HTTP), since that is how people meet them.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from servers import free_port, run_turnout, running_server, turnout_cli

COMMANDS = [[], ["init"], ["serve"], ["debug"], ["export"], ["db"], ["db", "upgrade"]]


@pytest.fixture
def run(cli, sqlite_url: str, monkeypatch: pytest.MonkeyPatch):
    """``run(*args, project=project_dir)``: the ``cli`` fixture with a fresh SQLite file as
    the database."""
    monkeypatch.setenv("TURNOUT_DATABASE_URL", sqlite_url)
    return cli


def one_line_error(result: Any) -> str:
    """The error a failed command printed: exactly one line, no traceback."""
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("turnout: "), lines[0]
    return lines[0]


# --- help and usage ------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "turnout" for c in COMMANDS])
def test_every_command_has_help(command: list[str]) -> None:
    result = turnout_cli(None, *command, "--help")
    assert result.exit_code == 0
    assert result.output.startswith("Usage: ")
    assert len(result.output.splitlines()) > 3


def test_main_help_lists_the_experiment_commands() -> None:
    output = turnout_cli(None, "--help").output
    for name in ("init", "serve", "debug", "export", "db"):
        assert re.search(rf"^\s+{name}\s", output, flags=re.MULTILINE), name


@pytest.mark.parametrize("args", [
    ["bogus"],
    ["export", "--format", "xml"],
    ["serve", "--port", "eighty"],
    ["serve", "--port", "70000"],
    ["init"],
    ["db", "downgrade"],
    ["debug", "--no-such-flag"],
])
def test_bad_arguments_exit_non_zero_with_one_clear_line(run, args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "--help" in line


def test_bad_argument_names_the_option_and_value(run) -> None:
    line = one_line_error(run("export", "--format", "xml"))
    assert "--format" in line and "xml" in line


def test_usage_error_in_a_real_process_is_one_line_on_stderr(project_dir: Path) -> None:
    done = run_turnout(project_dir, "export", "--format", "xml", timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("turnout: ")


# --- init ----------------------------------------------------------------------------------


def test_init_creates_a_complete_project(tmp_path: Path) -> None:
    target = tmp_path / "study"
    result = turnout_cli(None, "init", str(target))
    assert result.exit_code == 0, result.output
    for name in ("config.txt", "custom.py", "templates/exp.html", "templates/ad.html", "templates/consent.html",
                 "templates/thanks-mturksubmit.html", "templates/closepopup.html", "templates/error.html",
                 "static/lib/jquery.min.js", "static/lib/backbone-min.js", "static/lib/underscore-min.js"):
        assert (target / name).is_file(), name
    assert "turnout db upgrade" in result.output


def test_init_gives_each_project_its_own_secret_key(tmp_path: Path) -> None:
    keys = []
    for name in ("one", "two"):
        assert turnout_cli(None, "init", str(tmp_path / name)).exit_code == 0
        text = (tmp_path / name / "config.txt").read_text()
        match = re.search(r"^secret_key\s*=\s*(\S+)\s*$", text, flags=re.MULTILINE)
        assert match, "config.txt has a filled-in secret_key"
        keys.append(match.group(1))
    assert keys[0] != keys[1] and len(keys[0]) >= 32


def test_init_project_upgrades_and_serves_a_participant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from turnout.app import create_app
    from turnout.config import load_settings

    target = tmp_path / "study"
    assert turnout_cli(None, "init", str(target)).exit_code == 0
    monkeypatch.setenv("PSITURK_GLOBAL_CONFIG_LOCATION", str(tmp_path))
    upgraded = turnout_cli(target, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    app = create_app(load_settings(target))
    try:
        client = app.test_client()
        response = client.get("/exp?hitId=debugH&assignmentId=debugA&workerId=debugW&mode=debug")
        assert response.status_code == 200
        assert b"turnout-participant-token" in response.data
        ad = client.get("/ad?hitId=H1&assignmentId=A1&workerId=W1&mode=sandbox")
        assert ad.status_code == 200 and b"<b>Error</b>" not in ad.data
    finally:
        app.extensions["turnout"].db.dispose()


def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "notes.txt").write_text("mine")
    line = one_line_error(turnout_cli(None, "init", str(tmp_path / "study")))
    assert "not empty" in line
    assert (tmp_path / "study" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "study" / "config.txt").exists()


def test_init_onto_an_existing_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "study").write_text("a file")
    line = one_line_error(turnout_cli(None, "init", str(tmp_path / "study")))
    assert "study" in line
    assert (tmp_path / "study").read_text() == "a file"


def test_init_into_an_empty_folder_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "study").mkdir()
    assert turnout_cli(None, "init", str(tmp_path / "study")).exit_code == 0
    assert (tmp_path / "study" / "config.txt").is_file()


# --- db upgrade --------------------------------------------------------------------------------


def test_db_upgrade_reports_then_is_a_no_op(run) -> None:
    first = run("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert re.search(r"upgraded from schema none to \S+", first.output)
    second = run("db", "upgrade")
    assert second.exit_code == 0
    assert "already at schema" in second.output


def test_db_upgrade_with_unreachable_database_is_one_line(run, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("TURNOUT_DATABASE_URL", f"postgresql://nobody:secret@127.0.0.1:{port}/none")
    line = one_line_error(run("db", "upgrade"))
    assert "cannot connect to the database" in line
    assert "secret" not in line  # the password is never printed


def test_bad_config_value_stops_a_command_with_file_section_and_key(run, project_dir: Path) -> None:
    text = (project_dir / "config.txt").read_text().replace("port = 22362", "port = eighty")
    (project_dir / "config.txt").write_text(text)
    for command in (["db", "upgrade"], ["debug"], ["export"], ["serve"]):
        line = one_line_error(run(*command))
        assert "config.txt [Server Parameters] port" in line, command


def test_missing_project_folder_is_one_line(run, tmp_path: Path) -> None:
    line = one_line_error(run("debug", project=tmp_path / "nowhere"))
    assert "no such project folder" in line


# --- debug ------------------------------------------------------------------------------------


def test_debug_prints_a_fresh_debug_participant_url(run) -> None:
    first, second = run("debug"), run("debug")
    assert first.exit_code == 0
    url = first.output.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:22362/ad\?assignmentId=debug[A-Z0-9]{6}&hitId=debug[A-Z0-9]{6}"
                        r"&workerId=debug[A-Z0-9]{6}&mode=debug", url), url
    assert second.output.strip() != url


def test_debug_url_opens_the_ad_of_a_working_server(run, make_app) -> None:
    url = run("debug").output.strip()
    response = make_app().test_client().get(url.split("22362", 1)[1])
    assert response.status_code == 200
    assert b'id="begin"' in response.data


# --- serve --------------------------------------------------------------------------------------


def test_serve_with_missing_template_names_it(run, project_dir: Path) -> None:
    (project_dir / "templates" / "exp.html").unlink()
    line = one_line_error(run("serve"))
    assert "exp.html" in line


def test_serve_with_broken_custom_py_shows_its_error(run, project_dir: Path) -> None:
    (project_dir / "custom.py").write_text("from flask import Blueprint\ncustom_code = Blueprint('c', __name__)\n"
                                           "1 / 0\n")
    line = one_line_error(run("serve", "--port", str(free_port())))
    assert "custom.py:3" in line and "ZeroDivisionError" in line


def test_serve_answers_http_in_a_real_process(project_dir: Path, tmp_path: Path) -> None:
    env = {"TURNOUT_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "TURNOUT_LOGFILE": None,
           "PSITURK_GLOBAL_CONFIG_LOCATION": str(tmp_path), "TURNOUT_LAUNCH_IN_MODE": "sandbox"}
    with running_server(project_dir, env=env, host=None) as base:
        with urllib.request.urlopen(base + "/", timeout=10) as response:
            assert b"This experiment server is running" in response.read()
        with urllib.request.urlopen(f"{base}/exp?hitId=H&assignmentId=A&workerId=W&mode=sandbox",
                                    timeout=10) as response:
            assert b"exp for W:A" in response.read()
    assert f":{base.port}" in base.output()
