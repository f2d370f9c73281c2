"""psiTurk's whole surface for project code: endpoint names, every module, the app itself.

Each test is a small project of our own (a custom.py written for the test) that uses one
thing psiTurk 3.3.1 offered project code, served by turnout unchanged.
"""

from __future__ import annotations

import base64
import importlib
import textwrap
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from turnout.config import ConfigError

HEADER = """\
from flask import Blueprint, jsonify, redirect, render_template, request, url_for
custom_code = Blueprint("custom_code", __name__)
"""

# psiTurk 3.3.1's endpoint names and the URL each builds there, as observed by building
# them in psiTurk 3.3.1's own app (Flask 1.1.4, Werkzeug 1.0.1, its example project). For
# /ad and /pub on one view Werkzeug builds the first registered, /pub.
PSITURK_URLS = {
    "index": ({}, "/"),
    "favicon": ({}, "/favicon.ico"),
    "psiturk_js": ({}, "/static/js/psiturk.js"),
    "check_worker_status": ({"workerId": "W1"}, "/check_worker_status?workerId=W1"),
    "advertisement": ({"hitId": "H1", "assignmentId": "A1", "mode": "sandbox"},
                      "/pub?hitId=H1&assignmentId=A1&mode=sandbox"),
    "give_consent": ({}, "/consent"),
    "start_exp": ({"hitId": "H1", "assignmentId": "A1", "workerId": "W1", "mode": "debug"},
                  "/exp?hitId=H1&assignmentId=A1&workerId=W1&mode=debug"),
    "enterexp": ({}, "/inexp"),
    "load": ({"uid": "W1:A1"}, "/sync/W1:A1"),
    "update": ({"uid": "W1:A1"}, "/sync/W1:A1"),
    "quitter": ({}, "/quitter"),
    "debug_complete": ({"uniqueId": "W1:A1", "mode": "debug"}, "/complete?uniqueId=W1%3AA1&mode=debug"),
    "worker_complete": ({}, "/worker_complete"),
    "worker_submitted": ({}, "/worker_submitted"),
    "regularpage": ({"path": "instructions/instruct-1.html"}, "/instructions/instruct-1.html"),
    "static": ({"filename": "js/task.js"}, "/static/js/task.js"),
}

PSITURK_MODULES = (
    "amt_services", "amt_services_wrapper", "api", "dashboard", "db", "experiment", "experiment_errors",
    "experiment_server", "experiment_server_controller", "models", "psiturk_config", "psiturk_exceptions",
    "psiturk_shell", "psiturk_statuses", "services_manager", "tasks", "user_utils", "utils", "version",
)


def custom(body: str) -> str:
    return HEADER + textwrap.dedent(body)


def same_url(built: str, psiturks: str) -> bool:
    """The same path and the same query arguments in the same order. Werkzeug 1 escaped a
    ':' in a query value (%3A), Werkzeug 3 leaves it (RFC 3986 allows it); both decode alike."""
    a, b = urlsplit(built), urlsplit(psiturks)
    return a.path == b.path and parse_qsl(a.query) == parse_qsl(b.query)


# --- psiTurk's endpoint names ------------------------------------------------------------------


def test_every_psiturk_endpoint_name_builds_psiturks_url(make_app, project_file) -> None:
    project_file("custom.py", custom(f"""
        URLS = {PSITURK_URLS!r}
        @custom_code.route("/urls")
        def urls():
            return jsonify({{name: url_for(name, **args) for name, (args, _) in URLS.items()}})
    """))
    app = make_app()
    built = app.test_client().get("/urls")
    assert built.status_code == 200, built.data[:300]
    assert set(built.json) == set(PSITURK_URLS)
    differ = {name: built.json[name] for name, (_, url) in PSITURK_URLS.items() if not same_url(built.json[name], url)}
    assert differ == {}
    with app.test_request_context("/"):   # outside any blueprint, too (scripts, init_app)
        from flask import url_for

        differ = {name: url_for(name, **args) for name, (args, url) in PSITURK_URLS.items()
                  if not same_url(url_for(name, **args), url)}
        assert differ == {}
        assert url_for("experiment.start_exp") == "/exp"   # turnout's own names still work


