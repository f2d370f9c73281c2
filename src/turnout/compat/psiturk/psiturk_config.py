"""``PsiturkConfig``: the same configuration the server runs with, read the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from turnout.config import RawConfig, load_raw_config


class PsiturkConfig(RawConfig):
    def __init__(self, local_config: str = "config.txt", global_config_name: str = ".psiturkconfig",
                 **_: Any) -> None:
        super().__init__()
        self.local_config = local_config
        self.global_config_name = global_config_name

    def load_config(self) -> None:
        """Copy the configuration the running server validated (its files *and* the
        environment it was started with), so custom code and server never disagree.
        Outside a server, read the project in the current folder."""
        from turnout.compat import _runtime

        loaded = _runtime.settings.raw if _runtime else load_raw_config(Path.cwd())
        for section in loaded.sections():
            if not self.has_section(section):
                self.add_section(section)
            for key, value in loaded.items(section, raw=True):
                self.set(section, key, value)
        self.origins = dict(loaded.origins)

    def get_ad_url(self) -> str:
        from turnout.compat import runtime

        return runtime().settings.ad_url()

    def get_require_quals(self) -> None:
        """Present (and doing nothing) in psiTurk 3.3.1 too."""
        return None
