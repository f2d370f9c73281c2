"""``turnout marketplace env``: what a researcher's own boto3 script needs for local mode.

The offline marketplace refuses calls not signed with the project's local key pair (kept
in the store, ``[Marketplace] local_store``, never in config.txt), so a script outside
turnout needs that pair and the endpoint. ``eval "$(turnout marketplace env)"`` sets them::

    export AWS_ACCESS_KEY_ID=AKLOCAL...
    export AWS_SECRET_ACCESS_KEY=...
    export TURNOUT_MTURK_ENDPOINT=http://127.0.0.1:22362/_mturk/
"""

from __future__ import annotations

import shlex

import click

from turnout.cli.base import CliError, _settings
from turnout.config import ConfigError


@click.group("marketplace")
def marketplace_group() -> None:
    """The offline (local) marketplace's access keys for your own scripts."""


@marketplace_group.command("env")
@click.option("--host", help="Host the server is reached at (default: config host; 0.0.0.0 means 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: config port).")
@click.option("--control", is_flag=True,
              help="Also print TURNOUT_MTURK_CONTROL_SECRET, the X-Turnout-Control-Secret value that opens "
                   "the control API from other machines.")
@click.pass_context
def marketplace_env(ctx: click.Context, host: str | None, port: int | None, control: bool) -> None:
    """Print the export lines a boto3 script needs to call the project's offline marketplace.

    Use: eval "$(turnout marketplace env)"; then boto3.client("mturk",
    endpoint_url=os.environ["TURNOUT_MTURK_ENDPOINT"]) signs with the project's local key pair.
    """
    from turnout.marketplace.project import local_endpoint, open_store

    settings = _settings(ctx)
    try:
        state = open_store(settings)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    try:
        key_id, secret = state.credentials
        lines = [f"export AWS_ACCESS_KEY_ID={shlex.quote(key_id)}",
                 f"export AWS_SECRET_ACCESS_KEY={shlex.quote(secret)}",
                 f"export TURNOUT_MTURK_ENDPOINT={shlex.quote(local_endpoint(settings, host, port))}",
                 # boto3 refuses to build a client without a region (NoRegionError); MTurk's is us-east-1.
                 "export AWS_DEFAULT_REGION=us-east-1"]
        if control:
            lines.append(f"export TURNOUT_MTURK_CONTROL_SECRET={shlex.quote(state.control_secret)}")
    finally:
        state.close()
    click.echo("\n".join(lines))