def test_redirect_to_start_exp_by_psiturks_name(make_app, project_file, read_row) -> None:
    # The public project that found this: a custom route that forwards its query string to
    # /exp by psiTurk's endpoint name. On turnout url_for raised and the route answered 500.
    project_file("custom.py", custom("""
        @custom_code.route("/begin")
        def begin():
            return redirect(url_for("start_exp", **request.args))
    """))
    app = make_app()
    client = app.test_client()
    response = client.get("/begin?hitId=HB1&assignmentId=AB1&workerId=WB1&mode=debug")
    assert response.status_code == 302
    assert response.headers["Location"] == "/exp?hitId=HB1&assignmentId=AB1&workerId=WB1&mode=debug"
    assert client.get(response.headers["Location"]).status_code == 200
    assert read_row(app, "WB1:AB1").status == 1


def test_templates_build_urls_with_psiturks_endpoint_names(make_app, project_file) -> None:
    project_file("templates/links.html",
                 '<a href="{{ url_for(\'give_consent\', hitId=h) }}">c</a>'
                 '<script src="{{ url_for(\'static\', filename=\'js/task.js\') }}"></script>'
                 '<a href="{{ url_for(\'load\', uid=u) }}">d</a>')
    project_file("custom.py", custom("""
        @custom_code.route("/links")
        def links():
            return render_template("links.html", h="H1", u="W:A")
    """))
    page = make_app().test_client().get("/links")
    assert page.data == (b'<a href="/consent?hitId=H1">c</a><script src="/static/js/task.js"></script>'
                         b'<a href="/sync/W:A">d</a>')


def test_a_projects_own_endpoint_with_a_psiturk_name_wins(make_app, project_file) -> None:
    # A project may name its own view like one of psiTurk's: a blueprint view `load`
    # (endpoint custom_code.load), or an app-level endpoint `update` from init_app.
    project_file("custom.py", custom("""
        @custom_code.route("/mine/load")
        def load():
            return jsonify(mine=url_for(".load"), psiturks=url_for("load", uid="W:A"),
                           app_level=url_for("update", key="k"))
        def init_app(app):
            app.add_url_rule("/mine/update/<key>", endpoint="update", view_func=lambda key: key)
    """))
    app = make_app()
    assert app.test_client().get("/mine/load").json == {
        "mine": "/mine/load", "psiturks": "/sync/W:A", "app_level": "/mine/update/k"}
    assert app.test_client().get("/mine/update/k").data == b"k"


def test_an_endpoint_psiturk_never_had_still_fails_to_build(make_app, project_file) -> None:
    project_file("custom.py", custom("""
        @custom_code.route("/bad_url")
        def bad_url():
            return url_for("no_such_view")
    """))
    response = make_app().test_client().get("/bad_url")
    assert response.status_code == 500   # the project's own bug, reported as psiTurk would


# --- every module of psiTurk's package ---------------------------------------------------------


def test_custom_py_importing_every_psiturk_module_starts(make_app, project_file) -> None:
    imports = "\n".join(f"import psiturk.{m}" for m in PSITURK_MODULES)
    project_file("custom.py", HEADER + imports + "\n" + textwrap.dedent("""
        from psiturk.amt_services_wrapper import MTurkServicesWrapper, WrapperResponse
        from psiturk.amt_services import MTurkServices, MTurkHIT, MASTERS_QUAL_ID
        from psiturk.experiment import app, get_random_condcount, insert_mode
        from psiturk.experiment_server_controller import ExperimentServerController, is_port_available
        from psiturk.psiturk_shell import PsiturkNetworkShell
        from psiturk.services_manager import psiturk_services_manager, SESSION_SERVICES_MANAGER_MODE_KEY
        from psiturk.tasks import do_approve_all, do_campaign_round
        from psiturk.models import Campaign, ASSIGNMENTS_TABLENAME, CODE_VERSION
        from psiturk.db import DATABASE
        from psiturk.psiturk_exceptions import HerokuAppNotSet, AdHtmlTooLarge
        from psiturk.experiment_errors import unwrap
        from psiturk.utils import colorize
        from psiturk.version import version_number
        @custom_code.route("/modules")
        def modules():
            return jsonify(version=version_number, table=ASSIGNMENTS_TABLENAME, codeversion=CODE_VERSION,
                           masters=MASTERS_QUAL_ID, same_app=app is psiturk.experiment.app,
                           wrapper_mode=MTurkServicesWrapper().get_mode().data)
    """))
    response = make_app().test_client().get("/modules")
    assert response.status_code == 200, response.data[:300]
    assert response.json == {"version": "3.3.1", "table": "assignments", "codeversion": "1.0",
                             "masters": "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH", "same_app": True,
                             "wrapper_mode": "local"}


