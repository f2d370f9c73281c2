"""Settings: psiTurk's config.txt format, read in psiTurk's order, validated once.

Layers, later ones winning: turnout's defaults, cloud defaults (if ``ON_CLOUD``),
``~/.psiturkconfig`` (or ``$PSITURK_GLOBAL_CONFIG_LOCATION/.psiturkconfig``), the
project's ``config.txt``, psiTurk's back-compat key copies, then the environment
(a ``.env`` file in the project is loaded first and never overrides real variables):
bare ``PORT``, ``DATABASE_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``;
then ``PSITURK_<KEY>``; then ``TURNOUT_<KEY>``.

Every value keeps a note of where it came from, so a bad one is reported as
"config.txt [Server Parameters] port: ..." and not as a traceback.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from dotenv import dotenv_values

MODES = ("local", "sandbox", "live")
COMPLETED_STATUSES = (3, 4, 5, 7)

# psiTurk copies a preferred key over a deprecated one when the preferred one is set.
_BACK_COMPAT = [
    ("Server Parameters", "errorlog", "logfile"),
    ("HIT Configuration", "require_quals", "require_quals_live"),
    ("HIT Configuration", "require_quals", "require_quals_sandbox"),
    ("HIT Configuration", "block_quals", "block_quals_live"),
    ("HIT Configuration", "block_quals", "block_quals_sandbox"),
    ("HIT Configuration", "advanced_quals_path", "advanced_quals_path_live"),
    ("HIT Configuration", "advanced_quals_path", "advanced_quals_path_sandbox"),
    ("Database Parameters", "assignments_table_name", "table_name"),
]
_BARE_ENV = {"port": "PORT", "database_url": "DATABASE_URL",
             "aws_access_key_id": "AWS_ACCESS_KEY_ID",
             "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY"}


class ConfigError(Exception):
    """A setting that stops start-up. The message is one line naming where the value came from."""


class RawConfig(configparser.ConfigParser):
    """A ConfigParser that remembers which file or variable set each option."""

    def __init__(self) -> None:
        super().__init__(interpolation=configparser.BasicInterpolation())
        self.origins: dict[tuple[str, str], str] = {}

    def optionxform(self, optionstr: str) -> str:  # keys are case-insensitive, as in psiTurk
        return optionstr.lower()

    def read_layer(self, text: str, origin: str) -> None:
        layer = configparser.ConfigParser(interpolation=None)
        layer.optionxform = str.lower  # type: ignore[assignment,method-assign]
        try:
            layer.read_string(text, source=origin)
        except configparser.Error as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{origin}: cannot parse: {first}") from None
        for section in layer.sections():
            if not self.has_section(section):
                self.add_section(section)
            for key, value in layer.items(section, raw=True):
                try:
                    self.set(section, key, value)
                except ValueError:  # BasicInterpolation refuses a lone % at set time
                    raise ConfigError(f"{origin} [{section}] {key}: bad %-interpolation in {value!r}; "
                                      "write a literal % as %%") from None
                self.origins[(section, key)] = origin

    def set_from(self, section: str, key: str, value: str, origin: str) -> None:
        self.set(section, key, value)
        self.origins[(section, key)] = origin

    def where(self, section: str, key: str) -> str:
        return f"{self.origins.get((section, key), 'defaults')} [{section}] {key}"

    def text(self, section: str, key: str, *, raw: bool = False) -> str:
        try:
            return self.get(section, key, raw=raw).strip()
        except configparser.InterpolationError as exc:
            raise ConfigError(
                f"{self.where(section, key)}: bad %-interpolation ({exc.__class__.__name__}); "
                "write a literal % as %%"
            ) from None

    def integer(self, section: str, key: str, *, minimum: int | None = None,
                maximum: int | None = None) -> int:
        value = self.text(section, key)
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{self.where(section, key)}: expected a whole number, got {value!r}") from None
        if minimum is not None and number < minimum or maximum is not None and number > maximum:
            bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else " up")
            raise ConfigError(f"{self.where(section, key)}: {number} is out of range ({bounds})")
        return number

    def number(self, section: str, key: str, *, minimum: float | None = None) -> float:
        value = self.text(section, key)
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{self.where(section, key)}: expected a number, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{self.where(section, key)}: {number} is below the minimum {minimum}")
        return number

    def boolean(self, section: str, key: str) -> bool:
        value = self.text(section, key).lower()
        if value in self.BOOLEAN_STATES:
            return self.BOOLEAN_STATES[value]
        raise ConfigError(f"{self.where(section, key)}: expected true or false, got {value!r}")


def _read_packaged(name: str) -> str:
    return resources.files("turnout.defaults").joinpath(name).read_text(encoding="utf-8")


def global_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("PSITURK_GLOBAL_CONFIG_LOCATION")
    return Path(base) / ".psiturkconfig" if base else Path.home() / ".psiturkconfig"


def load_raw_config(project_dir: Path, environ: Mapping[str, str] | None = None) -> RawConfig:
    """Read every layer into one RawConfig (no validation)."""
    env = dict(os.environ if environ is None else environ)
    dotenv_file = project_dir / ".env"
    if dotenv_file.is_file():
        for key, value in dotenv_values(dotenv_file).items():
            if value is not None:
                env.setdefault(key, value)  # real variables win over .env, as in psiTurk
    raw = RawConfig()
    raw.read_layer(_read_packaged("defaults.txt"), "defaults")
    if "ON_HEROKU" in env or "ON_CLOUD" in env:
        raw.read_layer(_read_packaged("cloud.txt"), "cloud defaults")
    for path in (global_config_path(env), project_dir / "config.txt"):
        if path.is_file():
            try:
                raw.read_layer(path.read_text(encoding="utf-8"), str(path.name if path.parent == project_dir else path))
            except UnicodeDecodeError:
                raise ConfigError(f"{path}: not a UTF-8 text file") from None
    for section, prefer, over in _BACK_COMPAT:
        if raw.get(section, prefer, raw=True, fallback="").strip():
            raw.set_from(section, over, raw.get(section, prefer, raw=True), raw.where(section, prefer).split(" [")[0])
    for section in raw.sections():
        for key in list(raw.options(section)):
            for var in (_BARE_ENV.get(key), f"PSITURK_{key.upper()}", f"TURNOUT_{key.upper()}"):
                if var and env.get(var):
                    raw.set_from(section, key, env[var].replace("%", "%%"), f"environment variable {var}")
    # A preferred key set in the environment (PSITURK_ERRORLOG, PSITURK_ASSIGNMENTS_TABLE_NAME)
    # is copied over its deprecated twin too, unless the environment set that twin itself.
    # (psiTurk copied the *file* value here, so PSITURK_ERRORLOG=x.log blanked the logfile.)
    from_env = "environment variable"
    for section, prefer, over in _BACK_COMPAT:
        if raw.origins.get((section, prefer), "").startswith(from_env) \
                and not raw.origins.get((section, over), "").startswith(from_env):
            raw.set_from(section, over, raw.get(section, prefer, raw=True), raw.origins[(section, prefer)])
    return raw


@dataclass(frozen=True)
class TableNames:
    participants: str = "assignments"
    hits: str = "amt_hit"
    campaigns: str = "campaign"
    jobs: str = "apscheduler_jobs"


@dataclass(frozen=True)
class ByMode:
    """One ``[HIT Configuration]`` key per marketplace mode (``require_quals_<mode>``...)."""

    local: str = ""
    sandbox: str = ""
    live: str = ""

    def __getitem__(self, mode: str) -> str:
        return str(getattr(self, mode))


@dataclass(frozen=True)
class HitSettings:
    """``[HIT Configuration]``, read and checked once, when the settings are loaded: what
    every HIT of the project is posted with (turnout.services.hits builds the request)."""

    title: str = ""
    description: str = ""
    keywords: str = ""
    lifetime: str = "24"  # hours; MTurk's bounds are checked where the request is built
    approve_requirement: int = 95
    number_hits_approved: int = 0
    require_master_workers: bool = False
    us_only: bool = True
    require_quals: ByMode = ByMode()
    block_quals: ByMode = ByMode()
    advanced_quals_path: ByMode = ByMode()
    block_repeat_workers: bool = False
    block_repeat_workers_name: str = ""


def read_hit_settings(raw: RawConfig) -> HitSettings:
    """``[HIT Configuration]`` typed; a bad value raises ConfigError naming where it was set.

    A key that is missing or empty takes its default. ``<key>_<mode>`` keys: local mode
    rehearses the sandbox (``<key>_local`` if set, else ``<key>_sandbox``); psiTurk's
    deprecated unsuffixed key was already copied over both suffixed ones (_BACK_COMPAT).
    """
    section = "HIT Configuration"

    def text(key: str, default: str = "", *, raw_text: bool = False) -> str:
        return raw.text(section, key, raw=raw_text) if raw.has_option(section, key) else default

    def integer(key: str, default: int) -> int:
        return raw.integer(section, key) if text(key) else default

    def boolean(key: str, default: bool) -> bool:
        return raw.boolean(section, key) if text(key) else default

    def by_mode(base: str) -> ByMode:
        sandbox = text(f"{base}_sandbox")
        return ByMode(local=text(f"{base}_local") or sandbox, sandbox=sandbox, live=text(f"{base}_live"))

    lifetime = text("lifetime", "24")
    if lifetime:
        raw.number(section, "lifetime", minimum=0)
    return HitSettings(
        title=text("title", raw_text=True), description=text("description", raw_text=True),
        keywords=text("keywords"), lifetime=lifetime,
        approve_requirement=integer("approve_requirement", 95),
        number_hits_approved=integer("number_hits_approved", 0),
        require_master_workers=boolean("require_master_workers", False), us_only=boolean("us_only", True),
        require_quals=by_mode("require_quals"), block_quals=by_mode("block_quals"),
        advanced_quals_path=by_mode("advanced_quals_path"),
        block_repeat_workers=boolean("block_repeat_workers", False),
        block_repeat_workers_name=text("block_repeat_workers_name"),
    )


@dataclass(frozen=True)
class Settings:
    """Everything turnout needs from the configuration, typed and checked."""

    project_dir: Path
    raw: RawConfig = field(repr=False, compare=False)
    database_url: str
    tables: TableNames
    host: str
    port: int
    threads: int
    logfile: str
    accesslog: str
    loglevel: int
    server_timeout: int
    certfile: str
    keyfile: str
    enable_dashboard: bool
    do_scheduler: bool
    login_username: str
    login_pw: str
    secret_key: str
    max_request_bytes: int
    codeversion: str
    num_conds: int
    num_counters: int
    contact_email: str
    browser_exclude_rules: tuple[str, ...]
    allow_repeats: bool
    cutoff_minutes: float
    participant_tokens: bool
    default_mode: str
    marketplace_store: Path
    simulate_arrival_rate: float
    hit: HitSettings = HitSettings()

    def get(self, section: str, key: str, fallback: str | None = None) -> str | None:
        """Read any raw option (custom keys included), as psiTurk's config.get does."""
        if fallback is not None and not self.raw.has_option(section, key):
            return fallback
        return self.raw.text(section, key)

    def ad_url(self, mode: str | None = None) -> str:
        """The public URL of the ad page that MTurk's ExternalQuestion points at.

        In local mode (``mode``, else launch_in_mode) every ad_url_* key that no file or
        variable sets follows where this project's server listens: the address ``turnout
        serve`` recorded when it started (``--port``, ``PSITURK_PORT``), else host and port
        from the settings. Why: the offline marketplace's workers are on this machine, so a
        fixed ad_url_port (22362) sent them to nothing when the server ran elsewhere.
        """
        raw = self.raw
        if raw.has_option("HIT Configuration", "ad_url") and raw.text("HIT Configuration", "ad_url"):
            return raw.text("HIT Configuration", "ad_url")
        parts = {}
        local = (mode or self.default_mode) == "local"
        served = self.served_at() if local else None
        for key in ("ad_url_protocol", "ad_url_domain", "ad_url_port", "ad_url_route"):
            value = raw.text("HIT Configuration", key)
            if local and not self.set_explicitly("HIT Configuration", key):
                protocol, domain, port = served or ("https" if self.certfile and self.keyfile else "http",
                                                    _reachable(self.host), self.port)
                value = {"ad_url_protocol": protocol, "ad_url_domain": domain, "ad_url_port": str(port),
                         "ad_url_route": value or "pub"}[key]
            if not value:
                raise ConfigError(f"{raw.where('HIT Configuration', key)}: must be set to post HITs")
            parts[key] = value
        return (f"{parts['ad_url_protocol']}://{parts['ad_url_domain']}:{parts['ad_url_port']}/"
                f"{parts['ad_url_route'].lstrip('/')}")

    def set_explicitly(self, section: str, key: str) -> bool:
        """Whether a file or variable (not turnout's defaults) gave ``key`` a value."""
        origin = self.raw.origins.get((section, key), "defaults")
        return origin not in ("defaults", "cloud defaults") and bool(self.raw.text(section, key))

    def served_at(self) -> tuple[str, str, int] | None:
        """(protocol, host, port) of this project's running ``turnout serve``, if one runs."""
        return read_serving_file(self.project_dir)


