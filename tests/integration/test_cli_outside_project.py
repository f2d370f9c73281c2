"""Every command that needs a project, run in a folder that is not one (issue 11 item 1).

The commands are collected from the click command tree, so a command added later is
covered without touching this file. Each must say in one line that the folder is not a
project and how to name one, exit non-zero, and leave the folder empty (no
participants.db, no marketplace store, no log).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import pytest

from servers import turnout_cli
from turnout.cli import main, needs_project


def _leaves(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _leaves(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


def _sample_value(param: click.Parameter) -> str:
    """A value click accepts for ``param``, so the command gets past argument parsing."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, click.Path):
        return "somewhere"
    return "1"


def _sample_args(command: click.Command) -> list[str]:
    args: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument) and param.required:
            args += [_sample_value(param)] * (1 if param.nargs == 1 else max(param.nargs, 1))
        elif isinstance(param, click.Option) and param.required:
            args += [param.opts[0], _sample_value(param)]
    return args


PROJECT_COMMANDS = [(path, command) for path, command in _leaves(main) if needs_project(command)]


def test_the_tree_has_the_commands_this_test_is_about() -> None:
    names = {" ".join(path) for path, _ in PROJECT_COMMANDS}
    assert {"serve", "debug", "export", "db upgrade", "worker list", "hit create", "balance", "mode",
            "simulate"} <= names
    assert "init" not in names


@pytest.mark.parametrize("path,command", PROJECT_COMMANDS, ids=[" ".join(p) for p, _ in PROJECT_COMMANDS])
@pytest.mark.parametrize("how", ["cwd", "-C"])
def test_a_command_outside_a_project_says_so_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], command: click.Command,
        how: str) -> None:
    folder = tmp_path / "not-a-project"
    folder.mkdir()
    monkeypatch.chdir(folder if how == "cwd" else tmp_path)
    prefix = ["-C", str(folder)] if how == "-C" else []
    result = turnout_cli(None, *prefix, *path, *_sample_args(command), input="")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("turnout: ")
    assert "is not a turnout (psiTurk) project: it has no config.txt" in lines[0]
    assert "-C DIR" in lines[0] and "turnout init DIR" in lines[0]
    assert str(folder) in lines[0]
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-project"]


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["worker", "list", "--help"], ["hit", "create", "-h"],
                                  ["serve", "--help"]])
def test_help_and_version_work_outside_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    result = turnout_cli(None, *args)
    assert result.exit_code == 0, result.output
    assert "not a turnout" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_init_works_outside_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = turnout_cli(None, "init", "study")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "study" / "config.txt").is_file()


def test_config_txt_that_is_a_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.txt").mkdir()
    result = turnout_cli(tmp_path, "serve")
    assert result.exit_code == 1
    assert result.output.strip() == (f"turnout: {tmp_path / 'config.txt'} is a folder, not a file; "
                                      "a project's settings live in the file config.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_config_txt_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.txt").write_text("[Server Parameters]\n")
    (tmp_path / "config.txt").chmod(0)
    result: Any = turnout_cli(tmp_path, "debug")
    assert result.exit_code == 1
    assert "cannot read it" in result.output


def test_a_no_project_command_is_not_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command module registering a project-free helper marks it with no_project."""
    from turnout.cli import no_project

    @click.command("say-hello")
    def say_hello() -> None:
        click.echo("hello")

    monkeypatch.setitem(main.commands, "say-hello", no_project(say_hello))
    monkeypatch.chdir(tmp_path)
    result = turnout_cli(None, "say-hello")
    assert result.exit_code == 0 and result.output == "hello\n"