@pytest.mark.parametrize(("call", "names"), [
    ("from psiturk.amt_services import MTurkServices\nMTurkServices()", "MTurkServicesWrapper"),
    ("from psiturk.experiment_server import launch\nlaunch()", "turnout serve"),
    ("from psiturk.experiment_server_controller import ExperimentServerController\n"
     "ExperimentServerController()", "turnout serve"),
    ("from psiturk.psiturk_shell import PsiturkNetworkShell\nPsiturkNetworkShell()", "turnout hit"),
    ("from psiturk.tasks import do_campaign_round\ndo_campaign_round(None)", "turnout hit create"),
    ("from psiturk.utils import get_my_ip\nget_my_ip()", "ad_url"),
    ("from psiturk.amt_services_wrapper import MTurkServicesWrapper\nMTurkServicesWrapper().amt_services",
     "wrapper's methods"),
    ("from psiturk.experiment import app\napp.apscheduler.add_job(print)", "turnout worker approve --all"),
    ("from psiturk.experiment import scheduler", "turnout worker approve --all"),
    ("from psiturk.models import Campaign\nCampaign()", "turnout hit create"),
    ("from psiturk.dashboard import dashboard", "turnout hit"),
])
def test_an_unmapped_call_raises_a_clear_psiturk_error(make_app, project_file, call: str, names: str) -> None:
    project_file("custom.py", custom(f"""
        from psiturk.psiturk_exceptions import PsiturkException
        @custom_code.route("/unmapped")
        def unmapped():
            try:
                {textwrap.indent(call, " " * 16).strip()}
            except PsiturkException as exc:
                return jsonify(error=type(exc).__name__, message=str(exc))
            return "no error"
    """))
    response = make_app().test_client().get("/unmapped")
    assert response.json["error"] == "NotProvidedByTurnout"
    assert "not provided by turnout" in response.json["message"]
    assert names in response.json["message"]


def test_importing_a_psiturk_blueprint_turnout_lacks_stops_start_up_naming_it(make_app, project_file) -> None:
    project_file("custom.py", custom("from psiturk.api import api_blueprint\n"))
    with pytest.raises(ConfigError) as caught:
        make_app()
    message = str(caught.value)
    assert "psiturk.api.api_blueprint is not provided by turnout" in message
    assert "custom.py:3:" in message and "\n" not in message


def test_a_psiturk_module_that_psiturk_never_had_still_stops_start_up(make_app, project_file) -> None:
    project_file("custom.py", custom("import psiturk.no_such_module\n"))
    with pytest.raises(ConfigError) as caught:
        make_app()
    assert "psiturk.no_such_module" in str(caught.value)


# --- psiTurk's app, as project code reaches for it -----------------------------------------------


def test_custom_py_uses_psiturks_app_at_import_time(make_app, project_file, make_participant) -> None:
    # `from psiturk.experiment import app` at the top of custom.py: psiTurk's app existed
    # before custom.py was imported, and projects add routes, hooks, handlers and config.
    project_file("custom.py", custom("""
        from flask import g
        from psiturk.experiment import app
        SEEN = []
        app.config["LAB_NAME"] = "the lab"
        @app.before_request
        def remember_path():
            SEEN.append(request.path)
        @app.route("/app_level")
        def app_level():
            return jsonify(lab=app.config["LAB_NAME"], max_age=app.config["SEND_FILE_MAX_AGE_DEFAULT"],
                           secret=app.config["SECRET_KEY"], seen=SEEN[-1], logger=bool(app.logger))
        class LabError(Exception):
            pass
        @app.errorhandler(LabError)
        def lab_error(exc):
            return "handled by the project", 409
        @custom_code.route("/lab_error")
        def raise_lab_error():
            raise LabError()
    """))
    app = make_app(secret_key="s3cret")
    client = app.test_client()
    assert client.get("/app_level").json == {"lab": "the lab", "max_age": 10, "secret": "s3cret",
                                             "seen": "/app_level", "logger": True}
    handled = client.get("/lab_error")
    assert (handled.status_code, handled.data) == (409, b"handled by the project")
    assert make_participant(app).open_exp().status_code == 200   # the participant routes still run


def test_dashboard_login_required_guards_a_project_route(make_app, project_file) -> None:
    project_file("custom.py", custom("""
        from psiturk.dashboard import login_required
        @custom_code.route("/admin")
        @login_required
        def admin():
            return "admin page"
    """))
    client = make_app(login_username="lab", login_pw="pw", secret_key="k").test_client()
    assert client.get("/admin").status_code == 401
    good = "Basic " + base64.b64encode(b"lab:pw").decode()
    assert client.get("/admin", headers={"Authorization": good}).data == b"admin page"


