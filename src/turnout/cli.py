"""The ``turnout`` command. Each command parses its arguments, calls one service, prints."""

from __future__ import annotations

import os
import secrets
import shutil
import string
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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
        if ctx.parent is None and "project" in ctx.params:
            # The one place every command passes through: a command that needs a project
            # stops here, before it parses its own arguments further or creates anything.
            command = _command_to_run(self, ctx)
            if command is not None and needs_project(command):
                require_project(ctx.params["project"])
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a subcommand's arguments, or an unknown command
            raise _one_line(exc) from None


def no_project(command: click.Command) -> click.Command:
    """Mark a command that works outside a project folder (``init``, ``hash-password``-style
    helpers). Every other command gets the "not a project" check before it runs, so a new
    command module needs nothing to be safe outside a project::

        @no_project
        @main.command()
        def hash_password(...): ...
    """
    command.needs_project = False  # type: ignore[attr-defined]
    return command


def needs_project(command: click.Command) -> bool:
    return getattr(command, "needs_project", True)


def _command_to_run(group: click.Group, ctx: click.Context) -> click.Command | None:
    """The leaf command the rest of the command line names, or None when click will show help
    or a usage error instead (no subcommand, an unknown name, ``--help`` anywhere)."""
    protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args  # click < 8.2
    rest = [*protected, *ctx.args]
    if "--" in rest:
        rest = rest[:rest.index("--")]
    if any(arg in ("-h", "--help") for arg in rest):
        return None
    command: click.Command = group
    while isinstance(command, click.Group):
        if not rest:
            return None
        found = command.get_command(ctx, rest.pop(0))
        if found is None:
            return None
        command = found
    return command


def require_project(project: str | Path) -> Path:
    """Stop with one line unless ``project`` is a turnout/psiTurk project folder (it holds a
    ``config.txt`` file). Run before anything is opened, so a command outside a project
    creates no participants.db, marketplace store or log, and does not fall back to
    defaults (sandbox mode, a fresh database) that would mislead the next command."""
    folder = Path(project).absolute()
    config = folder / "config.txt"
    how = "name the project folder with -C DIR, or create one with `turnout init DIR`"
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "no such project folder"
        raise CliError(f"{folder}: {what}; {how}")
    if config.is_dir():
        raise CliError(f"{config} is a folder, not a file; a project's settings live in the file config.txt")
    if not config.exists():
        raise CliError(f"{folder} is not a turnout (psiTurk) project: it has no config.txt; {how}")
    if not os.access(config, os.R_OK):
        raise CliError(f"{config}: cannot read it (permission denied)")
    return folder


def _settings(ctx: click.Context) -> Settings:
    """The project's settings, for any command that needs a project (checks it is one first)."""
    project = ctx.find_root().params.get("project", ctx.obj["project"])
    require_project(project)
    try:
        return load_settings(project)
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


@contextmanager
def project_database(ctx: click.Context) -> Iterator[tuple[Settings, Any]]:
    """The project's settings and database, which must be at turnout's current schema;
    turnout errors raised inside become one-line exits."""
    from turnout.db.migrate import is_current
    from turnout.errors import TurnoutError

    settings = _settings(ctx)
    database = _database(settings)
    try:
        if not is_current(database):
            raise CliError("the database is not at turnout's current schema; run `turnout db upgrade` first")
        yield settings, database
    except TurnoutError as exc:
        raise CliError(exc.message) from None
    finally:
        database.dispose()


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "--project", "project", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="The project folder.")
@click.version_option(package_name="turnout")
@click.pass_context
def main(ctx: click.Context, project: Path) -> None:
    """turnout: run psiTurk-format behavioural experiments and recruit participants."""
    ctx.ensure_object(dict)
    ctx.obj["project"] = project


@no_project
@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--for-demo", is_flag=True, hidden=True, help="Leave out the next steps (make demo does them).")
def init(directory: Path, for_demo: bool) -> None:
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
    if for_demo:
        click.echo(f"Created {directory}, a copy of the Stroop study.")
    else:
        click.echo(f"Created {directory}. Next:\n  cd {directory}\n  turnout db upgrade\n  turnout serve")
    if login_password and not for_demo:
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

    served = settings.served_at() if host is None and port is None else None
    protocol, shown, port = served or ("https" if settings.certfile and settings.keyfile else "http",
                                       host or settings.host, port or settings.port)
    if shown in ("0.0.0.0", "::"):
        shown = "localhost"
    base = f"{protocol}://{shown}:{port}/ad"
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
    from turnout.config import check_database_writable, check_tls_files
    from turnout.db.migrate import upgrade
    from turnout.project import load_project
    from turnout.serving.launcher import run_gunicorn

    settings = _settings(ctx)
    try:
        check_tls_files(settings)
        check_database_writable(settings)
        load_project(settings.project_dir, with_custom=False)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    database = _database(settings)
    upgrade(database)
    database.dispose()
    host, port = host or settings.host, port if port is not None else settings.port
    _check_app_builds(settings)
    if demo:
        from turnout.events import SHOW_ENV

        os.environ[SHOW_ENV] = "1"  # the workers and the runner (arrivals) print events here too
    _start_runner(settings, workers)  # do_scheduler, or the demo's simulated arrivals

    def banner(server: Any) -> None:
        click.echo(serve_banner(settings, server, demo=demo))
        sys.stdout.flush()

    run_gunicorn(settings, host=host, port=port, workers=workers, on_ready=banner)


