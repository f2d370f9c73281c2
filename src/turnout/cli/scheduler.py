"""``turnout scheduler``, ``turnout campaign ...`` and ``turnout task ...``.

Creating, changing and cancelling campaigns and tasks only writes rows; the runner
(``turnout scheduler``) notices them within seconds and runs them. So these commands work
whether or not a runner is up, and they say so when none is.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from turnout.cli.base import (
    CliError,
    _actor,
    _table,
    confirm,
    emit,
    json_option,
    market,
    mode_option,
    project_database,
)

_db = project_database  # settings and database at the current schema, errors as one line


def _runner_note(database: Any) -> str:
    from turnout.services.tasks import runner_status

    if runner_status(database)["alive"]:
        return ""
    return ("note: no runner is running for this database, so nothing will run until one starts: "
            "`turnout scheduler` (or do_scheduler = true with threads = 1)")


# --- turnout scheduler ---------------------------------------------------------------------------


@click.command("scheduler")
@click.option("--watch-pid", type=int, hidden=True, help="Stop when this process ends (used by turnout serve).")
@click.option("--lease-seconds", type=click.IntRange(3, 3600), default=30, hidden=True,
              help="How long a silent runner keeps its lease (tests shorten it).")
@click.pass_context
def scheduler_command(click_ctx: click.Context, watch_pid: int | None, lease_seconds: int) -> None:
    """Run the task runner: campaigns, scheduled tasks, ledger settling (one per database)."""
    from turnout.config import ConfigError
    from turnout.errors import TurnoutError
    from turnout.scheduler.lease import LeaseHeld
    from turnout.scheduler.runner import Runner
    from turnout.serving.launcher import configure_logging

    with _db(click_ctx) as (settings, database):
        try:
            configure_logging(settings)
        except OSError as exc:
            raise CliError(f"cannot open the log file: {exc}") from None
        runner = Runner(settings, database, lease_seconds=lease_seconds,
                        renew_seconds=min(5.0, lease_seconds / 3))

        def stop(*_: Any) -> None:
            runner.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            runner.start()
        except LeaseHeld as exc:
            raise CliError(f"scheduler not started: {exc.message}") from None
        except (ConfigError, TurnoutError) as exc:
            runner.shutdown()
            raise CliError(str(getattr(exc, "message", exc))) from None
        if watch_pid is None:
            click.echo(f"turnout scheduler running for {settings.project_dir} (job table {settings.tables.jobs}); "
                       "stop with Ctrl-C")
            sys.stdout.flush()
        try:
            while not runner.stopped.wait(1.0):
                if watch_pid is not None and not _alive(watch_pid):
                    break
        finally:
            runner.shutdown()
        if runner.lost_lease:
            raise CliError("scheduler stopped: another runner took over its lease (this one had stopped renewing)")


def _alive(pid: int) -> bool:
    from turnout.scheduler.runner import _alive as alive

    return alive(pid)


# --- turnout campaign ----------------------------------------------------------------------------


@click.group("campaign")
def campaign_group() -> None:
    """Recruit to a goal of completed participants, in rounds of HITs of at most 9."""


def _money(text: str | None) -> str:
    return f"${text}" if text is not None else "-"


@campaign_group.command("create")
@click.option("--goal", required=True, metavar="N", help="Completed participants to reach.")
@click.option("--per-round", "per_round", required=True, metavar="K", help="Assignments a round may post at most.")
@click.option("--interval", "interval", required=True, metavar="MINUTES", help="Minutes between rounds.")
@click.option("--reward", required=True, metavar="X", help="HIT reward in dollars, e.g. 1.50.")
@click.option("--duration", required=True, metavar="HOURS", help="Hours a worker has for one assignment.")
@click.option("--budget", metavar="X", help="Stop before rewards plus fees would exceed X dollars.")
@click.option("--codeversion", help="experiment_code_version to recruit for (default: the project's).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@mode_option
@json_option
@click.pass_context
def campaign_create(click_ctx: click.Context, goal: str, per_round: str, interval: str, reward: str, duration: str,
                    budget: str | None, codeversion: str | None, yes: bool, mode: str | None, as_json: bool) -> None:
    """Start a campaign: its first round runs as soon as a runner sees it."""
    from turnout.clock import SystemClock
    from turnout.services import campaigns, money

    options = {"goal": goal, "per_round": per_round, "interval_minutes": interval, "reward": reward,
               "duration_hours": duration, "budget": budget, "mode": mode, "codeversion": codeversion}
    with _db(click_ctx) as (settings, database):
        checked = campaigns.plan(database, settings, **options)
        first = " + ".join(str(n) for n in checked.first_round)
        lines = [
            f"{checked.mode} campaign for codeversion {checked.codeversion}: goal {checked.goal} completed "
            f"({checked.completed} so far), up to {checked.per_round} assignment(s) every "
            f"{checked.interval_minutes} minute(s), ${checked.reward} each, {checked.duration_hours:g} h to do it"
            f"{money.no_real_money(checked.mode)}",
            f"  first round: HITs of {first} assignment(s) = ${checked.first_round_cost()} with MTurk's fees",
            f"  the whole goal, if every assignment completes: ${checked.full_cost()} with fees"
            + (f"; budget ${checked.budget}" if checked.budget is not None else "; no budget limit"),
        ]
        click.echo("\n".join(lines), err=as_json)
        prefix = "LIVE MTurk, real money: " if checked.mode == "live" else ""
        confirm(f"{prefix}start this campaign?", yes)
        created = campaigns.create(database, settings, SystemClock(), actor=_actor(), **options)
        note = _runner_note(database)
    emit(created, as_json, lambda c: f"started campaign {c['id']} ({c['mode']}, codeversion {c['codeversion']}, "
                                     f"goal {c['goal']}); its first round runs at once")
    if note:
        click.echo(note, err=True)


@campaign_group.command("list")
@json_option
@click.pass_context
def campaign_list(click_ctx: click.Context, as_json: bool) -> None:
    """This study's campaigns, newest first: progress, rounds, money committed, how each ended."""
    from turnout.services import campaigns

    with _db(click_ctx) as (_settings_, database):
        rows = campaigns.list_campaigns(database)

    def text(rs: list[dict[str, Any]]) -> str:
        if not rs:
            return "no campaigns"
        return _table([(r["id"], r["mode"], r["codeversion"], f"{r['completed']}/{r['goal']}", r["open"],
                        "yes" if r["active"] else "no", r["rounds"], _money(r["spent"]), _money(r["budget"]),
                        r["next_round"] if r["active"] else (r["end_reason"] or ""))
                       for r in rs],
                      ("id", "mode", "codeversion", "completed", "open", "active", "rounds", "spent", "budget",
                       "next round / how it ended"))

    emit(rows, as_json, text)


