"""``psiturk.experiment_server_controller``: psiTurk's start/stop of its server process.

turnout's server is started with ``turnout serve`` and stopped like any process; the
port helper is provided, the process control is not.
"""

from __future__ import annotations

import logging
import socket

from turnout.compat.unsupported import cls, function

logger = logging.getLogger("turnout.compat.experiment_server_controller")
# psiTurk's console handler for this logger (not attached here: turnout configures logging).
stream_handler = logging.StreamHandler()
stream_formatter = logging.Formatter("%(message)s")
stream_handler.setFormatter(stream_formatter)
INSTEAD = "start the server with `turnout serve` and stop it with Ctrl-C or a signal to its process"


class ExperimentServerControllerException(Exception):
    """psiTurk's error type for the server controller."""


def is_port_available(ip: str, port: int | str) -> bool:
    """True when nothing accepts connections on ``ip:port`` (psiTurk's test)."""
    try:
        with socket.create_connection((ip, int(port)), timeout=1):
            return False
    except OSError:
        return True


ExperimentServerController = cls("psiturk.experiment_server_controller.ExperimentServerController",
                                 INSTEAD)
WaitForState = cls("psiturk.experiment_server_controller.WaitForState", INSTEAD)
wait_until_online = function("psiturk.experiment_server_controller.wait_until_online", INSTEAD)
launch_browser = function("psiturk.experiment_server_controller.launch_browser",
                          "open the URL `turnout debug` prints")
launch_browser_when_online = function("psiturk.experiment_server_controller.launch_browser_when_online",
                                      "open the URL `turnout debug` prints")