def test_dashboard_login_required_without_credentials_stops_start_up(make_app, project_file) -> None:
    project_file("custom.py", custom("""
        from psiturk.dashboard import login_required
        @custom_code.route("/admin")
        @login_required
        def admin():
            return "admin page"
    """))
    with pytest.raises(ConfigError) as caught:
        make_app()
    assert "login_username" in str(caught.value)


def test_psiturk_version_and_helpers(app) -> None:
    version = importlib.import_module("psiturk.version")
    assert version.version_number == "3.3.1"
    assert importlib.import_module("psiturk").__version__ == "3.3.1"
    utils = importlib.import_module("psiturk.utils")
    assert utils.colorize("x", "red", use_escape=False) == "\033[91mx\033[m"
    errors = importlib.import_module("psiturk.experiment_errors")
    assert errors.unwrap("  one\n   two  ") == "one two"
    statuses = importlib.import_module("psiturk.psiturk_statuses")
    assert (statuses.NOT_ACCEPTED, statuses.BONUSED) == (0, 7)


def _wrapper_module() -> Any:
    return importlib.import_module("psiturk.amt_services_wrapper")


def test_wrapper_mode_is_the_callers_own(app) -> None:
    module = _wrapper_module()
    local, sandbox = module.MTurkServicesWrapper(mode="local"), module.MTurkServicesWrapper(mode="sandbox")
    assert (local.get_mode().data, sandbox.get_mode().data) == ("local", "sandbox")
    assert sandbox.set_mode("live").to_dict() == {"status": "success", "success": True, "message": "",
                                                  "data": {"success": True}, "operation": "set_mode"}
    assert local.get_mode().data == "local"          # the other wrapper did not move
    refused = local.set_mode("production")
    assert (refused.success, type(refused.exception).__name__) == (False, "PsiturkException")
    assert "mode not recognized" in refused.to_dict()["exception"].message
    assert local.get_mode().data == "local"
    managers = importlib.import_module("psiturk.services_manager")
    first, second = managers.PsiturkServicesManager(), managers.PsiturkServicesManager()
    first.mode = "sandbox"
    assert (first.mode, second.mode, first.codeversion) == ("sandbox", "local", "1.0")


def test_an_app_level_route_from_custom_py_replaces_a_builtin(make_app, project_file) -> None:
    # psiTurk imported custom.py before defining its own routes, so `@app.route('/')` in
    # custom.py answered `/`; the same holds here.
    project_file("custom.py", custom("""
        from psiturk.experiment import app
        @app.route("/")
        def home():
            return "the project's home page " + url_for("index")
    """))
    assert make_app().test_client().get("/").data == b"the project's home page /"


