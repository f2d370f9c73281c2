"""The application factory. Importing this module does no work; ``create_app`` does it all."""

from __future__ import annotations

import logging
import random
from typing import Any

from flask import Flask, jsonify, request
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader
from werkzeug.exceptions import HTTPException

from turnout import compat
from turnout.clock import Clock, SystemClock
from turnout.config import ConfigError, Settings
from turnout.db.engine import Database
from turnout.db.migrate import create_custom_tables, is_current
from turnout.errors import TurnoutError
from turnout.experiment.errors import ExperimentApiError, ExperimentError
from turnout.project import custom_error, load_project
from turnout.services.participants import ExperimentContext

log = logging.getLogger("turnout")

# Participant routes psiturk.js calls with XHR: their errors are JSON, not pages.
_JSON_PREFIXES = ("/sync/", "/inexp", "/quitter", "/worker_complete", "/worker_submitted",
                  "/check_worker_status", "/api/")


def _wants_json() -> bool:
    if request.path.startswith(_JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _error_response(code: str, message: str, status: int, extra: dict[str, Any] | None = None) -> Any:
    if _wants_json():
        body: dict[str, Any] = {"error": {"code": code, "message": message}}
        if extra:
            body["error"]["detail"] = extra
        return jsonify(body), status
    from markupsafe import escape

    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{status}</title></head>"
            f"<body><h1>{status}</h1><p>{escape(message)}</p></body></html>")
    return page, status, {"Content-Type": "text/html; charset=utf-8"}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ExperimentError)
    def experiment_error(exc: ExperimentError) -> Any:
        ctx: ExperimentContext = app.extensions["turnout"]
        log.info("experiment error %s on %s", exc, request.path)
        # HTTP 200 with the numbered page, as psiTurk (and its projects' tests) expect.
        return exc.error_page(request, ctx.settings.contact_email)

    @app.errorhandler(ExperimentApiError)
    def experiment_api_error(exc: ExperimentApiError) -> Any:
        return jsonify(exc.to_dict()), exc.status_code

    @app.errorhandler(TurnoutError)
    def turnout_error(exc: TurnoutError) -> Any:
        return _error_response(exc.code, exc.message, exc.http_status, exc.detail or None)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = (exc.name or "error").lower().replace(" ", "_")
        messages = {413: f"the request body is larger than the limit of "
                         f"{app.config.get('MAX_CONTENT_LENGTH')} bytes; nothing was saved"}
        response = _error_response(code, messages.get(exc.code or 0, exc.description or exc.name),
                                   exc.code or 500)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error_response("internal_error", "the server hit an unexpected error; it has been logged",
                               500)


def create_app(settings: Settings, *, clock: Clock | None = None, db: Database | None = None,
               check_schema: bool = True, rng: random.Random | None = None) -> Flask:
    """Build the experiment server for one project."""
    db = db or Database(settings.database_url, settings.tables)
    if check_schema and not is_current(db):
        raise ConfigError(f"the database {db.engine.url.render_as_string(hide_password=True)} is not at "
                          "turnout's current schema; run `turnout db upgrade` in the project folder")
    clock = clock or SystemClock()
    # The app exists before custom.py is imported: psiTurk projects import it from there.
    static_dir, templates_dir = settings.project_dir / "static", settings.project_dir / "templates"
    app = Flask("turnout.experiment", root_path=str(settings.project_dir),
                static_folder=str(static_dir), static_url_path="/static",
                template_folder=str(templates_dir))
    app.jinja_loader = ChoiceLoader([FileSystemLoader(str(templates_dir)),
                                     PackageLoader("turnout.experiment", "templates")])
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SEND_FILE_MAX_AGE_DEFAULT=10,
        SECRET_KEY=settings.secret_key or None,
    )
    compat.activate(settings, db, app=app, clock=clock)
    project = load_project(settings.project_dir)
    ctx = ExperimentContext(db=db, settings=settings, clock=clock, project=project)
    if rng is not None:
        ctx.rng = rng
    app.extensions["turnout"] = ctx

    from turnout.experiment.routes import bp as experiment_bp

    # The project's blueprint first: as in psiTurk, a custom route on a built-in path
    # (a project's own /complete, say) wins over turnout's.
    if project.custom_blueprint is not None:
        app.register_blueprint(project.custom_blueprint)
    app.register_blueprint(experiment_bp)
    if project.custom_init_app is not None:
        try:
            project.custom_init_app(app)
        except Exception as exc:  # stop start-up with the project's error, not a traceback
            raise custom_error(exc, project.root / "custom.py", "custom.py init_app(app) failed") from None
    if settings.enable_dashboard:  # disabled: nothing of it is mounted, /dashboard is a 404
        from turnout.dashboard import init_app as init_dashboard

        init_dashboard(app)
    create_custom_tables(db)
    register_error_handlers(app)
    compat.install_psiturk_app_surface(app)

    @app.teardown_appcontext
    def remove_session(_exc: BaseException | None) -> None:
        db.session.remove()

    return app
