"""``psiturk.tasks``: psiTurk's scheduled jobs. Approve-all is mapped; campaigns are not."""

from __future__ import annotations

import logging
from typing import Any

from turnout.compat.unsupported import function

logger = logging.getLogger("turnout.compat.tasks")


class TaskUtils:
    """psiTurk's holder of the scheduler's services wrapper, one per instance here."""

    _wrapper: Any = None

    @property
    def aws_services_wrapper(self) -> Any:
        if self._wrapper is None:
            from turnout.compat.psiturk.amt_services_wrapper import MTurkServicesWrapper

            self._wrapper = MTurkServicesWrapper()
        return self._wrapper


task_utils = TaskUtils()


def do_approve_all(mode: str) -> None:
    """Approve all of this study's submitted work in ``mode``, through the payments ledger.

    A wrapper of its own for ``mode``: psiTurk switched one shared wrapper's mode, so two
    jobs at once could act in each other's marketplace.
    """
    from turnout.compat.psiturk.amt_services_wrapper import MTurkServicesWrapper

    result = MTurkServicesWrapper(mode=mode).approve_all_assignments()
    if result.success:
        logger.info("Approved all.")
    else:
        logger.error("%s", result.exception)


do_campaign_round = function("psiturk.tasks.do_campaign_round",
                             "turnout has no recruitment campaigns yet; post HITs with `turnout hit create`")
