"""What every ``turnout`` command module shares: the one-line errors, the project check,
opening the project's settings, database and marketplace, confirmation and output.

A leaf: it imports no command module, so any command module can import it (the root
group in ``turnout.cli`` imports the command modules and registers their commands).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from turnout.config import MODES, ConfigError, Settings, load_settings


class CliError(click.ClickException):
    """One clear line on standard error and exit status 1; never a traceback."""

    def show(self, file: Any = None) -> None:
        click.echo(f"turnout: {self.format_message()}", err=True)


class UsageLine(click.UsageError):
    """A malformed command line as one line on standard error (exit status 2), naming the
    command and where to get help: ``turnout: hit create: Missing argument 'N'. (see turnout
    hit create --help)``."""

    def show(self, file: Any = None) -> None:
        click.echo(f"turnout: {self.format_message()}", err=True)


def _one_line(exc: click.UsageError) -> click.UsageError:
    if isinstance(exc, UsageLine):
        return exc
    path = exc.ctx.command_path if exc.ctx else "turnout"
    where = path.partition(" ")[2]
    return UsageLine(f"{where + ': ' if where else ''}{exc.format_message()} (see {path} --help)")


class OneLineGroup(click.Group):
    """The root group. Click prints usage errors as three lines; every turnout command
    prints one, converted here, the one place every command line passes through."""

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
        @click.command("hash-password")
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


def mode_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--mode", type=click.Choice(MODES), default=None,
                        help="Marketplace: local, sandbox or live (default: the project's launch_in_mode).")(f)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)


def yes_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")(f)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"[:128]


@contextmanager
def market(click_ctx: click.Context, mode: str | None) -> Iterator[Any]:
    """A MarketContext for the project and ``mode``; turnout errors become one-line exits."""
    from botocore.exceptions import BotoCoreError, ClientError

    from turnout.clock import SystemClock
    from turnout.db.migrate import is_current
    from turnout.errors import TurnoutError
    from turnout.marketplace.client import ENDPOINT_ENV, describe_client_error
    from turnout.marketplace.port import MarketError
    from turnout.services.context import open_market

    settings = _settings(click_ctx)
    chosen = mode or settings.default_mode
    database = _database(settings)
    try:
        if not is_current(database):
            raise CliError("the database is not at turnout's current schema; run `turnout db upgrade` first")
        clock = SystemClock()
        endpoint = os.environ.get(ENDPOINT_ENV) if chosen == "local" else None
        yield open_market(settings, database, chosen, _actor(), clock, endpoint_url=endpoint or None,
                          check_credentials=False)
    except TurnoutError as exc:
        raise CliError(exc.message) from None
    except (ClientError, BotoCoreError) as exc:
        raise CliError(describe_client_error(exc)) from None
    except MarketError as exc:
        raise CliError(exc.description) from None
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    finally:
        database.dispose()


def confirm(question: str, yes: bool) -> None:
    """Ask; ``--yes`` skips. Without a usable standard input this refuses instead of hanging."""
    if yes:
        return
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise CliError(f"{question} -- not confirmed (no input to ask on); pass --yes to confirm")
    try:
        agreed = click.confirm(question, default=False)
    except (click.Abort, EOFError):
        click.echo("", err=True)
        raise CliError("not confirmed (no answer on standard input); pass --yes to confirm") from None
    if not agreed:
        raise CliError("cancelled; nothing was done")


def confirm_money(ctx: Any, what: str, yes: bool) -> bool:
    """Live money actions need a yes from a person (or ``--yes``); other modes do not."""
    if ctx.mode == "live":
        confirm(f"LIVE MTurk: {what} with real money. Continue?", yes)
    return True


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        out = text(data)
        if out:
            click.echo(out)


def _parsed(parse: Callable[[], Any]) -> Any:
    """Run one of the services' parsers (the rules live there, shared with the dashboard
    and the API); a refusal is one line and exit status 1."""
    from turnout.errors import TurnoutError

    try:
        return parse()
    except TurnoutError as exc:
        raise CliError(exc.message) from None


def other_projects_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--allow-other-projects", "allow_other", is_flag=True,
                        help="Act on assignments or a HIT that are not this project's (another project sharing "
                             "the marketplace account); refused without it.")(f)


def _when(value: Any) -> str:
    """A time for people: to the second, in the local time zone (``2026-01-01 13:00:00 CET``)."""
    from datetime import datetime

    if value in (None, ""):
        return ""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return str(value)
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _money(value: Any) -> str:
    """Dollars with two decimals (``0.5`` -> ``0.50``); anything else as it is."""
    from decimal import Decimal, InvalidOperation

    if value in (None, ""):
        return ""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{amount:.2f}" if amount.is_finite() and abs(amount) < 10**12 else str(value)


def _status_name(code: Any) -> str:
    """psiTurk's participant status code as its name (``5`` -> ``credited``)."""
    from turnout.experiment.status import Status

    try:
        return Status(int(code)).name.lower().replace("_", " ")
    except (TypeError, ValueError):
        return "" if code is None else str(code)


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) if c is not None else "" for c in header]] + [[str(c) if c is not None else "" for c in r]
                                                                     for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)
