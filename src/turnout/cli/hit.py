"""``turnout hit`` and ``turnout balance``: psiTurk's hit shell commands and amt_balance.

Each command parses its arguments, opens one marketplace for an explicit ``--mode``
(default: the project's ``launch_in_mode``), calls one service and prints the result,
as text or ``--json``. The rules (what "approve all" covers, when a bonus is refused,
how a payment is kept to once) are in ``turnout.services``; none of them are here.

In local mode the marketplace is the project's offline store (``[Marketplace]
local_store``), served in-process, so the commands work whether or not ``turnout serve``
is running; set ``TURNOUT_MTURK_ENDPOINT`` to talk to a running one over HTTP instead.
"""

from __future__ import annotations

from typing import Any

import click

from turnout.cli.base import (
    CliError,
    _money,
    _parsed,
    _table,
    _when,
    confirm,
    confirm_money,
    emit,
    json_option,
    market,
    mode_option,
    yes_option,
)


@click.group("hit")
def hit_group() -> None:
    """Create, list, expire, delete and extend HITs (psiTurk's `hit` shell commands)."""


@hit_group.command("create")
@click.argument("n", metavar="N")
@click.argument("reward", metavar="REWARD")
@click.argument("hours", metavar="HOURS")
@click.option("--require-qualification-id", "require", multiple=True, metavar="ID",
              help="Only workers who hold this qualification (repeatable).")
@click.option("--block-qualification-id", "block", multiple=True, metavar="ID",
              help="Keep out workers who hold this qualification (repeatable).")
@click.option("--request-key", metavar="KEY",
              help="Make the create idempotent: the same key never posts a second HIT.")
@yes_option
@mode_option
@json_option
@click.pass_context
def hit_create(click_ctx: click.Context, n: str, reward: str, hours: str, require: tuple[str, ...],
               block: tuple[str, ...], request_key: str | None, yes: bool, mode: str | None, as_json: bool) -> None:
    """Post a HIT of N assignments paying REWARD dollars, HOURS long per assignment.

    Title, description, keywords, lifetime and qualifications come from config.txt
    [HIT Configuration]. Shows the cost with MTurk's fees and asks first.
    """
    from turnout.services import hits, money, recruitment

    count = _parsed(lambda: recruitment.parse_count(n, what="N (the number of assignments)"))
    _parsed(lambda: recruitment.parse_money(reward, what="REWARD", minimum=recruitment.MIN_REWARD))
    _parsed(lambda: recruitment.parse_hours(hours, what="HOURS (the assignment duration)"))
    with market(click_ctx, mode) as ctx:
        request = hits.build_hit_request(ctx, max_assignments=count, reward=reward, duration_hours=hours,
                                         require_qualification_ids=require, block_qualification_ids=block)
        cost = request.cost()
        click.echo(money.hit_cost_line(ctx.mode, request.title, cost), err=as_json)
        note = money.large_hit_note(cost)
        if note:
            click.echo(f"  {note}", err=as_json)
        prefix = "LIVE MTurk, real money: " if ctx.mode == "live" else ""
        confirm(f"{prefix}create this HIT?", yes)
        created = hits.create_hit(ctx, max_assignments=count, reward=reward, duration_hours=hours,
                                  require_qualification_ids=require, block_qualification_ids=block,
                                  request_key=request_key, confirm_live=True)
        created["mode"] = ctx.mode
        search = hits.worker_search_url(ctx.mode, request.title)
        if search:
            created["worker_search_url"] = search

    def text(d: dict[str, Any]) -> str:
        lines = [f"{'already created' if d['repeat'] else 'created'} {d['mode']} HIT {d['hit_id']}"]
        if d.get("ad_url"):
            lines.append(f"  ad: {d['ad_url']}")
        if d.get("worker_search_url"):
            lines.append(f"  find it as a worker: {d['worker_search_url']}")
        return "\n".join(lines)

    emit(created, as_json, text)