SERVING_FILE = Path(".turnout") / "serving.json"


def _reachable(host: str) -> str:
    """A host a browser on this machine can open: not the wildcard the server binds to."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def write_serving_file(project_dir: Path, protocol: str, host: str, port: int, pid: int) -> Path:
    """Record where ``turnout serve`` listens, for local-mode ad URLs made by other commands."""
    import json

    path = project_dir / SERVING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"protocol": protocol, "host": _reachable(host), "port": port, "pid": pid}),
                         encoding="utf-8")
    temporary.replace(path)
    return path


def read_serving_file(project_dir: Path) -> tuple[str, str, int] | None:
    """The address in the serving file, if the server that wrote it still runs."""
    import json

    try:
        data = json.loads((project_dir / SERVING_FILE).read_text(encoding="utf-8"))
        pid, port = int(data["pid"]), int(data["port"])
        protocol, host = str(data["protocol"]), str(data["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # left behind by a server that was killed
    except PermissionError:
        pass  # alive, another user's
    return protocol, host, port


def normalize_database_url(url: str, project_dir: Path, where: str) -> str:
    """Pick turnout's drivers and resolve relative SQLite paths against the project."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        port = parsed.port  # a non-numeric port fails here, as ValueError
    except (ArgumentError, ValueError):
        raise ConfigError(f"{where}: {url!r} is not a database URL (e.g. sqlite:///participants.db, "
                          "postgresql://user@host/db, mysql://user:pw@host/db)") from None
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{where}: port {port} is out of range (1 to 65535)")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if not path.is_absolute():
                path = project_dir / path
            parsed = parsed.set(database=str(path))
        return parsed.render_as_string(hide_password=False)
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend in ("mysql", "mariadb"):
        parsed = parsed.set(drivername="mysql+pymysql")
    else:
        raise ConfigError(f"{where}: database {backend!r} is not supported "
                          "(use sqlite, postgresql or mysql/mariadb)")
    if not parsed.database:
        raise ConfigError(f"{where}: {url!r} names no database")
    return parsed.render_as_string(hide_password=False)


