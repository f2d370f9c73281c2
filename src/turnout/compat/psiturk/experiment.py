"""``psiturk.experiment``: the server's app, its participant views and helpers.

Some projects' custom.py wrap or call psiTurk's own views (for example a custom
``/complete`` that calls ``debug_complete()`` and then redirects to Prolific).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from turnout.experiment import routes as _routes
from turnout.experiment.errors import ExperimentError  # noqa: F401


def _view(view: Callable[..., Any]) -> Callable[..., Any]:
    """A turnout view callable from project code.

    psiTurk's views shared ``db_session`` with project code and committed it. turnout's
    views use their own transactions, so the project's session is committed first: on
    SQLite it may hold the write lock that the view needs.
    """

    @functools.wraps(view)
    def call(*args: Any, **kwargs: Any) -> Any:
        from turnout.compat import runtime

        runtime().db.session.commit()
        return view(*args, **kwargs)

    return call


# psiTurk's view function names, mapped to turnout's views (same names, same URLs).
advertisement = _view(_routes.advertisement)
give_consent = _view(_routes.give_consent)
start_exp = _view(_routes.start_exp)
enterexp = _view(_routes.enterexp)
load = _view(_routes.load)
update = _view(_routes.update)
quitter = _view(_routes.quitter)
debug_complete = _view(_routes.debug_complete)
worker_complete = _view(_routes.worker_complete)
worker_submitted = _view(_routes.worker_submitted)
check_worker_status = _view(_routes.check_worker_status)
regularpage = _view(_routes.regularpage)
index = _view(_routes.index)


def insert_mode(page_html: str) -> str:
    """psiTurk's one-argument form: add ``&mode={{ mode }}`` after the last workerId link."""
    return _routes.insert_mode(page_html, "page")


def get_condition(mode: str) -> tuple[int, int]:
    """The condition and counterbalance a new participant in ``mode`` would get now."""
    from turnout.services.participants import peek_condition

    return peek_condition(_routes.ctx(), mode)


def __getattr__(name: str) -> Any:
    if name == "app":
        from flask import current_app

        return current_app._get_current_object()  # type: ignore[attr-defined]
    if name in ("db_session", "Participant", "config"):
        from turnout.compat import runtime

        rt = runtime()
        return {"db_session": rt.db.session, "Participant": rt.db.models.Participant,
                "config": rt.settings.raw}[name]
    raise AttributeError(name)