@hit_group.command("list")
@click.option("--active", is_flag=True, help="Only HITs that have not expired.")
@click.option("--reviewable", is_flag=True, help="Only Reviewable (or Reviewing) HITs.")
@click.option("--all-studies", is_flag=True, help="Every HIT of the account, not only this study's.")
@mode_option
@json_option
@click.pass_context
def hit_list(click_ctx: click.Context, active: bool, reviewable: bool, all_studies: bool, mode: str | None,
             as_json: bool) -> None:
    """List this study's HITs with psiTurk's counts."""
    from turnout.services import hits

    if active and reviewable:
        raise CliError("choose at most one of --active and --reviewable")
    with market(click_ctx, mode) as ctx:
        found = hits.list_hits(ctx, all_studies=all_studies, active=active, reviewable=reviewable)

    def text(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "no HITs"
        table = _table([(h["hitid"], h["status"], h["max_assignments"], h["number_assignments_completed"],
                          h["number_assignments_pending"], h["number_assignments_available"],
                          h["number_submissions_needing_action"], _money(h["reward"]), _when(h["expiration"]),
                          h["codeversion"]) for h in rows],
                        ("HIT", "status", "max", "reviewed", "pending", "available", "to review", "reward",
                         "expires", "codeversion"))
        return table + ("\nreviewed = approved or rejected (MTurk's NumberOfAssignmentsCompleted, psiTurk's "
                        "\"completed\"); to review = submitted, waiting for approve or reject")

    emit(found, as_json, text)


def _ids_or_all(all_: bool, ids: tuple[str, ...], what: str) -> None:
    if all_ and ids:
        raise CliError(f"give either --all or {what} ids, not both")
    if not all_ and not ids:
        raise CliError(f"give --all or one or more {what} ids")


def _results(results: list[dict[str, Any]], as_json: bool) -> None:
    emit(results, as_json, lambda rs: "\n".join(r["message"] for r in rs) or "nothing to do")
    if any(not r["ok"] for r in results):
        raise SystemExit(1)


@hit_group.command("expire")
@click.option("--all", "all_", is_flag=True, help="Every active HIT of this study.")
@click.argument("hit_ids", nargs=-1, metavar="[HITID]...")
@mode_option
@json_option
@click.pass_context
def hit_expire(click_ctx: click.Context, all_: bool, hit_ids: tuple[str, ...], mode: str | None, as_json: bool) -> None:
    """Expire HITs now, so no new worker can accept them."""
    from turnout.services import hits

    _ids_or_all(all_, hit_ids, "HIT")
    with market(click_ctx, mode) as ctx:
        results = hits.expire_all(ctx) if all_ else hits.expire_hits(ctx, list(hit_ids))
    _results(results, as_json)


@hit_group.command("delete")
@click.option("--all", "all_", is_flag=True, help="Every deletable HIT of this study.")
@click.argument("hit_ids", nargs=-1, metavar="[HITID]...")
@mode_option
@json_option
@click.pass_context
def hit_delete(click_ctx: click.Context, all_: bool, hit_ids: tuple[str, ...], mode: str | None, as_json: bool) -> None:
    """Delete finished HITs (expired, with all submitted work approved or rejected)."""
    from turnout.services import hits

    _ids_or_all(all_, hit_ids, "HIT")
    with market(click_ctx, mode) as ctx:
        results = hits.delete_all(ctx) if all_ else hits.delete_hits(ctx, list(hit_ids))
    _results(results, as_json)


@hit_group.command("extend")
@click.argument("hit_id", metavar="HITID")
@click.option("--assignments", type=int, metavar="N", help="Add N assignments.")
@click.option("--expiration", "minutes", type=int, metavar="MINUTES", help="Add MINUTES to the HIT's lifetime.")
@yes_option
@mode_option
@json_option
@click.pass_context
def hit_extend(click_ctx: click.Context, hit_id: str, assignments: int | None, minutes: int | None,
               yes: bool, mode: str | None, as_json: bool) -> None:
    """Add assignments and/or time to a HIT (never from under 10 assignments to 10 or more)."""
    from turnout.services import hits

    with market(click_ctx, mode) as ctx:
        if assignments:
            confirm_money(ctx, f"add {assignments} assignment(s) to HIT {hit_id}", yes)
        done = hits.extend_hit(ctx, hit_id, assignments=assignments, minutes=minutes, confirm_live=True)

    def text(d: dict[str, Any]) -> str:
        parts = []
        if "max_assignments" in d:
            parts.append(f"now {d['max_assignments']} assignments")
        if "expiration" in d:
            parts.append(f"expires {d['expiration']}")
        return f"extended HIT {d['hit_id']}: " + ", ".join(parts)

    emit(done, as_json, text)


@click.command("balance")
@mode_option
@json_option
@click.pass_context
def balance(click_ctx: click.Context, mode: str | None, as_json: bool) -> None:
    """Show the marketplace account's available balance."""
    from turnout.services import hits

    with market(click_ctx, mode) as ctx:
        found = hits.balance(ctx)
    emit(found, as_json, lambda d: f"{d['mode']} balance: ${d['available_balance']}")