def _threads(raw: RawConfig) -> int:
    value = raw.text("Server Parameters", "threads").lower()
    if value == "auto":
        return 2 * (os.cpu_count() or 1) + 1
    return raw.integer("Server Parameters", "threads", minimum=1)


def _loglevel(raw: RawConfig) -> int:
    value = raw.text("Server Parameters", "loglevel").upper()
    names = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    if value in names:
        return names.index(value)
    return raw.integer("Server Parameters", "loglevel", minimum=0, maximum=4)


def load_settings(project_dir: str | Path = ".", environ: Mapping[str, str] | None = None) -> Settings:
    """Load and validate the configuration of the project in ``project_dir``."""
    project = Path(project_dir).resolve()
    if not project.is_dir():
        raise ConfigError(f"{project}: no such project folder")
    raw = load_raw_config(project, environ)
    mode = raw.text("Shell Parameters", "launch_in_mode").lower()
    if mode not in MODES:
        raise ConfigError(f"{raw.where('Shell Parameters', 'launch_in_mode')}: unknown mode {mode!r} "
                          f"(use one of {', '.join(MODES)})")
    host = raw.text("Server Parameters", "host")
    if not host:
        raise ConfigError(f"{raw.where('Server Parameters', 'host')}: must not be empty")
    tables = TableNames(
        participants=raw.text("Database Parameters", "table_name") or "assignments",
        hits=raw.text("Database Parameters", "hits_table_name") or "amt_hit",
        campaigns=raw.text("Database Parameters", "campaigns_table_name") or "campaign",
        jobs=raw.text("Database Parameters", "jobs_table_name") or "apscheduler_jobs",
    )
    for key, name in (("table_name", tables.participants), ("hits_table_name", tables.hits),
                      ("campaigns_table_name", tables.campaigns), ("jobs_table_name", tables.jobs)):
        # 40: index and schema-version names add up to 20 characters to the table name, and
        # PostgreSQL (63) and MariaDB (64) refuse or silently cut longer identifiers.
        if not name.replace("_", "").isalnum() or not name.isascii() or len(name) > 40:
            raise ConfigError(f"{raw.where('Database Parameters', key)}: {name!r} is not a valid table name "
                              "(letters, digits and _ only, at most 40 characters)")
    rules = tuple(r.strip() for r in raw.text("Task Parameters", "browser_exclude_rule").split(",") if r.strip())
    store = Path(raw.text("Marketplace", "local_store") or ".turnout/marketplace.db")
    return Settings(
        project_dir=project,
        raw=raw,
        database_url=normalize_database_url(raw.text("Database Parameters", "database_url"), project,
                                            raw.where("Database Parameters", "database_url")),
        tables=tables,
        host=host,
        port=raw.integer("Server Parameters", "port", minimum=0, maximum=65535),
        threads=_threads(raw),
        logfile=raw.text("Server Parameters", "logfile"),
        accesslog=raw.text("Server Parameters", "accesslog"),
        loglevel=_loglevel(raw),
        server_timeout=raw.integer("Server Parameters", "server_timeout", minimum=1),
        certfile=raw.text("Server Parameters", "certfile"),
        keyfile=raw.text("Server Parameters", "keyfile"),
        enable_dashboard=raw.boolean("Server Parameters", "enable_dashboard"),
        do_scheduler=raw.boolean("Server Parameters", "do_scheduler"),
        login_username=raw.text("Server Parameters", "login_username"),
        login_pw=raw.text("Server Parameters", "login_pw"),
        secret_key=raw.text("Server Parameters", "secret_key"),
        max_request_bytes=raw.integer("Server Parameters", "max_request_bytes", minimum=1024),
        codeversion=raw.text("Task Parameters", "experiment_code_version"),
        num_conds=raw.integer("Task Parameters", "num_conds", minimum=1),
        num_counters=raw.integer("Task Parameters", "num_counters", minimum=1),
        contact_email=raw.text("Task Parameters", "contact_email_on_error"),
        browser_exclude_rules=rules,
        allow_repeats=raw.boolean("Task Parameters", "allow_repeats"),
        cutoff_minutes=raw.number("Task Parameters", "cutoff_time", minimum=0),
        participant_tokens=raw.boolean("Task Parameters", "participant_tokens"),
        default_mode=mode,
        marketplace_store=store if store.is_absolute() else project / store,
        simulate_arrival_rate=raw.number("Marketplace", "simulate_arrival_rate", minimum=0),
        hit=read_hit_settings(raw),
    )


