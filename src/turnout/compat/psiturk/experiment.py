"""``psiturk.experiment``: the server's app, its participant views and helpers.

Some projects' custom.py wrap or call psiTurk's own views (for example a custom
``/complete`` that calls ``debug_complete()`` and then redirects to Prolific).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from turnout.compat.unsupported import function, module_getattr
from turnout.experiment import routes as _routes
from turnout.experiment.errors import ExperimentError


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
favicon = _view(_routes.favicon)
psiturk_js = _view(_routes.psiturk_js)

# /ppid told anyone the server's parent process id; turnout does not serve it.
ppid = function("psiturk.experiment.ppid", "turnout does not expose the server's process id")
run_webserver = function("psiturk.experiment.run_webserver", "start the server with `turnout serve`")


def check_templates_exist() -> None:
    """psiTurk's start-up check; turnout checks every required template before serving."""
    from turnout.compat import runtime
    from turnout.project import check_templates

    check_templates(runtime().settings.project_dir)


def handle_exp_error(exception: ExperimentError) -> Any:
    """Render ``exception``'s numbered error page (HTTP 200), as the server does."""
    from flask import request

    from turnout.compat import runtime

    return exception.error_page(request, runtime().settings.contact_email)


def handle_experiment_api_error(error: Any) -> Any:
    """``error`` (an ExperimentApiError) as JSON with its status code, as the server answers it."""
    from flask import jsonify

    return jsonify(error.to_dict()), error.status_code


def shutdown_session(_exception: BaseException | None = None) -> None:
    from turnout.compat import runtime

    runtime().db.session.remove()


def insert_mode(page_html: str) -> str:
    """psiTurk's one-argument form: add ``&mode={{ mode }}`` after the last workerId link."""
    return _routes.insert_mode(page_html, "page")


def get_condition(mode: str) -> tuple[int, int]:
    """The condition and counterbalance a new participant in ``mode`` would get now."""
    from turnout.services.participants import peek_condition

    return peek_condition(_routes.ctx(), mode)


get_random_condcount = get_condition


_unsupported = module_getattr("psiturk.experiment", {
    "scheduler": "turnout runs no scheduler; run `turnout worker approve --all` from cron or a timer",
    "jobstores": "turnout runs no APScheduler",
})


def __getattr__(name: str) -> Any:
    from turnout.compat import runtime

    if name == "app":
        # The app serving this request, or, while custom.py is imported, the app being built.
        from flask import current_app, has_app_context

        if has_app_context():
            return current_app._get_current_object()  # type: ignore[attr-defined]
        app = runtime().app
        if app is None:
            raise AttributeError("psiturk.experiment.app: no turnout app is being built or served")
        return app
    if name == "JOBS_TABLENAME":
        return runtime().settings.tables.jobs
    if name == "PSITURK_JS_FILE":  # the psiturk.js turnout serves at /static/js/psiturk.js
        from importlib import resources

        return str(resources.files("turnout.experiment").joinpath("static/psiturk.js"))
    if name in ("LOG_LEVELS", "LOG_LEVEL", "logfile"):
        import logging

        levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
        settings = runtime().settings
        return {"LOG_LEVELS": levels, "LOG_LEVEL": settings.loglevel, "logfile": settings.logfile}[name]
    if name in ("db_session", "Participant", "config", "CONFIG"):
        rt = runtime()
        if name == "CONFIG":
            from turnout.compat.psiturk.psiturk_config import PsiturkConfig

            config = PsiturkConfig()
            config.load_config()
            return config
        return {"db_session": rt.db.session, "Participant": rt.db.models.Participant,
                "config": rt.settings.raw}[name]
    return _unsupported(name)
