"""``turnout reconcile``: this study's records against the marketplace's, and their fixes.

``turnout reconcile`` lists the differences (exit 0 when there are none, 1 when there
are, so a script or cron job can alert); ``turnout reconcile fix ASSIGNMENT_ID REMEDY``
applies one remedy. The rules are in ``turnout.services.reconciliation``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from turnout.cli.base import CliError, confirm, json_option, market, mode_option, yes_option


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        click.echo(f"\rchecked {done}/{total} HITs", err=True, nl=done == total)


@click.group("reconcile", invoke_without_command=True)
@click.option("--codeversion", help="Only this experiment_code_version (default: every codeversion).")
@mode_option
@json_option
@click.pass_context
def reconcile_group(click_ctx: click.Context, codeversion: str | None, mode: str | None, as_json: bool) -> None:
    """Compare this study's HITs on the marketplace with the local records; list every
    difference and the remedies that fit it. Exit status 1 when there are differences."""
    if click_ctx.invoked_subcommand is not None:
        return
    from turnout.services import reconciliation

    with market(click_ctx, mode) as ctx:
        report = reconciliation.check(ctx, codeversion=codeversion, progress=_progress)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        click.echo(_text(report))
    if report.differences:
        raise SystemExit(1)


def _text(report: Any) -> str:
    from turnout.services.reconciliation import KINDS

    scope = f"{report.mode} mode" + (f", codeversion {report.codeversion}" if report.codeversion else "")
    lines = [f"checked {report.checked} assignments on {report.hits} HITs ({scope})"]
    for hit in report.unreadable_hits:
        lines.append(f"  HIT {hit['hit_id']} could not be read: {hit['reason']}")
    if not report.differences:
        lines.append("no differences: the local records and the marketplace agree")
        return "\n".join(lines)
    counts = report.counts()
    lines.append(", ".join(f"{n} {kind}" for kind, n in counts.items()))
    current = None
    for d in report.differences:
        if d.kind != current:
            current = d.kind
            lines.append(f"\n{d.kind} ({counts[d.kind]}): {KINDS[d.kind]}")
        remedies = ", ".join(d.remedies) or "none (see the detail)"
        lines.append(f"  {d.assignment_id}  worker {d.worker_id or '-'}  HIT {d.hit_id or '-'}  "
                     f"local {d.local_status or '-'}  marketplace {d.marketplace_status or '-'}")
        lines.append(f"    {d.detail}")
        lines.append(f"    remedies: {remedies}")
    lines.append("\nfix one with: turnout reconcile fix ASSIGNMENT_ID REMEDY")
    return "\n".join(lines)


@reconcile_group.command("fix")
@click.argument("assignment_id")
@click.argument("remedy", type=click.Choice(["approve", "reject", "pay_bonus", "sync_local", "exclude"]))
@click.option("--reason", help="Feedback for reject, the worker's message for pay_bonus, a note for exclude.")
@yes_option
@mode_option
@json_option
@click.pass_context
def reconcile_fix(click_ctx: click.Context, assignment_id: str, remedy: str, reason: str | None, yes: bool,
                  mode: str | None, as_json: bool) -> None:
    """Apply one remedy to one assignment (through the payments ledger: never pays twice)."""
    from turnout.services import reconciliation

    with market(click_ctx, mode) as ctx:
        confirmed = False
        if ctx.mode == "live" and remedy in ("approve", "reject", "pay_bonus"):
            confirm(f"LIVE MTurk: {remedy} assignment {assignment_id} with real money. Continue?", yes)
            confirmed = True
        result = reconciliation.fix(ctx, assignment_id, remedy, reason=reason, confirm_live=confirmed)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        click.echo(f"{assignment_id}: {remedy}: {result.outcome}: {result.message}")
        for d in result.remaining:
            click.echo(f"  still: {d.kind}: {d.detail}")
    if not result.ok:
        raise CliError(f"{remedy} did not complete ({result.outcome}); nothing else was changed")
