"""``turnout marketplace env`` and the offline marketplace's store at start-up (issue 6,
items 2 and 6): the export lines a boto3 script needs, and one line, not a traceback, when
``[Marketplace] local_store`` cannot be used."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from servers import turnout_cli as run
from turnout.config import load_settings
from turnout.marketplace.local import MarketplaceState, ThreadedMarketplace


def set_store(project: Path, value: str) -> None:
    config = project / "config.txt"
    config.write_text(config.read_text() + f"\n[Marketplace]\nlocal_store = {value}\n")


def test_env_prints_exactly_the_export_lines_a_script_needs(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(project_dir, "marketplace", "env")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "export AWS_ACCESS_KEY_ID", "export AWS_SECRET_ACCESS_KEY", "export TURNOUT_MTURK_ENDPOINT",
        "export AWS_DEFAULT_REGION"]
    values = {line.split("=", 1)[0].removeprefix("export "): line.split("=", 1)[1] for line in lines}
    store = load_settings(project_dir).marketplace_store
    assert (values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]) == MarketplaceState(store).credentials
    assert values["TURNOUT_MTURK_ENDPOINT"] == "http://127.0.0.1:22362/_mturk/"
    assert (store.parent / ".gitignore").read_text().splitlines()[-1] == "*"  # the keys are never committed
    assert run(project_dir, "marketplace", "env").stdout == result.stdout  # one key pair per project

    # A researcher's own boto3 script, with only those variables (no region of its own), is let in.
    with ThreadedMarketplace(store) as market:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            monkeypatch.setenv(name, values[name])
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        monkeypatch.delenv("AWS_REGION", raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
        client = boto3.client("mturk", endpoint_url=market.endpoint_url)
        assert client.get_account_balance()["AvailableBalance"] == "10000.00"


def test_env_control_adds_the_control_secret(project_dir: Path) -> None:
    result = run(project_dir, "marketplace", "env", "--control", "--host", "lab.example", "--port", "8000")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2] == "export TURNOUT_MTURK_ENDPOINT=http://lab.example:8000/_mturk/"
    secret = MarketplaceState(load_settings(project_dir).marketplace_store).control_secret
    assert lines[4] == f"export TURNOUT_MTURK_CONTROL_SECRET={secret}"


@pytest.mark.parametrize("kind", ["directory", "garbage", "unreachable"])
@pytest.mark.parametrize("command", [["marketplace", "env"], ["hit", "list", "--mode", "local"], ["serve"]])
def test_an_unusable_store_stops_with_one_line_naming_key_and_path(project_dir: Path, kind: str,
                                                                   command: list[str]) -> None:
    if kind == "directory":
        target = project_dir / "store-dir"
        target.mkdir()
    elif kind == "garbage":
        target = project_dir / "garbage.db"
        target.write_bytes(b"not sqlite at all" * 64)
    else:
        target = Path("/proc/turnout-no-such-folder/mturk.db")
    set_store(project_dir, str(target))
    if command[0] == "hit":
        assert run(project_dir, "db", "upgrade").exit_code == 0
    result = run(project_dir, *command)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "[Marketplace] local_store" in lines[0] and str(target) in lines[0]
    assert "Traceback" not in result.output
    if kind == "garbage":
        assert target.read_bytes() == b"not sqlite at all" * 64
