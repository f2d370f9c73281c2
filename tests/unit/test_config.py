"""Configuration: psiTurk's layers and precedence, typed values, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.config import ConfigError, Settings, load_settings


@pytest.fixture
def global_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def load(project_dir: Path, global_dir: Path):
    """``load(**env)``: settings of the test project with exactly these environment variables."""

    def run(**env: str) -> Settings:
        environ = {"PSITURK_GLOBAL_CONFIG_LOCATION": str(global_dir), **env}
        return load_settings(project_dir, environ=environ)

    return run


def set_config(project_dir: Path, section: str, key: str, value: str) -> None:
    """Add ``key = value`` to ``[section]`` of the project's config.txt."""
    path = project_dir / "config.txt"
    text = path.read_text(encoding="utf-8")
    header = f"[{section}]"
    if header in text:
        text = text.replace(header, f"{header}\n{key} = {value}", 1)
    else:
        text += f"\n{header}\n{key} = {value}\n"
    path.write_text(text, encoding="utf-8")


def config_error(load, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(**env)
    message = str(caught.value)
    assert "\n" not in message, "a configuration error is one line"
    return message


# --- layers and precedence ------------------------------------------------------------


def test_builtin_defaults_fill_keys_config_txt_leaves_out(load) -> None:
    s = load()
    assert s.server_timeout == 30
    assert s.allow_repeats is False
    assert s.cutoff_minutes == 30
    assert s.browser_exclude_rules == ("MSIE", "mobile", "tablet")
    assert s.tables.participants == "assignments" and s.tables.hits == "amt_hit"
    assert s.participant_tokens is True
    assert s.max_request_bytes == 16 * 1024 * 1024


def test_project_config_txt_overrides_defaults(load) -> None:
    s = load()
    assert s.codeversion == "1.0"
    assert s.num_conds == 2
    assert s.contact_email == "lab@example.org"
    assert s.port == 22362 and s.host == "127.0.0.1"


def test_global_psiturkconfig_overrides_defaults(load, global_dir: Path) -> None:
    (global_dir / ".psiturkconfig").write_text("[Task Parameters]\ncutoff_time = 45\n")
    assert load().cutoff_minutes == 45


def test_project_config_txt_beats_global_psiturkconfig(load, global_dir: Path) -> None:
    (global_dir / ".psiturkconfig").write_text("[Task Parameters]\nnum_conds = 7\n")
    assert load().num_conds == 2


def test_dotenv_file_beats_config_txt(load, project_dir: Path) -> None:
    (project_dir / ".env").write_text("PSITURK_NUM_CONDS=5\n")
    assert load().num_conds == 5


def test_real_environment_beats_dotenv_file(load, project_dir: Path) -> None:
    (project_dir / ".env").write_text("PSITURK_NUM_CONDS=5\n")
    assert load(PSITURK_NUM_CONDS="6").num_conds == 6


def test_bare_port_and_database_url_override_config_txt(load) -> None:
    s = load(PORT="5001", DATABASE_URL="postgres://u@db.example/study")
    assert s.port == 5001
    assert s.database_url == "postgresql+psycopg://u@db.example/study"


def test_psiturk_variable_beats_bare_variable(load) -> None:
    s = load(PORT="5001", PSITURK_PORT="5002")
    assert s.port == 5002


def test_turnout_variable_beats_psiturk_variable(load) -> None:
    s = load(PORT="5001", PSITURK_PORT="5002", TURNOUT_PORT="5003")
    assert s.port == 5003


def test_psiturk_variables_projects_rely_on_are_honoured(load) -> None:
    s = load(PSITURK_HOST="0.0.0.0", PSITURK_THREADS="3", PSITURK_ENABLE_DASHBOARD="true",
             PSITURK_DO_SCHEDULER="true", PSITURK_SECRET_KEY="s3cret", PSITURK_ACCESSLOG="-",
             PSITURK_DATABASE_URL="mysql://root@db/study")
    assert (s.host, s.threads, s.enable_dashboard, s.do_scheduler) == ("0.0.0.0", 3, True, True)
    assert s.secret_key == "s3cret" and s.accesslog == "-"
    assert s.database_url == "mysql+pymysql://root@db/study"


def test_empty_environment_value_is_ignored(load) -> None:
    assert load(PSITURK_PORT="", TURNOUT_PORT="").port == 22362


def test_environment_value_with_percent_is_taken_literally(load) -> None:
    s = load(TURNOUT_SECRET_KEY="50%off%%")
    assert s.secret_key == "50%off%%"


def test_environment_cannot_invent_unknown_keys(load) -> None:
    s = load(TURNOUT_NOT_A_SETTING="x")
    assert not s.raw.has_option("Task Parameters", "not_a_setting")


def test_psiturk_errorlog_is_copied_into_logfile(load, project_dir: Path) -> None:
    set_config(project_dir, "Server Parameters", "errorlog", "errors.log")
    assert load().logfile == "errors.log"


def test_assignments_table_name_overrides_table_name_and_keeps_its_case(load, project_dir: Path) -> None:
    set_config(project_dir, "Database Parameters", "table_name", "old_table")
    set_config(project_dir, "Database Parameters", "assignments_table_name", "StroopStudy")
    assert load().tables.participants == "StroopStudy"


def test_psiturk_errorlog_from_environment_becomes_the_logfile(load, project_dir: Path) -> None:
    assert load(PSITURK_ERRORLOG="/var/log/study.log").logfile == "/var/log/study.log"


def test_logfile_from_environment_beats_errorlog_from_config_txt(load, project_dir: Path) -> None:
    set_config(project_dir, "Server Parameters", "errorlog", "errors.log")
    assert load(PSITURK_LOGFILE="env.log").logfile == "env.log"


def test_assignments_table_name_from_environment_chooses_the_table(load) -> None:
    assert load(PSITURK_ASSIGNMENTS_TABLE_NAME="EnvStudy").tables.participants == "EnvStudy"


def test_table_name_longer_than_databases_allow_is_refused(load) -> None:
    assert load(TURNOUT_TABLE_NAME="t" * 40).tables.participants == "t" * 40
    message = config_error(load, TURNOUT_TABLE_NAME="t" * 41)
    assert "[Database Parameters] table_name" in message and "40" in message


def test_option_names_are_case_insensitive(load, project_dir: Path) -> None:
    text = (project_dir / "config.txt").read_text().replace("num_conds = 2", "Num_Conds = 4")
    (project_dir / "config.txt").write_text(text)
    assert load().num_conds == 4


def test_leftover_psiturk2_keys_are_ignored(load, project_dir: Path) -> None:
    set_config(project_dir, "Server Parameters", "use_psiturk_ad_server", "true")
    set_config(project_dir, "psiTurk Access", "psiturk_access_key_id", "abc")
    assert load().port == 22362


def test_cloud_defaults_apply_on_heroku(load, project_dir: Path) -> None:
    text = (project_dir / "config.txt").read_text().replace("host = 127.0.0.1\n", "").replace("threads = 1\n", "")
    (project_dir / "config.txt").write_text(text)
    assert (load().host, load().accesslog) == ("localhost", "/dev/null")
    s = load(ON_HEROKU="1", DATABASE_URL="postgresql://u@db/x")
    assert (s.host, s.accesslog, s.threads) == ("0.0.0.0", "-", 1)


def test_global_config_defaults_to_the_home_folder(project_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "realhome"
    home.mkdir()
    (home / ".psiturkconfig").write_text("[Task Parameters]\ncutoff_time = 12\n")
    monkeypatch.setenv("HOME", str(home))
    assert load_settings(project_dir, environ={}).cutoff_minutes == 12


def test_relative_sqlite_path_is_resolved_against_the_project(load, project_dir: Path) -> None:
    s = load(DATABASE_URL="sqlite:///data/participants.db")
    assert s.database_url == f"sqlite:///{project_dir.resolve() / 'data' / 'participants.db'}"


def test_custom_keys_are_readable_through_settings_get(load, project_dir: Path) -> None:
    set_config(project_dir, "Task Parameters", "stimulus_set", "faces")
    s = load()
    assert s.get("Task Parameters", "stimulus_set") == "faces"
    assert s.get("Task Parameters", "missing", fallback="none") == "none"


def test_ad_url_is_built_from_its_parts(load) -> None:
    assert load().ad_url() == "http://127.0.0.1:22362/pub"


def test_threads_auto_means_two_per_cpu_plus_one(load, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert load(TURNOUT_THREADS="auto").threads == 9


def test_max_request_bytes_is_configurable(load) -> None:
    assert load(TURNOUT_MAX_REQUEST_BYTES="4096").max_request_bytes == 4096


def test_participant_tokens_can_be_switched_off(load) -> None:
    assert load(TURNOUT_PARTICIPANT_TOKENS="false").participant_tokens is False


# --- bad values stop start-up with one line naming file, section and key -----------------


def test_unknown_mode_in_config_txt_names_file_section_and_key(load, project_dir: Path) -> None:
    text = (project_dir / "config.txt").read_text().replace("launch_in_mode = local", "launch_in_mode = bogus")
    (project_dir / "config.txt").write_text(text)
    message = config_error(load)
    assert message.startswith("config.txt [Shell Parameters] launch_in_mode:")
    assert "'bogus'" in message


def test_non_numeric_port_in_config_txt_names_file_section_and_key(load, project_dir: Path) -> None:
    text = (project_dir / "config.txt").read_text().replace("port = 22362", "port = eighty")
    (project_dir / "config.txt").write_text(text)
    message = config_error(load)
    assert message.startswith("config.txt [Server Parameters] port:")
    assert "'eighty'" in message


def test_non_numeric_port_from_environment_names_the_variable(load) -> None:
    message = config_error(load, PORT="abc")
    assert message.startswith("environment variable PORT [Server Parameters] port:")


def test_bad_value_in_global_config_names_that_file(load, global_dir: Path) -> None:
    (global_dir / ".psiturkconfig").write_text("[Server Parameters]\nserver_timeout = soon\n")
    message = config_error(load)
    assert str(global_dir / ".psiturkconfig") in message
    assert "[Server Parameters] server_timeout" in message


@pytest.mark.parametrize("url", [
    "not a url",
    "postgresql://user@host:notaport/db",
    "postgresql://user@host:99999999/db",
    "mysql://user@host/",
    "oracle://user@host/db",
])
def test_malformed_database_url_names_file_section_and_key(load, project_dir: Path, url: str) -> None:
    set_config(project_dir, "Database Parameters", "database_url", url)
    text = (project_dir / "config.txt").read_text()
    # set_config adds a second database_url line; keep only ours
    text = text.replace("database_url = sqlite:///participants.db\n", "")
    (project_dir / "config.txt").write_text(text)
    message = config_error(load)
    assert message.startswith("config.txt [Database Parameters] database_url:")


def test_bad_percent_interpolation_explains_the_double_percent(load, project_dir: Path) -> None:
    set_config(project_dir, "Server Parameters", "login_pw", "50%off")
    message = config_error(load)
    assert message.startswith("config.txt [Server Parameters] login_pw:")
    assert "%%" in message


def test_unparseable_config_file_names_the_file(load, project_dir: Path) -> None:
    (project_dir / "config.txt").write_text("this is not ini\n")
    message = config_error(load)
    assert message.startswith("config.txt")


@pytest.mark.parametrize(("key", "value", "where"), [
    ("TURNOUT_THREADS", "many", "[Server Parameters] threads"),
    ("TURNOUT_LOGLEVEL", "9", "[Server Parameters] loglevel"),
    ("TURNOUT_ALLOW_REPEATS", "maybe", "[Task Parameters] allow_repeats"),
    ("TURNOUT_NUM_CONDS", "0", "[Task Parameters] num_conds"),
    ("TURNOUT_CUTOFF_TIME", "-5", "[Task Parameters] cutoff_time"),
    ("TURNOUT_MAX_REQUEST_BYTES", "10", "[Server Parameters] max_request_bytes"),
    ("TURNOUT_TABLE_NAME", "drop table;", "[Database Parameters] table_name"),
    ("TURNOUT_PARTICIPANT_TOKENS", "sometimes", "[Task Parameters] participant_tokens"),
    ("TURNOUT_APPROVE_REQUIREMENT", "most", "[HIT Configuration] approve_requirement"),
    ("TURNOUT_US_ONLY", "maybe", "[HIT Configuration] us_only"),
    ("TURNOUT_REQUIRE_MASTER_WORKERS", "perhaps", "[HIT Configuration] require_master_workers"),
    ("TURNOUT_LIFETIME", "a day", "[HIT Configuration] lifetime"),
])
def test_bad_typed_value_names_variable_section_and_key(load, key: str, value: str, where: str) -> None:
    message = config_error(load, **{key: value})
    assert message.startswith(f"environment variable {key} {where}:")


def test_missing_project_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such project folder"):
        load_settings(tmp_path / "nowhere", environ={})


def test_hit_configuration_is_typed_once_with_local_rehearsing_the_sandbox(load, project_dir: Path) -> None:
    set_config(project_dir, "HIT Configuration", "block_quals_local", "L1")
    hit = load(TURNOUT_APPROVE_REQUIREMENT="90", TURNOUT_US_ONLY="false", TURNOUT_REQUIRE_QUALS_SANDBOX="SBX",
               TURNOUT_BLOCK_QUALS_SANDBOX="B1", TURNOUT_BLOCK_QUALS_LIVE="LV").hit
    assert (hit.approve_requirement, hit.number_hits_approved, hit.us_only, hit.require_master_workers) == (
        90, 0, False, False)
    assert (hit.require_quals["local"], hit.require_quals["sandbox"], hit.require_quals["live"]) == ("SBX", "SBX", "")
    assert (hit.block_quals["local"], hit.block_quals["sandbox"], hit.block_quals["live"]) == ("L1", "B1", "LV")
    assert load(TURNOUT_APPROVE_REQUIREMENT="").hit.approve_requirement == 95  # empty: psiTurk's default
