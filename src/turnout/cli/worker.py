"""``turnout worker`` and ``turnout ledger``: psiTurk's worker shell commands, through
the payments ledger (each payment at most once), and the ledger itself.

As with ``turnout hit``: each command opens one marketplace for ``--mode``, calls one
service and prints the result, as text or ``--json``; the rules are in
``turnout.services.payments``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from turnout.cli.base import (
    CliError,
    _money,
    _parsed,
    _settings,
    _status_name,
    _table,
    _when,
    confirm_money,
    emit,
    json_option,
    market,
    mode_option,
    other_projects_option,
    yes_option,
)


@click.group("worker")
def worker_group() -> None:
    """List, approve, reject, unreject and bonus assignments, through the payments ledger."""


@worker_group.command("list")
@click.option("--submitted", "status", flag_value="Submitted", help="Only submitted (not yet reviewed).")
@click.option("--approved", "status", flag_value="Approved", help="Only approved.")
@click.option("--rejected", "status", flag_value="Rejected", help="Only rejected.")
@click.option("--hit", "hit_ids", multiple=True, metavar="ID", help="Only this HIT's (repeatable).")
@click.option("--all-studies", is_flag=True, help="Assignments of every HIT of the account.")
@mode_option
@json_option
@click.pass_context
def worker_list(click_ctx: click.Context, status: str | None, hit_ids: tuple[str, ...], all_studies: bool,
                mode: str | None, as_json: bool) -> None:
    """List assignments, with the local participant row and ledger state of each."""
    from turnout.services import hits

    with market(click_ctx, mode) as ctx:
        rows = hits.list_assignments(ctx, hit_ids=list(hit_ids) or None, status=status, all_studies=all_studies)

    def text(rs: list[dict[str, Any]]) -> str:
        if not rs:
            return "no assignments"
        return _table([(r["assignmentId"], r["workerId"], r["hitId"], r["status"],
                        _status_name(r["local_status"]) if r["uniqueid"] else "-",
                        _money(r["bonus"]) if r["uniqueid"] else "-", _when(r["submit_time"]), _bonus_paid(r))
                       for r in rs],
                      ("assignment", "worker", "HIT", "status", "participant", "bonus column", "submitted",
                       "bonus paid"))

    emit(rows, as_json, text)


def _bonus_paid(row: dict[str, Any]) -> str:
    """What the marketplace paid (its own ListBonusPayments); where the ledger says
    otherwise, both, so a difference is never hidden."""
    market, ledger = row.get("bonuses_marketplace"), row["bonuses_paid"]
    if market is None:
        return (",".join(ledger) or "-") + " (ledger; marketplace not checked)"
    shown = ",".join(market) or "-"
    if row.get("bonus_mismatch"):
        shown += f" (ledger: {','.join(ledger) or 'none'})"
    return shown


def _target_args(all_: bool, hit_id: str | None, ids: tuple[str, ...], *, allow_all: bool = True) -> None:
    chosen = sum([bool(all_), hit_id is not None, bool(ids)])
    options = "--all, --hit ID or assignment ids" if allow_all else "--hit ID or assignment ids"
    if chosen != 1:
        raise CliError(f"give exactly one of {options}")


def _batch(result: Any, as_json: bool) -> None:
    from turnout.services.money import paid_line

    def text(r: Any) -> str:
        lines = [f"{i.assignment_id}: {i.outcome}: {i.message}" for i in r.items]
        counts = ", ".join(f"{n} {k}" for k, n in sorted(r.counts().items())) or "nothing to do"
        lines.append(f"{r.action} ({r.mode}): {counts}" + (paid_line(r) if r.paid else ""))
        return "\n".join(lines)

    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        click.echo(text(result))
    if not result.ok:
        raise SystemExit(1)


@worker_group.command("approve")
@click.option("--all", "all_", is_flag=True, help="Every submitted assignment of this study, mode and codeversion.")
@click.option("--hit", "hit_id", metavar="ID", help="The submitted assignments of this HIT.")
@click.option("--codeversion", help="With --all: this experiment_code_version (default: the project's).")
@click.argument("assignment_ids", nargs=-1, metavar="[ASSIGNMENTID]...")
@other_projects_option
@yes_option
@mode_option
@json_option
@click.pass_context
def worker_approve(click_ctx: click.Context, all_: bool, hit_id: str | None, codeversion: str | None,
                   assignment_ids: tuple[str, ...], allow_other: bool, yes: bool, mode: str | None,
                   as_json: bool) -> None:
    """Approve work (pays the reward). Approving twice never pays twice."""
    from turnout.services import payments

    _target_args(all_, hit_id, assignment_ids)
    with market(click_ctx, mode) as ctx:
        confirmed = confirm_money(ctx, "approve assignments (paying their reward)", yes)
        if all_:
            result = payments.approve_all(ctx, codeversion=codeversion, confirm_live=confirmed)
        elif hit_id:
            result = payments.approve_hit(ctx, hit_id, confirm_live=confirmed, allow_other_projects=allow_other)
        else:
            result = payments.approve(ctx, list(assignment_ids), confirm_live=confirmed,
                                      allow_other_projects=allow_other)
    _batch(result, as_json)


@worker_group.command("reject")
@click.option("--hit", "hit_id", metavar="ID", help="The submitted assignments of this HIT.")
@click.option("--feedback", help="What the worker is told (RequesterFeedback).")
@click.argument("assignment_ids", nargs=-1, metavar="[ASSIGNMENTID]...")
@other_projects_option
@yes_option
@mode_option
@json_option
@click.pass_context
def worker_reject(click_ctx: click.Context, hit_id: str | None, feedback: str | None,
                  assignment_ids: tuple[str, ...], allow_other: bool, yes: bool, mode: str | None,
                  as_json: bool) -> None:
    """Reject submitted work, with feedback to the worker (recorded in the ledger)."""
    from turnout.services import payments

    _target_args(False, hit_id, assignment_ids, allow_all=False)
    with market(click_ctx, mode) as ctx:
        confirmed = confirm_money(ctx, "reject assignments", yes)
        if hit_id:
            result = payments.reject_hit(ctx, hit_id, feedback=feedback, confirm_live=confirmed,
                                         allow_other_projects=allow_other)
        else:
            result = payments.reject(ctx, list(assignment_ids), feedback=feedback, confirm_live=confirmed,
                                     allow_other_projects=allow_other)
    _batch(result, as_json)


@worker_group.command("unreject")
@click.option("--hit", "hit_id", metavar="ID", help="The rejected assignments of this HIT.")
@click.argument("assignment_ids", nargs=-1, metavar="[ASSIGNMENTID]...")
@other_projects_option
@yes_option
@mode_option
@json_option
@click.pass_context
def worker_unreject(click_ctx: click.Context, hit_id: str | None, assignment_ids: tuple[str, ...],
                    allow_other: bool, yes: bool, mode: str | None, as_json: bool) -> None:
    """Approve rejected work (within MTurk's 30 days); failures are reported as failures."""
    from turnout.services import payments

    _target_args(False, hit_id, assignment_ids, allow_all=False)
    with market(click_ctx, mode) as ctx:
        confirmed = confirm_money(ctx, "approve rejected assignments (paying their reward)", yes)
        if hit_id:
            result = payments.unreject_hit(ctx, hit_id, confirm_live=confirmed, allow_other_projects=allow_other)
        else:
            result = payments.unreject(ctx, list(assignment_ids), confirm_live=confirmed,
                                       allow_other_projects=allow_other)
    _batch(result, as_json)


@worker_group.command("bonus")
@click.option("--amount", metavar="X", help="Pay X dollars each, e.g. 1.25.")
@click.option("--auto", is_flag=True, help="Pay each participant's `bonus` column (set by custom.py).")
@click.option("--reason", metavar="R", help="Shown to the worker (default: [Shell Parameters] bonus_message).")
@click.option("--all", "all_", is_flag=True, help="Every approved assignment of this study, mode and codeversion.")
@click.option("--hit", "hit_id", metavar="ID", help="The approved assignments of this HIT.")
@click.option("--codeversion", help="With --all: this experiment_code_version (default: the project's).")
@click.option("--override-bonused-status", "override", is_flag=True,
              help="Pay AGAIN an assignment that already got a bonus: one further payment per amount and "
                   "reason (re-running the same request does not pay a third time).")
@click.argument("assignment_ids", nargs=-1, metavar="[ASSIGNMENTID]...")
@other_projects_option
@yes_option
@mode_option
@json_option
@click.pass_context
def worker_bonus(click_ctx: click.Context, amount: str | None, auto: bool, reason: str | None, all_: bool,
                 hit_id: str | None, codeversion: str | None, override: bool, assignment_ids: tuple[str, ...],
                 allow_other: bool, yes: bool, mode: str | None, as_json: bool) -> None:
    """Pay bonuses to approved work, each exactly once (a repeat is refused unless
    --override-bonused-status)."""
    from turnout.services import payments, recruitment

    if (amount is None) == (not auto):
        raise CliError("give exactly one of --amount X and --auto")
    if amount is not None:
        _parsed(lambda: recruitment.parse_money(amount, what="--amount"))
    _target_args(all_, hit_id, assignment_ids)
    reason = payments.default_bonus_reason(_settings(click_ctx), reason)
    if not reason.strip():
        raise CliError("--reason is required (or set [Shell Parameters] bonus_message); MTurk shows it to the worker")
    value: str = payments.AUTO if auto else str(amount)
    with market(click_ctx, mode) as ctx:
        preview = payments.preview_bonus(ctx, override=override)
        if preview:
            click.echo(f"note: {preview}", err=True)
        confirmed = confirm_money(ctx, "pay bonuses" + (" (paying AGAIN where already bonused)" if override else ""),
                                  yes)
        if all_:
            result = payments.bonus_all(ctx, amount=value, reason=reason, codeversion=codeversion,
                                        override=override, confirm_live=confirmed)
        elif hit_id:
            result = payments.bonus_hit(ctx, hit_id, amount=value, reason=reason, override=override,
                                        confirm_live=confirmed, allow_other_projects=allow_other)
        else:
            result = payments.bonus(ctx, list(assignment_ids), amount=value, reason=reason, override=override,
                                    confirm_live=confirmed, allow_other_projects=allow_other)
    _batch(result, as_json)


# --- ledger -------------------------------------------------------------------------------


@click.group("ledger")
def ledger_group() -> None:
    """The payments ledger: what was paid, and finishing payments left unknown."""


@ledger_group.command("list")
@click.option("--assignment", "assignment_id", metavar="ID", help="Only this assignment's entries.")
@click.option("--kind", type=click.Choice(["approve", "reject", "unreject", "bonus"]))
@click.option("--limit", type=click.IntRange(1, 100000), default=1000, show_default=True)
@mode_option
@json_option
@click.pass_context
def ledger_list(click_ctx: click.Context, assignment_id: str | None, kind: str | None, limit: int,
                mode: str | None, as_json: bool) -> None:
    """Ledger entries of this study and mode, newest first."""
    from turnout.services import payments

    with market(click_ctx, mode) as ctx:
        rows = payments.ledger_entries(ctx, assignment_id=assignment_id, kind=kind, limit=limit)
    emit(rows, as_json, lambda rs: _table(
        [(r["id"], r["kind"], r["assignment_id"], _money(r["amount"]), r["state"], r["attempts"],
          _when(r["created_at"]), r["error"]) for r in rs],
        ("#", "kind", "assignment", "amount", "state", "tries", "created", "note")) if rs else "ledger is empty")


@ledger_group.command("settle")
@mode_option
@json_option
@click.pass_context
def ledger_settle(click_ctx: click.Context, mode: str | None, as_json: bool) -> None:
    """Finish payments whose outcome was left unknown (safe to run any time, in parallel)."""
    from turnout.services import payments

    with market(click_ctx, mode) as ctx:
        result = payments.settle_all(ctx)
    _batch(result, as_json)
