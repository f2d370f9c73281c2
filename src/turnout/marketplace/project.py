"""A project's offline marketplace: its store, its endpoint and its local key pair.

Every entry point that opens ``[Marketplace] local_store`` (``turnout serve``, the CLI in
local mode, simulated arrivals, ``turnout marketplace env``) goes through ``open_store``,
so a store path that is a directory, not SQLite or unreachable stops it with one line that
names the setting and the path, instead of a sqlite3 traceback in each process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from turnout.clock import Clock
from turnout.config import ConfigError, Settings

if TYPE_CHECKING:
    from turnout.marketplace.local import MarketplaceState

__all__ = ["local_endpoint", "open_store"]


def _where(settings: Settings) -> str:
    try:
        return settings.raw.where("Marketplace", "local_store")
    except Exception:  # noqa: BLE001 - a settings object without provenance: name the key plainly
        return "[Marketplace] local_store"


def open_store(settings: Settings, clock: Clock | None = None) -> MarketplaceState:
    """The project's marketplace store, created if new; ConfigError naming the key if unusable."""
    from turnout.marketplace.local import MarketplaceState, StoreUnusable

    store = settings.marketplace_store
    where = _where(settings)
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{where} = {store}: cannot create its folder {store.parent} "
                          f"({exc.strerror or exc})") from None
    _ignore_in_git(settings, store)
    try:
        return MarketplaceState(store, clock)
    except StoreUnusable as exc:
        raise ConfigError(f"{where} = {store}: {exc.reason}") from None
    except OSError as exc:
        raise ConfigError(f"{where} = {store}: {exc.strerror or exc}") from None


def _ignore_in_git(settings: Settings, store: Path) -> None:
    """Keep the store (it holds the local key pair) out of commits: a ``.gitignore`` of ``*``
    in its own folder (``.turnout/`` by default), unless that folder is the project itself."""
    folder = store.parent
    try:
        if folder.resolve() == settings.project_dir.resolve():
            return
        marker = folder / ".gitignore"
        if not marker.exists():
            marker.write_text("# turnout's offline marketplace store: local keys and rehearsal data\n*\n",
                              encoding="utf-8")
    except OSError:  # read-only folder: the store check below says what is wrong, if anything
        pass


def local_endpoint(settings: Settings, host: str | None = None, port: int | None = None) -> str:
    """The Requester API endpoint ``turnout serve`` mounts in local mode (``.../_mturk/``)."""
    shown = host or settings.host
    if shown in ("0.0.0.0", "::", ""):
        shown = "127.0.0.1"
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    scheme = "https" if settings.certfile and settings.keyfile else "http"
    return f"{scheme}://{shown}:{port or settings.port}/_mturk/"