def _campaign_id(value: str) -> int:
    if not value.strip().isdigit():
        raise CliError(f"ID must be a campaign number (see turnout campaign list), got {value!r}")
    return int(value)


@campaign_group.command("cancel")
@click.argument("campaign_id", metavar="ID")
@click.option("--expire-hits", is_flag=True, help="Also expire its HITs now (accepted work can still be submitted).")
@json_option
@click.pass_context
def campaign_cancel(click_ctx: click.Context, campaign_id: str, expire_hits: bool, as_json: bool) -> None:
    """Stop a campaign: no further rounds."""
    from turnout.clock import SystemClock
    from turnout.services import campaigns

    number = _campaign_id(campaign_id)
    with _db(click_ctx) as (_settings_, database):
        done = campaigns.cancel(database, SystemClock(), number, actor=_actor())
    expired: list[dict[str, Any]] = []
    if expire_hits:
        with market(click_ctx, done["mode"]) as ctx:
            expired = campaigns.expire_campaign_hits(ctx, number)
    done["expired"] = expired
    emit(done, as_json, lambda d: "\n".join([f"cancelled campaign {d['id']} ({d['completed']}/{d['goal']} "
                                             f"completed, {d['rounds']} round(s), ${d['spent']} committed)"]
                                            + [e["message"] for e in d["expired"]]))
    if any(not e["ok"] for e in expired):
        raise SystemExit(1)


