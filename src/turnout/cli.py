"""The ``turnout`` command. Each command parses its arguments, calls one service, prints."""

from __future__ import annotations

import secrets
import shutil
import string
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click

from turnout.config import ConfigError, Settings, load_settings


class CliError(click.ClickException):
    """One clear line on standard error and exit status 1; never a traceback."""

    def show(self, file: Any = None) -> None:
        click.echo(f"turnout: {self.format_message()}", err=True)


class UsageErrorLine(click.UsageError):
    """A usage error as one line on standard error (exit status 2), naming where to get help."""

    def show(self, file: Any = None) -> None:
        click.echo(f"turnout: {self.format_message()}", err=True)


def _one_line(exc: click.UsageError) -> click.UsageError:
    if type(exc).show is not click.UsageError.show:  # already printed on one line
        return exc
    path = exc.ctx.command_path if exc.ctx else "turnout"
    return UsageErrorLine(f"{exc.format_message()} (see '{path} --help')")


class OneLineGroup(click.Group):
    """Click prints usage errors as three lines; every turnout command prints one."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a subcommand's arguments, or an unknown command
            raise _one_line(exc) from None


def _settings(ctx: click.Context) -> Settings:
    try:
        return load_settings(ctx.obj["project"])
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _database(settings: Settings) -> Any:
    from turnout.db.engine import Database

    try:
        db = Database(settings.database_url, settings.tables)
        db.ping()
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:  # a driver error: name the database, not the stack
        url = settings.database_url.split("@")[-1]
        raise CliError(f"cannot connect to the database ({url}): {str(exc).splitlines()[0]}") from None
    return db


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "--project", "project", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="The project folder.")
@click.version_option(package_name="turnout")
@click.pass_context
def main(ctx: click.Context, project: Path) -> None:
    """turnout: run psiTurk-format behavioural experiments and recruit participants."""
    ctx.ensure_object(dict)
    ctx.obj["project"] = project


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
def init(directory: Path) -> None:
    """Create a new project in DIRECTORY: a complete Stroop experiment to start from."""
    if directory.exists() and not directory.is_dir():
        raise CliError(f"{directory} is a file; choose a new folder")
    if directory.exists() and any(directory.iterdir()):
        raise CliError(f"{directory} already exists and is not empty; choose a new folder")
    template = resources.files("turnout").joinpath("project_template")
    with resources.as_file(template) as source:
        if not Path(source).is_dir():
            raise CliError("this installation of turnout lacks its project template")
        shutil.copytree(source, directory, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    config = directory / "config.txt"
    text = config.read_text(encoding="utf-8") if config.is_file() else ""
    from turnout.services.accounts import fill_new_project_login

    text, login_password = fill_new_project_login(text)
    if "secret_key =" in text:
        text = text.replace("secret_key =", f"secret_key = {secrets.token_urlsafe(32)}", 1)
    if text:
        config.write_text(text, encoding="utf-8")
    click.echo(f"Created {directory}. Next:\n  cd {directory}\n  turnout db upgrade\n  turnout serve")
    if login_password:
        click.echo(f"Dashboard login (set enable_dashboard = true to use it): admin / {login_password}\n"
                   "  this password is shown only now; config.txt keeps only its hash")


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Bring the database (new, or made by psiTurk 3.x) to turnout's current schema."""
    from turnout.db.migrate import current_revision, head_revision, upgrade

    settings = _settings(ctx)
    database = _database(settings)
    before = current_revision(database)
    try:
        upgrade(database)
    except Exception as exc:
        raise CliError(f"upgrade failed, nothing was changed past the last good step: {exc}") from None
    after = current_revision(database)
    if before == after:
        click.echo(f"database already at schema {after} (head {head_revision(database)})")
    else:
        click.echo(f"database upgraded from schema {before or 'none'} to {after}")


def debug_url(settings: Settings, host: str | None = None, port: int | None = None) -> str:
    alphabet = string.ascii_uppercase + string.digits

    def rand() -> str:
        return "debug" + "".join(secrets.choice(alphabet) for _ in range(6))

    shown = host or settings.host
    if shown in ("0.0.0.0", "::"):
        shown = "localhost"
    base = f"http://{shown}:{port or settings.port}/ad"
    return f"{base}?assignmentId={rand()}&hitId={rand()}&workerId={rand()}&mode=debug"