# The public module-level names of psiTurk 3.3.1's modules (functions, classes, constants).
PSITURK_PUBLIC_NAMES = {
    "amt_services": (
        "AmtServicesErrorResponse AmtServicesResponse AmtServicesSuccessResponse LOCALE_QUAL_ID "
        "MASTERS_QUAL_ID MASTERS_SANDBOX_QUAL_ID MTurkHIT MTurkServices NOTIFICATION_VERSION "
        "NUMBER_HITS_APPROVED_QUAL_ID NoHitDataError PERCENT_ASSIGNMENTS_APPROVED_QUAL_ID "
        "amt_service_response check_mturk_connection"
    ),
    "amt_services_wrapper": (
        "MTurkServicesWrapper WrapperResponse WrapperResponseError WrapperResponseSuccess "
        "amt_services_wrapper_response"
    ),
    "api": (
        "AssignmentList AssignmentsAction CampaignList Campaigns CustomApi HitList Hits "
        "HitsAction PsiturkJSONEncoder ServicesManager TaskList Tasks api api_blueprint "
        "before_request handle_exception output_json"
    ),
    "dashboard": (
        "DashboardUser assignments_list before_request campaigns_list config dashboard hits_list "
        "index init_app is_login_route is_static_resource_call load_user login login_manager "
        "login_required logout mode myauth tasks_list try_amt_services_wrapper "
        "warn_if_scheduler_not_running"
    ),
    "db": "DATABASE config db_session engine init_db migrate_db truncate_tables",
    "experiment": (
        "CONFIG JOBS_TABLENAME LOG_LEVEL LOG_LEVELS PSITURK_JS_FILE advertisement app "
        "check_templates_exist check_worker_status debug_complete enterexp favicon "
        "get_random_condcount give_consent handle_exp_error handle_experiment_api_error index "
        "insert_mode jobstores load logfile ppid psiturk_js quitter regularpage run_webserver "
        "scheduler shutdown_session start_exp update worker_complete worker_submitted"
    ),
    "experiment_errors": "ExperimentApiError ExperimentError InvalidUsage InvalidUsageError unwrap",
    "experiment_server": "ExperimentServer config launch sigint_handler",
    "experiment_server_controller": (
        "ExperimentServerController ExperimentServerControllerException WaitForState "
        "is_port_available launch_browser launch_browser_when_online logger stream_formatter "
        "stream_handler wait_until_online"
    ),
    "models": (
        "ASSIGNMENTS_TABLENAME Base CAMPAIGNS_TABLENAME CODE_VERSION Campaign HITS_TABLENAME Hit "
        "Participant config object_as_dict"
    ),
    "psiturk_config": "PsiturkConfig",
    "psiturk_exceptions": (
        "APIException AWSAccessKeysNotSetError AdHtmlNotFoundError AdHtmlTooLarge "
        "AdPsiturkOrgError AmtServicesException AmtServicesWrapperError "
        "AssignmentAlreadyBonusedError AssignmentIdNotFoundInLocalDBError BadBonusAmountError "
        "BonusReasonMissingError DoBonusError EphemeralContainerDBError HerokuAppNotSet "
        "HerokuCmdNotFound HerokuNotAGitRepo HerokuNotLoggedIn InvalidAWSCredentialsError "
        "InvalidPsiturkCredentialsError MissingArgumentsError NoAutoBonusAmountSetError "
        "NoMturkConnectionError PsiturkException WorkerIdNotFoundInLocalDBError"
    ),
    "psiturk_shell": "PsiturkNetworkShell docopt_cmd http run",
    "psiturk_statuses": "ALLOCATED BONUSED COMPLETED CREDITED NOT_ACCEPTED QUITEARLY STARTED SUBMITTED",
    "services_manager": "PsiturkServicesManager SESSION_SERVICES_MANAGER_MODE_KEY psiturk_services_manager",
    "tasks": "TaskUtils do_approve_all do_campaign_round logger task_utils",
    "user_utils": "PsiTurkAuthorization nocache print_to_log",
    "utils": "colorize get_my_ip",
    "version": "version_number",
}


def test_every_public_name_of_every_psiturk_module_resolves(app) -> None:
    """Each is either provided or raises NotProvidedByTurnout naming what to use; none is
    an AttributeError, which would stop a custom.py that imports it from starting."""
    from turnout.compat.unsupported import NotProvidedByTurnout

    missing, unsupported = [], []
    for module_name, names in PSITURK_PUBLIC_NAMES.items():
        module = importlib.import_module(f"psiturk.{module_name}")
        for name in names.split():
            try:
                getattr(module, name)
            except NotProvidedByTurnout:
                unsupported.append(f"{module_name}.{name}")
            except AttributeError:
                missing.append(f"{module_name}.{name}")
    assert missing == []
    assert "experiment.app" not in unsupported and "amt_services_wrapper.MTurkServicesWrapper" not in unsupported


def test_participant_has_psiturks_class_helpers(make_app, project_file, make_participant) -> None:
    # Condition pickers and admin views copied from psiTurk call these class methods.
    project_file("custom.py", custom("""
        from psiturk.models import Participant
        @custom_code.route("/counts")
        def counts():
            rows = Participant.all_but_datastring()
            return jsonify(completed=Participant.count_completed("1.0", "sandbox"),
                           grouped=Participant.count_workers_grouped(group_bys=["mode", "status"]),
                           columns=sorted(rows[0]._fields) if rows else [])
    """))
    app = make_app()
    for n, mode in enumerate(("sandbox", "sandbox", "live")):
        p = make_participant(app, worker=f"WG{n}", assignment=f"AG{n}", mode=mode)
        p.open_exp()
        if n == 0:
            p.inexp()
            p.complete()
    answer = app.test_client().get("/counts").json
    assert answer["completed"] == 1
    assert sorted(answer["grouped"], key=lambda g: (g["mode"], g["status"])) == [
        {"mode": "live", "status": 1, "count": 1}, {"mode": "sandbox", "status": 1, "count": 1},
        {"mode": "sandbox", "status": 3, "count": 1}]
    assert "datastring" not in answer["columns"] and "uniqueid" in answer["columns"]
    assert not any(c.startswith("turnout_") or c == "token" for c in answer["columns"])
