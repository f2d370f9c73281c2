"""``turnout hash-password``, ``turnout user add|list|remove``, ``turnout token create|list|revoke``.

Lab accounts and API tokens for the dashboard. Passwords are read from a hidden prompt or,
with ``--password-stdin``, from standard input (for scripts); they are never arguments,
which would leave them in shell history and ``ps``.
"""

from __future__ import annotations

import sys

import click

from turnout.cli.base import CliError, no_project, project_database
from turnout.services.accounts import ROLES


def _read_password(from_stdin: bool, *, confirm: bool = True) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CliError("no password on standard input")
        return line
    if not sys.stdin or not sys.stdin.isatty():
        raise CliError("no terminal to ask for the password on; pipe it in with --password-stdin")
    try:
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=confirm))
    except click.Abort:
        raise CliError("cancelled; nothing was done") from None


_accounts_db = project_database  # settings and database at the current schema, errors as one line


@no_project  # a password hash needs no project folder
@click.command("hash-password")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def hash_password_cmd(password_stdin: bool) -> None:
    """Print a hash of a password, to put in config.txt as login_pw."""
    from turnout.errors import TurnoutError
    from turnout.services.accounts import hash_password

    try:
        hashed = hash_password(_read_password(password_stdin))
    except TurnoutError as exc:
        raise CliError(exc.message) from None
    click.echo(hashed.replace("%", "%%"))


@click.group("user")
def user_group() -> None:
    """Lab accounts for the dashboard (the config login is the first admin)."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="viewer: sees and exports; payer: also pays and manages HITs; admin: also accounts.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def user_add(click_ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add a dashboard account NAME with a role."""
    from turnout.clock import SystemClock
    from turnout.services import accounts

    password = _read_password(password_stdin)
    with _accounts_db(click_ctx) as (settings, database):
        accounts.add_user(database, settings, name, password, role, clock=SystemClock())
    click.echo(f"added user {name} ({role})")


@user_group.command("list")
@click.pass_context
def user_list(click_ctx: click.Context) -> None:
    """List the dashboard accounts."""
    from turnout.services import accounts

    with _accounts_db(click_ctx) as (settings, database):
        rows = accounts.list_users(database, settings)
    for row in rows:
        click.echo(f"{row['username']}\t{row['role']}\t{row['source']}")


@user_group.command("remove")
@click.argument("name")
@click.pass_context
def user_remove(click_ctx: click.Context, name: str) -> None:
    """Remove account NAME; its sessions end at their next request."""
    from turnout.clock import SystemClock
    from turnout.services import accounts

    with _accounts_db(click_ctx) as (_settings_, database):
        accounts.remove_user(database, name, clock=SystemClock())  # audited
    click.echo(f"removed user {name}")


@click.group("token")
def token_group() -> None:
    """API tokens for scripts (Authorization: Bearer <token>)."""


@token_group.command("create")
@click.option("--name", default="script", show_default=True, help="A name to recognise the token by.")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.pass_context
def token_create(click_ctx: click.Context, name: str, role: str) -> None:
    """Create a token; it is printed once, as the last line (only its hash is stored)."""
    from turnout.clock import SystemClock
    from turnout.services import accounts

    with _accounts_db(click_ctx) as (_settings_, database):
        row, token = accounts.create_token(database, name=name, role=role, clock=SystemClock())
    click.echo(f"token #{row['id']} {name} ({role}); shown only now:")
    click.echo(token)


@token_group.command("list")
@click.pass_context
def token_list(click_ctx: click.Context) -> None:
    """List tokens (never the tokens themselves)."""
    from turnout.services import accounts

    with _accounts_db(click_ctx) as (_settings_, database):
        rows = accounts.list_tokens(database)
    for row in rows:
        state = "revoked" if row["revoked"] else "active"
        click.echo(f"{row['id']}\t{row['name']}\t{row['role']}\t{row['prefix']}…\t{state}\t"
                   f"last used {row['last_used_at'] or 'never'}")


@token_group.command("revoke")
@click.argument("token_id", metavar="ID_OR_NAME")
@click.pass_context
def token_revoke(click_ctx: click.Context, token_id: str) -> None:
    """Revoke a token by its id or name."""
    from turnout.clock import SystemClock
    from turnout.services import accounts

    with _accounts_db(click_ctx) as (_settings_, database):
        n = accounts.revoke_token(database, token_id, clock=SystemClock())
    click.echo(f"revoked {n} token(s)")
