"""``psiturk.experiment_server``: psiTurk's gunicorn launcher, replaced by ``turnout serve``."""

from __future__ import annotations

from turnout.compat.unsupported import cls, function

INSTEAD = "start the server with `turnout serve` in the project folder (it runs gunicorn itself)"

ExperimentServer = cls("psiturk.experiment_server.ExperimentServer", INSTEAD)
launch = function("psiturk.experiment_server.launch", INSTEAD)
sigint_handler = function("psiturk.experiment_server.sigint_handler", INSTEAD)


def __getattr__(name: str) -> object:
    if name == "config":  # psiTurk's module-level PsiturkConfig, loaded
        from turnout.compat.psiturk.psiturk_config import PsiturkConfig

        config = PsiturkConfig()
        config.load_config()
        return config
    raise AttributeError(f"module 'psiturk.experiment_server' has no attribute {name!r}")