def serve_banner(settings: Settings, server: Any, *, demo: bool = False) -> str:
    """What ``turnout serve`` prints once gunicorn listens, read from gunicorn's own settings
    (``server`` is its arbiter), so the numbers are what runs, whoever chose them."""
    from sqlalchemy.engine import make_url

    cfg = server.cfg
    bound = server.LISTENERS[0].sock.getsockname() if server.LISTENERS else (settings.host, settings.port)
    host, port = str(cfg.bind[0]).rsplit(":", 1)[0] if cfg.bind else settings.host, int(bound[1])
    shown = "localhost" if host in ("0.0.0.0", "::", "[::]") else host
    protocol = "https" if cfg.certfile else "http"
    base = f"{protocol}://{shown}:{port}"
    threads = f", {cfg.threads} threads each" if cfg.worker_class_str == "gthread" else ""
    workers = f"{cfg.workers} worker process{'es' if cfg.workers != 1 else ''}"
    logfile = settings.logfile
    level = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"][settings.loglevel]
    log = ("the terminal" if logfile in ("", "-")
           else str(Path(logfile) if Path(logfile).is_absolute() else settings.project_dir / logfile))
    lines = [
        f"turnout serving {settings.project_dir} on {base}/ (marketplace mode {settings.default_mode})",
        f"  server: gunicorn, {workers} ({cfg.worker_class_str}{threads}); "
        f"database {make_url(settings.database_url).render_as_string(hide_password=True)}",
        f"  log: {log} (level {level}; loglevel in config.txt)",
        "  open:",
        f"    the experiment, as a debug participant: {debug_url(settings, shown, port)}",
    ]
    if settings.enable_dashboard:
        lines.append(f"    the lab dashboard: {base}/dashboard/")
        if demo:
            from turnout.services.accounts import is_password_hash

            shown_pw = "(the hashed login_pw)" if is_password_hash(settings.login_pw) else settings.login_pw
            lines.append(f"      demo login: {settings.login_username} / {shown_pw}")
    if settings.default_mode == "local":
        lines += [
            f"    the worker site (take the study as an MTurk worker would): {base}/_mturk/worker/",
            f"    the offline MTurk requester endpoint (boto3, turnout hit/worker): {base}/_mturk/"
            " (signed: `turnout marketplace env` prints the keys)",
        ]
        try:
            lines.append(f"  HITs posted in local mode send workers to {settings.ad_url('local')}")
        except ConfigError as exc:
            lines.append(f"  HITs cannot be posted yet: {exc}")
        if settings.simulate_arrival_rate > 0:
            lines.append(f"  simulated workers arrive about {settings.simulate_arrival_rate:g} a minute "
                         "([Marketplace] simulate_arrival_rate)")
    if demo:
        lines.append("  stop with Ctrl-C; the data stays in participants.db "
                     "(`turnout export`, `turnout worker list`)")
        lines.append("  what happens (HIT posted, worker accepted/finished/returned, participant completed):")
    return "\n".join(lines)


def _start_runner(settings: Settings, workers: int | None) -> None:
    from turnout.scheduler.embed import start_with_server

    database = _database(settings)
    try:
        start_with_server(settings, database, workers)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    finally:
        database.dispose()


def _check_app_builds(settings: Settings) -> None:
    """Build the app once in the parent so a broken custom.py stops start-up with its error."""
    from turnout.app import create_app

    try:
        app = create_app(settings)
        if settings.default_mode == "local":  # the offline marketplace's store, before any fork
            from turnout.marketplace.project import open_store

            open_store(settings).close()
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
@click.option("--include-debug", is_flag=True,
              help="Also export debug runs (hitId debug..., or mode debug); left out by default.")
@click.option("--include-excluded", is_flag=True,
              help="Also export rows excluded by `turnout reconcile fix ... exclude`; left out by default.")
@click.pass_context
def export(ctx: click.Context, out_dir: Path, fmt: str, codeversion: str | None, mode: str | None,
           include_debug: bool, include_excluded: bool) -> None:
    """Write the participants' data files (psiTurk's download_datafiles), streamed."""
    from turnout.errors import TurnoutError
    from turnout.services.export import export as run_export

    settings = _settings(ctx)
    database = _database(settings)
    try:
        result = run_export(database, out_dir, fmt=fmt, codeversion=codeversion, mode=mode,
                            include_debug=include_debug, include_excluded=include_excluded)
    except OSError as exc:
        raise CliError(f"cannot write to {out_dir}: {exc.strerror}") from None
    except TurnoutError as exc:
        raise CliError(exc.message) from None
    for kind, n in result.counts.items():
        click.echo(f"{result.files[kind]}: {n} rows")
    if not result.debug_included:
        click.echo(f"left out {result.debug_left_out} debug participants with data "
                   "(pass --include-debug to export them)")
    if result.excluded_left_out:
        click.echo(f"left out {result.excluded_left_out} participants excluded by reconciliation "
                   "(pass --include-excluded to export them)")
    if result.unreadable:
        shown = ", ".join(result.unreadable[:5]) + (", ..." if len(result.unreadable) > 5 else "")
        click.echo(f"left out {len(result.unreadable)} participants whose stored data is not readable "
                   f"task data (not a JSON object, or nested too deeply): {shown}")


import turnout.cli_accounts  # noqa: E402,F401  (turnout user/token/hash-password)
import turnout.cli_local_marketplace  # noqa: E402,F401  (turnout marketplace env)
import turnout.cli_marketplace  # noqa: E402,F401  (turnout hit/worker/ledger/balance/mode)
import turnout.cli_reconcile  # noqa: E402,F401  (turnout reconcile)
import turnout.cli_scheduler  # noqa: E402,F401  (turnout scheduler/campaign/task)
from turnout import cli_simulate  # noqa: E402,F401  (turnout simulate)

if __name__ == "__main__":  # pragma: no cover
    main()