@campaign_group.command("goal")
@click.argument("campaign_id", metavar="ID")
@click.argument("goal", metavar="N")
@json_option
@click.pass_context
def campaign_goal(click_ctx: click.Context, campaign_id: str, goal: str, as_json: bool) -> None:
    """Change a running campaign's goal (it must exceed those already complete)."""
    from turnout.services import campaigns

    number = _campaign_id(campaign_id)
    with _db(click_ctx) as (_settings_, database):
        done = campaigns.set_goal(database, number, goal, actor=_actor())
    emit(done, as_json, lambda d: f"campaign {d['id']}: goal now {d['goal']} ({d['completed']} completed)")


# --- turnout task -----------------------------------------------------------------------------------


@click.group("task")
def task_group() -> None:
    """Scheduled tasks (approve-all), run by the runner at an interval."""


@task_group.command("add")
@click.argument("kind", type=click.Choice(["approve-all"]), metavar="approve-all")
@click.option("--interval", required=True, metavar="MINUTES", help="Minutes between runs (at least 30).")
@click.option("--codeversion", help="Approve this experiment_code_version only (default: the project's).")
@mode_option
@json_option
@click.pass_context
def task_add(click_ctx: click.Context, kind: str, interval: str, codeversion: str | None, mode: str | None,
             as_json: bool) -> None:
    """Schedule approving every Submitted assignment of one mode and codeversion."""
    from turnout.clock import SystemClock
    from turnout.services import tasks

    with _db(click_ctx) as (settings, database):
        chosen = mode or settings.default_mode
        if chosen == "live":
            confirm(f"LIVE MTurk, real money: approve all submitted work every {interval} minutes "
                    "without asking again?", False)
        added = tasks.add(database, settings, SystemClock(), kind, interval_minutes=interval, mode=chosen,
                          codeversion=codeversion, actor=_actor())
        note = _runner_note(database)
    emit(added, as_json, lambda t: f"task {t['id']}: {t['kind']} for codeversion {t['codeversion']} in mode "
                                   f"{t['mode']} every {t['interval_minutes']} minutes; first run {t['next_run']}")
    if note:
        click.echo(note, err=True)


@task_group.command("list")
@json_option
@click.pass_context
def task_list(click_ctx: click.Context, as_json: bool) -> None:
    """Every scheduled task and running campaign: next run, last run and how it ended."""
    from turnout.services import tasks

    with _db(click_ctx) as (_settings_, database):
        rows = tasks.list_tasks(database)
        status = tasks.runner_status(database)

    def text(rs: list[dict[str, Any]]) -> str:
        head = (f"runner: alive ({status['host']} pid {status['pid']}, heartbeat {status['seconds_since_heartbeat']}s "
                "ago)" if status["alive"] else "runner: none running (start one: turnout scheduler)")
        if not rs:
            return head + "\nno tasks"
        body = _table([(r["id"], r["kind"], r["mode"], r["codeversion"], r["interval_minutes"], r["next_run"] or "",
                        (r["last_run"] or {}).get("started", ""), (r["last_run"] or {}).get("outcome", ""))
                       for r in rs],
                      ("id", "kind", "mode", "codeversion", "every (min)", "next run", "last run", "outcome"))
        return head + "\n" + body

    emit(rows, as_json, text)


@task_group.command("remove")
@click.argument("task_id", metavar="ID")
@json_option
@click.pass_context
def task_remove(click_ctx: click.Context, task_id: str, as_json: bool) -> None:
    """Remove a scheduled task (campaigns are stopped with `turnout campaign cancel`)."""
    from turnout.clock import SystemClock
    from turnout.services import tasks

    if not task_id.strip().isdigit():
        raise CliError(f"ID must be a task number (see turnout task list), got {task_id!r}")
    with _db(click_ctx) as (_settings_, database):
        done = tasks.remove(database, SystemClock(), int(task_id))
    emit(done, as_json, lambda t: f"removed task {t['id']} ({t['kind']} {t['mode']} {t['codeversion']})")
