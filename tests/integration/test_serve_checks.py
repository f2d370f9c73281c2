"""``turnout serve`` refuses, in one line, what would make a server that cannot work (issue 6
item 6): a missing or mismatched certfile/keyfile, a read-only SQLite database or folder, no
config.txt. Nothing is started, so each runs through click's CliRunner.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers import turnout_cli


@pytest.fixture
def serve(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``serve(**env)``: run ``turnout serve`` on the test project; returns (exit code, the one line)."""

    def run(**env: str) -> tuple[int, str]:
        for key, value in env.items():
            monkeypatch.setenv(f"TURNOUT_{key.upper()}", value)
        result = turnout_cli(project_dir, "serve", "--port", "1")
        assert "Traceback" not in result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        assert lines[0].startswith("turnout: ")
        return result.exit_code, lines[0]

    return run


# --- https --------------------------------------------------------------------------------------


def test_missing_certfile_names_the_key_and_path(serve, project_dir: Path) -> None:
    (project_dir / "key.pem").write_text("x")
    code, line = serve(certfile="cert.pem", keyfile="key.pem")
    assert code == 1
    assert line == (f"turnout: environment variable TURNOUT_CERTFILE [Server Parameters] certfile: "
                    f"{project_dir / 'cert.pem'}: no such file")


def test_missing_keyfile_in_config_txt_names_the_file_section_and_key(serve, project_dir: Path) -> None:
    (project_dir / "cert.pem").write_text("x")
    config = project_dir / "config.txt"
    config.write_text(config.read_text().replace("[Server Parameters]\n",
                                                 "[Server Parameters]\ncertfile = cert.pem\nkeyfile = /nowhere/key.pem\n"))
    code, line = serve()
    assert code == 1
    assert line == "turnout: config.txt [Server Parameters] keyfile: /nowhere/key.pem: no such file"


def test_certfile_without_keyfile_is_refused(serve) -> None:
    code, line = serve(certfile="cert.pem")
    assert code == 1
    assert "certfile is set but keyfile is empty: https needs both" in line


def test_a_file_that_is_not_a_certificate_is_refused(serve, project_dir: Path) -> None:
    (project_dir / "cert.pem").write_text("not a certificate\n")
    (project_dir / "key.pem").write_text("not a key\n")
    code, line = serve(certfile="cert.pem", keyfile="key.pem")
    assert code == 1
    assert "are not a PEM certificate and its private key" in line and str(project_dir / "cert.pem") in line


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_a_real_certificate_and_key_pass_the_check(make_settings, project_dir: Path) -> None:
    from turnout.config import check_tls_files

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-days", "1", "-keyout", str(project_dir / "key.pem"), "-out", str(project_dir / "cert.pem")],
                   check=True, capture_output=True)
    settings = make_settings(certfile="cert.pem", keyfile="key.pem")
    assert check_tls_files(settings) == (project_dir / "cert.pem", project_dir / "key.pem")


# --- a read-only database -------------------------------------------------------------------------


@pytest.fixture
def read_only() -> Iterator[Any]:
    """``read_only(path)``: make a file or folder unwritable, also for root (who ignores modes)."""
    changed: list[tuple[Path, int | None]] = []

    def make(path: Path) -> None:
        if os.geteuid() == 0:
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)],
                                                                 capture_output=True).returncode:
                pytest.skip("running as root without chattr +i: cannot make a file read-only")
            changed.append((path, None))
        else:
            changed.append((path, path.stat().st_mode))
            path.chmod(0o555 if path.is_dir() else 0o444)

    yield make
    for path, mode in reversed(changed):
        if mode is None:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(mode)


def _upgraded_database(project_dir: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "participants.db"
    result = turnout_cli(project_dir, "db", "upgrade",
                                env={"TURNOUT_DATABASE_URL": f"sqlite:///{path}"})
    assert result.exit_code == 0, result.output
    return path


def test_read_only_database_file_is_refused_naming_it(serve, project_dir: Path, tmp_path: Path,
                                                      read_only) -> None:
    path = _upgraded_database(project_dir, tmp_path / "data")
    for extra in path.parent.glob("participants.db-*"):  # WAL leftovers from the upgrade
        extra.unlink()
    before = path.read_bytes()
    read_only(path)
    code, line = serve(database_url=f"sqlite:///{path}")
    assert code == 1
    assert f"the database {path} is read-only" in line
    assert "TURNOUT_DATABASE_URL" in line
    assert path.read_bytes() == before


def test_read_only_database_folder_is_refused_naming_it(serve, project_dir: Path, tmp_path: Path,
                                                        read_only) -> None:
    path = _upgraded_database(project_dir, tmp_path / "data")
    read_only(path.parent)
    code, line = serve(database_url=f"sqlite:///{path}")
    assert code == 1
    assert f"the folder {path.parent} of the database participants.db is read-only" in line


def test_a_new_database_in_a_read_only_folder_is_refused(serve, tmp_path: Path, read_only) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    read_only(folder)
    code, line = serve(database_url=f"sqlite:///{folder / 'new.db'}")
    assert code == 1
    assert f"the folder {folder} of the database new.db is read-only" in line
    assert not (folder / "new.db").exists()


def test_a_writable_database_passes_the_check(make_settings, sqlite_url: str) -> None:
    from turnout.config import check_database_writable

    check_database_writable(make_settings(sqlite_url))  # no error
    assert not list(Path(sqlite_url.removeprefix("sqlite:///")).parent.glob(".turnout-write-check-*"))


# --- no project --------------------------------------------------------------------------------------


def test_serve_without_config_txt_says_so(tmp_path: Path) -> None:
    result = turnout_cli(tmp_path, "serve")
    assert result.exit_code == 1
    assert result.output == (f"turnout: {tmp_path} is not a turnout (psiTurk) project: it has no config.txt; "
                             "name the project folder with -C DIR, or create one with `turnout init DIR`\n")
    assert list(tmp_path.iterdir()) == []


def test_a_bad_hit_configuration_value_stops_start_up_naming_it(serve) -> None:
    """[HIT Configuration] is checked once, when the settings load, not at the first HIT."""
    code, line = serve(us_only="maybe")
    assert code == 1
    assert line == ("turnout: environment variable TURNOUT_US_ONLY [HIT Configuration] us_only: "
                    "expected true or false, got 'maybe'")