def check_tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate and key ``turnout serve`` will use for https, checked; None for http.

    Why here and not in gunicorn: gunicorn reads them in every worker, so a wrong path
    ended in a traceback per worker in server.log and a server that never answered.
    """
    raw = settings.raw
    where = {key: raw.where("Server Parameters", key) for key in ("certfile", "keyfile")}
    given = {"certfile": settings.certfile, "keyfile": settings.keyfile}
    if not any(given.values()):
        return None
    for key, other in (("certfile", "keyfile"), ("keyfile", "certfile")):
        if given[key] and not given[other]:
            raise ConfigError(f"{where[key]} is set but {other} is empty: https needs both "
                              "(leave both empty to serve http)")
    paths = {}
    for key, value in given.items():
        path = Path(value) if Path(value).is_absolute() else settings.project_dir / value
        if not path.exists():
            raise ConfigError(f"{where[key]}: {path}: no such file")
        if not path.is_file():
            raise ConfigError(f"{where[key]}: {path} is not a file")
        try:
            path.open("rb").close()
        except OSError as exc:
            raise ConfigError(f"{where[key]}: {path}: cannot read it ({exc.strerror})") from None
        paths[key] = path
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(paths["certfile"], paths["keyfile"])
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise ConfigError(f"{where['certfile']} and keyfile: {paths['certfile']} and {paths['keyfile']} are not "
                          f"a PEM certificate and its private key ({reason})") from None
    return paths["certfile"], paths["keyfile"]


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite database URL (None for other databases and in-memory ones)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(database_url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def check_database_writable(settings: Settings) -> None:
    """Refuse a SQLite database the server could read but not write.

    Why: SQLite opens a read-only file without complaint, so the server used to start and
    then answer every participant's /exp with a 500. Writing needs the file and its folder
    (SQLite writes its -wal/-journal files beside it). The checks open for writing and
    create a scratch file rather than asking os.access, which says yes to root even on a
    read-only or immutable file.
    """
    path = sqlite_path(settings.database_url)
    if path is None:
        return
    where = settings.raw.where("Database Parameters", "database_url")
    how = "make it writable for this user, or set database_url to a database that is"
    if path.exists():
        if not path.is_file():
            raise ConfigError(f"{where}: {path} is not a file")
        try:
            with path.open("r+b"):
                pass
        except OSError as exc:
            raise ConfigError(f"{where}: the database {path} is read-only ({exc.strerror}); {how}") from None
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"{where}: the folder {folder} of the database does not exist")
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".turnout-write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{where}: the folder {folder} of the database {path.name} is read-only "
                          f"({exc.strerror}); SQLite writes its journal there; {how}") from None


# --- rewriting config.txt ----------------------------------------------------------------

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
