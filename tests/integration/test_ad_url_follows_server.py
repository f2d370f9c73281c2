"""In local mode the HIT's ad follows where ``turnout serve`` listens (issue 11 item 7).

A project from ``turnout init`` pins no ad_url_port; ``turnout serve --port P`` records
its address, and HITs posted meanwhile (``turnout hit create``) send workers to port P.
Explicit ad_url_* settings still win, and sandbox/live still require them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from servers import run_turnout, running_server
from turnout.config import ConfigError, load_settings, write_serving_file


def _settings(project: Path, **env: str) -> Any:
    return load_settings(project, environ={"PSITURK_GLOBAL_CONFIG_LOCATION": str(project / "no-global"), **env})


def test_a_new_project_does_not_pin_the_ad_port(new_project: Path) -> None:
    settings = _settings(new_project)
    assert not settings.set_explicitly("HIT Configuration", "ad_url_port")
    assert not settings.set_explicitly("HIT Configuration", "ad_url_domain")
    assert settings.ad_url() == "http://127.0.0.1:22362/pub"


@pytest.mark.parametrize("variable", ["PSITURK_PORT", "TURNOUT_PORT", "PORT"])
def test_the_port_from_the_environment_moves_the_ad(new_project: Path, variable: str) -> None:
    assert _settings(new_project, **{variable: "8000"}).ad_url() == "http://127.0.0.1:8000/pub"


def test_the_running_servers_address_moves_the_ad(new_project: Path) -> None:
    write_serving_file(new_project, "http", "0.0.0.0", 8123, os.getpid())  # this process stands in for it
    assert _settings(new_project).ad_url() == "http://127.0.0.1:8123/pub"


def test_a_server_that_is_gone_is_ignored(new_project: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    write_serving_file(new_project, "http", "127.0.0.1", 8123, int(gone.stdout))
    assert _settings(new_project).ad_url() == "http://127.0.0.1:22362/pub"


@pytest.mark.parametrize("env,expected", [
    ({"TURNOUT_AD_URL_PORT": "9000"}, "http://127.0.0.1:9000/pub"),
    ({"PSITURK_AD_URL_DOMAIN": "study.example.edu"}, "http://study.example.edu:8123/pub"),
])
def test_explicit_ad_url_settings_win(new_project: Path, env: dict[str, str], expected: str) -> None:
    write_serving_file(new_project, "http", "127.0.0.1", 8123, os.getpid())
    assert _settings(new_project, **env).ad_url() == expected


@pytest.mark.parametrize("line,expected", [("ad_url_port = 22999", "http://127.0.0.1:22999/pub"),
                                           ("ad_url = https://proxy.example.edu/pub", "https://proxy.example.edu/pub")])
def test_ad_url_settings_in_config_txt_win(new_project: Path, line: str, expected: str) -> None:
    config = new_project / "config.txt"
    config.write_text(config.read_text().replace("ad_url_route = pub", f"ad_url_route = pub\n{line}"))
    write_serving_file(new_project, "http", "127.0.0.1", 8123, os.getpid())
    assert _settings(new_project).ad_url() == expected


def test_sandbox_and_live_still_need_a_public_address(new_project: Path) -> None:
    write_serving_file(new_project, "http", "127.0.0.1", 8123, os.getpid())
    with pytest.raises(ConfigError, match=r"\[HIT Configuration\] ad_url_domain: must be set to post HITs"):
        _settings(new_project).ad_url("sandbox")
    with pytest.raises(ConfigError, match="ad_url_domain: must be set"):
        _settings(new_project, TURNOUT_LAUNCH_IN_MODE="live").ad_url()


def test_hit_create_while_serving_on_another_port_points_at_it(new_project: Path, tmp_path: Path) -> None:
    """The whole path in real processes: serve --port P, then hit create from another process."""
    env = {**os.environ, "TURNOUT_LOGFILE": "-", "PSITURK_GLOBAL_CONFIG_LOCATION": str(tmp_path / "g")}
    assert run_turnout(new_project, "db", "upgrade", env=env).returncode == 0
    with running_server(new_project, env=env, host=None, log_path=tmp_path / "serve.txt") as base:
        port = base.port
        assert f"http://127.0.0.1:{port}/pub" in base.output()  # the banner says where ads point
        created = run_turnout(new_project, "hit", "create", "1", "0.50", "1", "--yes", "--json", env=env)
        assert created.returncode == 0, created.stderr
        made = json.loads(created.stdout)
        hit_id = made["hit_id"]
        assert made["ad_url"] == f"http://127.0.0.1:{port}/pub?mode=local"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/pub?mode=local&hitId={hit_id}"
                                    "&assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE", timeout=10) as ad:
            assert ad.status == 200
    assert not (new_project / ".turnout" / "serving.json").exists()  # removed on the way out
