"""``turnout simulate``: send simulated workers through the study in the offline marketplace."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import click

from turnout.cli.base import CliError, _settings
from turnout.config import ConfigError, Settings


def _check_server(url: str) -> None:
    """Fail early, with the fix, when nothing answers at the HIT's ExternalURL."""
    parts = urllib.parse.urlsplit(url)
    root = f"{parts.scheme}://{parts.netloc}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        opener.open(root, timeout=10).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"the HIT's ad is at {url}, but nothing answers at {root} ({reason}); "
                       "start the experiment server first (`turnout serve`) or fix ad_url_* in config.txt") from None


@click.command("simulate")
@click.option("--workers", "count", type=click.IntRange(1, 10_000), default=8, show_default=True,
              help="How many simulated workers to send.")
@click.option("--dropout", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="Share of workers who do not finish: they quit part-way, return the HIT, or abandon it.")
@click.option("--seed", type=int, help="Seed for a reproducible run (default: a random one, printed).")
@click.option("--mode", type=click.Choice(["local"]), default="local", show_default=True,
              help="Simulated workers exist only in the offline marketplace.")
@click.option("--trials", type=click.IntRange(1, 1000), default=24, show_default=True,
              help="Test trials each worker does.")
@click.option("--practice", type=click.IntRange(0, 1000), default=8, show_default=True,
              help="Practice trials before the test.")
@click.option("--pace", type=click.FloatRange(0, 10), default=0.0, show_default=True,
              help="Real seconds per simulated second (0: as fast as the server answers).")
@click.option("--post-hit", is_flag=True,
              help="If no HIT is open in the offline marketplace, post one (9 assignments, $1.00) first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per worker, then a summary object.")
@click.pass_context
def simulate(ctx: click.Context, count: int, dropout: float, seed: int | None, mode: str, trials: int,
             practice: int, pace: float, post_hit: bool, as_json: bool) -> None:
    """Send simulated workers to the offline marketplace: each takes an open HIT and does the study
    over HTTP, as a participant's browser would (the server must be running: `turnout serve`)."""
    from turnout.marketplace.local import MarketplaceState
    from turnout.marketplace.project import open_store
    from turnout.simulation.behaviour import plan_workers
    from turnout.simulation.driver import run_workers
    from turnout.simulation.posting import open_hits

    settings = _settings(ctx)
    store = settings.marketplace_store
    try:
        state: MarketplaceState = open_store(settings)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    hits = open_hits(state)
    if not hits:
        if not post_hit:
            raise CliError(f"no HIT is open in the offline marketplace ({_shown(settings, store)}); "
                           "add --post-hit, or post one first: turnout hit create N REWARD HOURS")
        hit_id = _post(settings)
        click.echo(f"posted HIT {hit_id} in the offline marketplace", err=as_json)
        hits = open_hits(state)
    _check_server(hits[0].external_url)
    if seed is None:
        seed = secrets.randbelow(2**31)
    click.echo(f"sending {count} simulated workers (seed {seed}, dropout {dropout:g}); "
               f"rerun with --seed {seed} to repeat this run on a fresh marketplace", err=True)
    plans = plan_workers(seed, count, dropout=dropout, trials=trials, practice=practice)
    report = run_workers(plans, state.workers, pace=pace)
    for result in report.results:
        if as_json:
            click.echo(json.dumps(result.as_dict()))
        else:
            where = f" {result.uniqueid}" if result.uniqueid else ""
            click.echo(f"{result.worker_id}{where}: {result.outcome} ({result.detail})")
            for problem in result.problems:
                click.echo(f"  problem: {problem}")
    if as_json:
        click.echo(json.dumps({"summary": report.counts(), "seed": seed, "workers": count}))
    else:
        click.echo(report.summary())
    problems = sum(1 for r in report.results if r.problems)
    if problems and not as_json:
        click.echo(f"{problems} worker(s) met a problem that a real participant would have met too; "
                   "see the server log", err=True)
    if report.count("error"):
        raise CliError(f"{report.count('error')} simulated worker(s) hit an error; see the lines above "
                       "and the server log")


def _shown(settings: Settings, store: Path) -> str:
    try:
        return str(store.relative_to(settings.project_dir))
    except ValueError:
        return str(store)


def _post(settings: Settings) -> str:
    from turnout.errors import TurnoutError
    from turnout.simulation.posting import post_hit

    try:
        return post_hit(settings, actor="cli:simulate")
    except TurnoutError as exc:
        raise CliError(f"could not post a HIT: {exc}") from None
