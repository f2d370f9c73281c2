"""psiTurk's shell commands for MTurk as ``turnout`` subcommands: hit, worker, balance, mode.

Each command parses its arguments, opens one marketplace for an explicit ``--mode``
(default: the project's ``launch_in_mode``), calls one service and prints the result,
as text or ``--json``. The rules (what "approve all" covers, when a bonus is refused,
how a payment is kept to once) are in ``turnout.services``; none of them are here.

In local mode the marketplace is the project's offline store (``[Marketplace]
local_store``), served in-process, so the commands work whether or not ``turnout serve``
is running; set ``TURNOUT_MTURK_ENDPOINT`` to talk to a running one over HTTP instead.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from turnout.cli import CliError, _database, _settings, main
from turnout.config import MODES, ConfigError, Settings, load_settings

ENDPOINT_ENV = "TURNOUT_MTURK_ENDPOINT"
SEARCH_URLS = {"sandbox": "https://workersandbox.mturk.com/projects?filters%5Bsearch_term%5D=",
               "live": "https://worker.mturk.com/projects?filters%5Bsearch_term%5D="}


class UsageLine(click.UsageError):
    """A usage error on one line (``turnout: hit create: Missing argument 'N'. ...``)."""

    def show(self, file: Any = None) -> None:
        click.echo(f"turnout: {self.format_message()}", err=True)


def _one_line(command: click.Command, info_name: str | None, args: list[str], parent: click.Context | None,
              make: Callable[..., click.Context], **extra: Any) -> click.Context:
    try:
        return make(info_name, args, parent=parent, **extra)
    except click.UsageError as exc:
        if isinstance(exc, UsageLine):
            raise
        path = " ".join(p for p in ((parent.command_path if parent else "turnout"), info_name or "") if p)
        raise UsageLine(f"{path.removeprefix('turnout ')}: {exc.format_message()} "
                        f"(see {path} --help)") from None


class Command(click.Command):
    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        return _one_line(self, info_name, args, parent, super().make_context, **extra)


class Group(click.Group):
    command_class = Command

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        return _one_line(self, info_name, args, parent, super().make_context, **extra)


Group.group_class = Group


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
    from turnout.marketplace.client import describe_client_error
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


# --- hit ------------------------------------------------------------------------------


@main.group("hit", cls=Group)
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
    from turnout.services import hits, recruitment
    from turnout.services.recruitment import money_str

    count = _parsed(lambda: recruitment.parse_count(n, what="N (the number of assignments)"))
    _parsed(lambda: recruitment.parse_money(reward, what="REWARD", minimum=recruitment.MIN_REWARD))
    _parsed(lambda: recruitment.parse_hours(hours, what="HOURS (the assignment duration)"))
    with market(click_ctx, mode) as ctx:
        request = hits.build_hit_request(ctx, max_assignments=count, reward=reward, duration_hours=hours,
                                         require_qualification_ids=require, block_qualification_ids=block)
        cost = request.cost()
        free = {"local": " (offline marketplace: no real money)", "sandbox": " (sandbox: no real money)"}
        click.echo(f"{ctx.mode} HIT \"{request.title}\": {cost.assignments} assignment(s) x ${money_str(cost.reward)}"
                   f" = ${money_str(cost.rewards)} + MTurk fees ${money_str(cost.fees)} "
                   f"({int(cost.fee_rate * 100)}%) = ${money_str(cost.total)}{free.get(ctx.mode, '')}", err=as_json)
        if cost.assignments >= hits.LARGE_HIT:
            click.echo("  note: 10 or more assignments doubles MTurk's fee (40% instead of 20%)", err=as_json)
        prefix = "LIVE MTurk, real money: " if ctx.mode == "live" else ""
        confirm(f"{prefix}create this HIT?", yes)
        created = hits.create_hit(ctx, max_assignments=count, reward=reward, duration_hours=hours,
                                  require_qualification_ids=require, block_qualification_ids=block,
                                  request_key=request_key, confirm_live=True)
        created["mode"] = ctx.mode
        if ctx.mode in SEARCH_URLS:
            from urllib.parse import quote_plus

            created["worker_search_url"] = SEARCH_URLS[ctx.mode] + quote_plus(request.title)

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


# --- worker ------------------------------------------------------------------------------


@main.group("worker", cls=Group)
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


def _paid_line(result: Any) -> str:
    """What a run paid, as ``hit create`` announces it: to workers, MTurk's fees, total."""
    from turnout.services.recruitment import money_str

    free = {"local": " (offline marketplace: no real money)", "sandbox": " (sandbox: no real money)"}
    return (f"; paid ${money_str(result.paid)} to workers + MTurk fees ${money_str(result.fees)} = "
            f"${money_str(result.total)}{free.get(result.mode, '')}")


def _batch(result: Any, as_json: bool) -> None:
    def text(r: Any) -> str:
        lines = [f"{i.assignment_id}: {i.outcome}: {i.message}" for i in r.items]
        counts = ", ".join(f"{n} {k}" for k, n in sorted(r.counts().items())) or "nothing to do"
        lines.append(f"{r.action} ({r.mode}): {counts}" + (_paid_line(r) if r.paid else ""))
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
    settings: Settings = _settings(click_ctx)
    reason = reason or (settings.get("Shell Parameters", "bonus_message", fallback="") or "")
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


@main.group("ledger", cls=Group)
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


# --- balance, mode -----------------------------------------------------------------------------


@main.command("balance", cls=Command)
@mode_option
@json_option
@click.pass_context
def balance(click_ctx: click.Context, mode: str | None, as_json: bool) -> None:
    """Show the marketplace account's available balance."""
    from turnout.services import hits

    with market(click_ctx, mode) as ctx:
        found = hits.balance(ctx)
    emit(found, as_json, lambda d: f"{d['mode']} balance: ${d['available_balance']}")


_SECTION_RE = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY_RE = re.compile(r"^(\s*launch_in_mode\s*[=:]\s*)([^\r\n]*?)(\s*)$", re.IGNORECASE)


def set_launch_mode(config_path: Path, mode: str) -> None:
    """Rewrite ``[Shell Parameters] launch_in_mode`` in place, keeping every other line,
    comments included; add the key (or the section) when missing."""
    text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    lines = text.splitlines(keepends=True)
    section = None
    header_at = None
    for index, line in enumerate(lines):
        match = _SECTION_RE.match(line)
        if match:
            section = match.group(1).strip()
            if section == "Shell Parameters":
                header_at = index
            continue
        if section == "Shell Parameters":
            key = _KEY_RE.match(line.rstrip("\r\n"))
            if key:
                ending = line[len(line.rstrip("\r\n")):]
                lines[index] = f"{key.group(1)}{mode}{ending}"
                config_path.write_text("".join(lines), encoding="utf-8")
                return
    newline = "\r\n" if "\r\n" in text else "\n"
    if header_at is not None:
        lines.insert(header_at + 1, f"launch_in_mode = {mode}{newline}")
    else:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        lines.append(f"{newline if lines else ''}[Shell Parameters]{newline}launch_in_mode = {mode}{newline}")
    config_path.write_text("".join(lines), encoding="utf-8")


@main.command("mode", cls=Command)
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
