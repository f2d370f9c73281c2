"""``psiturk.services_manager``: psiTurk's holder of a services wrapper and its mode.

psiTurk kept one process-wide instance whose mode every dashboard request switched, so
an action could run in another user's marketplace. ``psiturk_services_manager`` is kept
for imports, but each ``PsiturkServicesManager`` here owns its own wrapper: make one per
use (or an ``MTurkServicesWrapper(mode=...)``) rather than switching the shared one.
"""

from __future__ import annotations

from typing import Any

SESSION_SERVICES_MANAGER_MODE_KEY = "services_manager_mode"


class PsiturkServicesManager:
    def __init__(self) -> None:
        self._wrapper: Any = None

    @property
    def amt_services_wrapper(self) -> Any:
        if self._wrapper is None:
            from turnout.compat.psiturk.amt_services_wrapper import MTurkServicesWrapper

            self._wrapper = MTurkServicesWrapper()
        return self._wrapper

    @property
    def config(self) -> Any:
        return self.amt_services_wrapper.config

    @property
    def mode(self) -> str:
        return str(self.amt_services_wrapper.get_mode().data)

    @mode.setter
    def mode(self, value: str) -> None:
        result = self.amt_services_wrapper.set_mode(value)
        if not result.success:
            raise result.exception

    @property
    def codeversion(self) -> str:
        return str(self.config.get("Task Parameters", "experiment_code_version"))

    @property
    def amt_balance(self) -> Any:
        return self.amt_services_wrapper.amt_balance().data


psiturk_services_manager = PsiturkServicesManager()
