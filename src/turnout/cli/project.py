"""``turnout init``, ``db upgrade``, ``debug``, ``serve``, ``export`` and ``mode``: the
project's own commands. Each parses its arguments, calls one service, prints."""

from __future__ import annotations

import os
import secrets
import shutil
import string
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click

from turnout.cli.base import (
    CliError,
    _database,
    _settings,
    emit,
    json_option,
    mode_option,
    no_project,
)
from turnout.config import MODES, ConfigError, Settings, load_settings, set_launch_mode


@no_project
@click.command()
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


@click.group()
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


@click.command()
@click.option("-p", "--print-only", is_flag=True, help="Accepted for psiTurk compatibility; turnout only prints.")
@click.pass_context
def debug(ctx: click.Context, print_only: bool) -> None:
    """Print a URL that walks the experiment as a new debug participant."""
    click.echo(debug_url(_settings(ctx)))


@click.command()
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


@click.command()
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


@click.command("mode")
@click.argument("new_mode", required=False, type=click.Choice(MODES), metavar="[local|sandbox|live]")
@mode_option
@json_option
@click.pass_context
def mode_command(click_ctx: click.Context, new_mode: str | None, mode: str | None, as_json: bool) -> None:
    """Print the project's marketplace mode, or set it (launch_in_mode in config.txt)."""
    settings = _settings(click_ctx)
    origin = settings.raw.where("Shell Parameters", "launch_in_mode").split(" [")[0]
    if new_mode is None:
        shown = mode or settings.default_mode
        emit({"mode": shown, "source": "--mode" if mode else origin}, as_json,
             lambda d: f"{d['mode']} (from {d['source']})")
        return
    config_path = settings.project_dir / "config.txt"
    try:
        set_launch_mode(config_path, new_mode)
    except OSError as exc:
        raise CliError(f"cannot write {config_path}: {exc.strerror}") from None
    try:
        after = load_settings(settings.project_dir)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    data = {"mode": after.default_mode, "source": "config.txt", "changed_from": settings.default_mode}
    if after.default_mode != new_mode:
        data["warning"] = (f"config.txt now says {new_mode}, but "
                           f"{after.raw.where('Shell Parameters', 'launch_in_mode').split(' [')[0]} overrides it")
    emit(data, as_json, lambda d: f"mode: {d['changed_from']} -> {new_mode} (config.txt)"
         + (f"\nwarning: {d['warning']}" if d.get("warning") else ""))
