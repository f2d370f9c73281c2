"""The ``turnout`` command: the root group, and the one place every command module's
commands are registered on it.

Each module of this package is one command group; each parses its arguments, calls one
service and prints. What they share (one-line errors, the project check, opening the
database and the marketplace, output) is in :mod:`turnout.cli.base`, which imports no
command module, so the modules import each other never and this one only here.
"""

from __future__ import annotations

from pathlib import Path

import click

from turnout.cli import (
    accounts,
    hit,
    local_marketplace,
    project,
    reconcile,
    scheduler,
    simulate,
    worker,
)
from turnout.cli.base import CliError, OneLineGroup, needs_project, no_project, require_project

__all__ = ["CliError", "main", "needs_project", "no_project", "require_project"]


@click.group("turnout", cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "--project", "project", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="The project folder.")
@click.version_option(package_name="turnout")
@click.pass_context
def main(ctx: click.Context, project: Path) -> None:
    """turnout: run psiTurk-format behavioural experiments and recruit participants."""
    ctx.ensure_object(dict)
    ctx.obj["project"] = project


for _command in (
    project.init, project.db, project.debug, project.serve, project.export, project.mode_command,  # the project
    hit.hit_group, hit.balance, worker.worker_group, worker.ledger_group,  # psiTurk's hit/worker/amt_balance
    accounts.hash_password_cmd, accounts.user_group, accounts.token_group,  # dashboard accounts
    local_marketplace.marketplace_group, simulate.simulate,  # the offline marketplace
    reconcile.reconcile_group,
    scheduler.scheduler_command, scheduler.campaign_group, scheduler.task_group,
):
    main.add_command(_command)