@main.command()
@click.option("-p", "--print-only", is_flag=True, help="Accepted for psiTurk compatibility; turnout only prints.")
@click.pass_context
def debug(ctx: click.Context, print_only: bool) -> None:
    """Print a URL that walks the experiment as a new debug participant."""
    click.echo(debug_url(_settings(ctx)))


@main.command()
@click.option("--host", help="Interface to listen on (default: config host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: config port).")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default: config threads).")
@click.option("--demo", is_flag=True, hidden=True, help="Print the demo hints (used by make demo).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None, demo: bool) -> None:
    """Serve the experiment with gunicorn (upgrading the database schema first)."""
    from turnout.db.migrate import upgrade
    from turnout.project import load_project
    from turnout.server import run_gunicorn

    settings = _settings(ctx)
    try:
        load_project(settings.project_dir, with_custom=False)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    database = _database(settings)
    upgrade(database)
    database.dispose()
    host, port = host or settings.host, port if port is not None else settings.port
    _check_app_builds(settings)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    click.echo(f"turnout serving {settings.project_dir} on http://{shown}:{port}/ "
               f"({workers or settings.threads} worker processes, marketplace mode {settings.default_mode})")
    click.echo("  open:")
    click.echo(f"    the experiment, as a debug participant: {debug_url(settings, host, port)}")
    if settings.default_mode == "local":
        click.echo(f"    the worker site (take the study as an MTurk worker would): http://{shown}:{port}/_mturk/worker/")
        click.echo(f"    the offline MTurk requester endpoint (boto3, turnout hit/worker): http://{shown}:{port}/_mturk/")
        if settings.simulate_arrival_rate > 0:
            click.echo(f"  simulated workers arrive about {settings.simulate_arrival_rate:g} a minute "
                       "([Marketplace] simulate_arrival_rate)")
    if settings.enable_dashboard:
        click.echo(f"    the lab dashboard: http://{shown}:{port}/dashboard/")
        if demo:
            from turnout.services.accounts import is_password_hash

            shown_pw = "(the hashed login_pw)" if is_password_hash(settings.login_pw) else settings.login_pw
            click.echo(f"      demo login: {settings.login_username} / {shown_pw}")
    if demo:
        click.echo("  stop with Ctrl-C; the data stays in participants.db "
                   "(`turnout export`, `turnout worker list`)")
    sys.stdout.flush()
    run_gunicorn(settings, host=host, port=port, workers=workers)


def _check_app_builds(settings: Settings) -> None:
    """Build the app once in the parent so a broken custom.py stops start-up with its error."""
    from turnout.app import create_app

    try:
        app = create_app(settings)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    app.extensions["turnout"].db.dispose()  # workers open their own connections after the fork


@main.command()
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write trialdata, eventdata and questiondata into.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: psiTurk's column layout; json: JSON Lines, one object per row.")
@click.option("--codeversion", help="Only participants of this experiment_code_version.")
@click.option("--mode", help="Only participants of this mode (debug, sandbox, live, local).")
@click.pass_context
def export(ctx: click.Context, out_dir: Path, fmt: str, codeversion: str | None, mode: str | None) -> None:
    """Write the participants' data files (psiTurk's download_datafiles), streamed."""
    from turnout.errors import TurnoutError
    from turnout.services.export import export as run_export

    settings = _settings(ctx)
    database = _database(settings)
    try:
        counts = run_export(database, out_dir, fmt=fmt, codeversion=codeversion, mode=mode)
    except OSError as exc:
        raise CliError(f"cannot write to {out_dir}: {exc.strerror}") from None
    except TurnoutError as exc:
        raise CliError(exc.message) from None
    suffix = "csv" if fmt == "csv" else "jsonl"
    for kind, n in counts.items():
        click.echo(f"{out_dir / f'{kind}.{suffix}'}: {n} rows")


import turnout.cli_accounts  # noqa: E402,F401  (turnout user/token/hash-password)
import turnout.cli_marketplace  # noqa: E402,F401  (turnout hit/worker/ledger/balance/mode)
from turnout import cli_simulate  # noqa: E402,F401  (turnout simulate)

if __name__ == "__main__":  # pragma: no cover
    main()
