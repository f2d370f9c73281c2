"""turnout hash-password, user add|list|remove, token create|list|revoke, and init's login."""

from __future__ import annotations

from pathlib import Path

from servers import turnout_cli
from servers import turnout_cli as run
from turnout.services.accounts import password_matches


def test_user_and_token_commands(project_dir: Path, sqlite_url: str, monkeypatch) -> None:
    """The commands on SQLite; the account and token services run on every database in
    tests/api/test_services_manager.py and test_login.py."""
    monkeypatch.setenv("TURNOUT_DATABASE_URL", sqlite_url)
    assert run(project_dir, "db", "upgrade").exit_code == 0
    added = run(project_dir, "user", "add", "ra", "--role", "viewer", "--password-stdin", input="pw\n")
    assert added.exit_code == 0, added.output
    again = run(project_dir, "user", "add", "ra", "--role", "viewer", "--password-stdin", input="pw\n")
    assert again.exit_code == 1 and "already exists" in again.output
    listed = run(project_dir, "user", "list")
    assert "ra\tviewer\tdatabase" in listed.output
    created = run(project_dir, "token", "create", "--name", "nightly", "--role", "payer")
    assert created.exit_code == 0
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("tnt_")
    assert token not in run(project_dir, "token", "list").output
    assert run(project_dir, "token", "revoke", "nightly").exit_code == 0
    assert "revoked" in run(project_dir, "token", "list").output
    assert run(project_dir, "user", "remove", "ra").exit_code == 0
    gone = run(project_dir, "user", "remove", "ra")
    assert gone.exit_code == 1 and len(gone.output.strip().splitlines()) == 1


def test_user_add_without_a_terminal_refuses_in_one_line(project_dir: Path, sqlite_url: str,
                                                         monkeypatch) -> None:
    monkeypatch.setenv("TURNOUT_DATABASE_URL", sqlite_url)
    assert run(project_dir, "db", "upgrade").exit_code == 0
    result = run(project_dir, "user", "add", "rb", "--role", "payer")
    assert result.exit_code == 1
    assert result.output.strip() == "turnout: no terminal to ask for the password on; pipe it in with --password-stdin"


def test_bad_role_is_a_usage_error(project_dir: Path) -> None:
    result = run(project_dir, "user", "add", "rb", "--role", "king", "--password-stdin", input="x\n")
    assert result.exit_code == 2


def test_hash_password_prints_a_hash_that_matches() -> None:
    result = turnout_cli(None, "hash-password", "--password-stdin", input="hunter2\n")
    assert result.exit_code == 0
    hashed = result.output.strip().replace("%%", "%")
    assert hashed.startswith("scrypt:") and password_matches(hashed, "hunter2")
    assert not password_matches(hashed, "hunter3")


def test_init_writes_a_secret_key_and_a_hashed_login(tmp_path: Path) -> None:
    result = turnout_cli(None, "init", str(tmp_path / "study"))
    assert result.exit_code == 0, result.output
    password = result.output.split("admin / ")[1].split()[0]
    config = (tmp_path / "study" / "config.txt").read_text()
    assert password not in config
    stored = next(line.split(" = ", 1)[1] for line in config.splitlines() if line.startswith("login_pw ="))
    assert password_matches(stored.replace("%%", "%"), password)
    assert "login_username = admin" in config
    secret = next(line for line in config.splitlines() if line.startswith("secret_key ="))
    assert len(secret) > len("secret_key = ") + 20
