"""Regressions found by running public psiTurk 3.x projects on turnout, unchanged.

Each test restates, in a few lines of our own, one thing a real project relied on and
turnout broke. The project code in these tests is written for the test; the report that
introduced them names the public repositories where each pattern was seen.
"""

from __future__ import annotations

import datetime
import json
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_LIB = ROOT / "src" / "turnout" / "project_template" / "static" / "lib"


def _custom(*blocks: str) -> str:
    """A custom.py in psiTurk's style: it imports psiTurk's modules at the top."""
    head = (
        "import datetime\n"
        "from flask import Blueprint, jsonify, request\n"
        "from psiturk.db import db_session\n"
        "from psiturk.models import Participant\n"
        "from psiturk.psiturk_config import PsiturkConfig\n"
        "config = PsiturkConfig()\n"
        "config.load_config()\n"
        "custom_code = Blueprint('custom_code', __name__)\n"
    )
    return head + "\n".join(blocks)


# --- custom code and the database ---------------------------------------------------------

HELPER_MODULE = "compat_lab_tables"   # a module of the project's own, next to custom.py


@pytest.fixture
def helper_module_cleanup() -> Iterator[None]:
    sys.modules.pop(HELPER_MODULE, None)
    yield
    sys.modules.pop(HELPER_MODULE, None)


def test_models_in_a_project_helper_module_use_db_session_after_the_app_is_built_twice(
        make_app, sqlite_url, project_file, helper_module_cleanup) -> None:
    # NYUCCL/whoops_yall keeps its table in custom_models.py and custom.py imports it.
    # `turnout serve` builds the app once in the parent (to check custom.py) and again in
    # each worker; the helper module stays imported, bound to the first build's Base and
    # session, so Model.query and db_session are two different sessions and the
    # project's `db_session.add(row)` fails with "already attached to session".
    project_file(f"{HELPER_MODULE}.py", (
        "from psiturk.models import Base\n"
        "from sqlalchemy import Column, Integer, String\n"
        "class Tally(Base):\n"
        "    __tablename__ = 'compat_tally'\n"
        "    id = Column(Integer, primary_key=True)\n"
        "    label = Column(String(50))\n"
        "    hits = Column(Integer, default=0)\n"
    ))
    project_file("custom.py", _custom(
        f"from {HELPER_MODULE} import Tally\n"
        "@custom_code.route('/tally', methods=['POST'])\n"
        "def tally():\n"
        "    row = Tally.query.filter(Tally.label == 'clicks').first()\n"
        "    if row is None:\n"
        "        row = Tally(label='clicks', hits=0)\n"
        "    row.hits += 1\n"
        "    db_session.add(row)\n"
        "    db_session.commit()\n"
        "    return jsonify(hits=row.hits)\n"
    ))
    make_app(sqlite_url)            # the parent's check build
    app = make_app(sqlite_url)      # the worker's build, in the same process
    client = app.test_client()
    answers = [client.post("/tally") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200], answers[-1].data[:300]
    assert [r.json["hits"] for r in answers] == [1, 2, 3]


def test_custom_code_may_set_a_naive_datetime_on_a_participant(app_with_custom, make_participant,
                                                                read_row) -> None:
    # whoops_yall's /check_secret_code sets `user.endhit = datetime.datetime.now()`;
    # psiTurk's DateTime columns take naive values, turnout's refuse them with ValueError.
    app = app_with_custom(
        "@custom_code.route('/finish_by_code', methods=['POST'])\n"
        "def finish_by_code():\n"
        "    user = Participant.query.filter(Participant.uniqueid == request.form['uniqueid']).one()\n"
        "    user.status = 3\n"
        "    user.endhit = datetime.datetime.now()\n"
        "    db_session.add(user)\n"
        "    db_session.commit()\n"
        "    return jsonify(ok=True)\n"
    )
    p = make_participant(app, worker="WN1", assignment="AN1")
    p.open_exp()
    response = p.client.post("/finish_by_code", data={"uniqueid": p.uniqueid})
    assert response.status_code == 200, response.data[:300]
    stored = read_row(app, p.uniqueid)
    assert stored.status == 3
    assert stored.endhit is not None


def test_custom_get_condition_may_filter_participants_with_a_naive_datetime(app_with_custom,
                                                                            make_participant) -> None:
    # Condition pickers copied from psiTurk 2's get_random_condcount compare beginhit with
    # a naive "now minus cutoff". On turnout the query raises, so /exp fails for everyone.
    app = app_with_custom(
        "def custom_get_condition(mode):\n"
        "    since = datetime.datetime.utcnow() - datetime.timedelta(minutes=30)\n"
        "    recent = Participant.query.filter(Participant.mode == mode,\n"
        "                                      Participant.beginhit > since).count()\n"
        "    return recent % 2, 0\n"
    )
    first = make_participant(app, worker="WC1", assignment="AC1")
    response = first.open_exp()
    assert response.status_code == 200, response.data[:300]
    assert b"WC1:AC1" in response.data


def test_participant_made_by_custom_code_gets_psiturks_defaults(app_with_custom, read_row) -> None:
    # psiTurk's Participant(workerid=..., assignmentid=..., hitid=...) derives uniqueid
    # "worker:assignment", status 1, the config's codeversion and beginhit (Wallace/
    # Dallinger-style custom routes create participants this way).
    app = app_with_custom(
        "@custom_code.route('/enrol', methods=['POST'])\n"
        "def enrol():\n"
        "    p = Participant(workerid=request.form['w'], assignmentid=request.form['a'],\n"
        "                    hitid=request.form['h'])\n"
        "    db_session.add(p)\n"
        "    db_session.commit()\n"
        "    return jsonify(uniqueid=p.uniqueid)\n"
    )
    response = app.test_client().post("/enrol", data={"w": "WE1", "a": "AE1", "h": "HE1"})
    assert response.status_code == 200, response.data[:300]
    assert response.json["uniqueid"] == "WE1:AE1"
    stored = read_row(app, "WE1:AE1")
    assert stored.status == 1
    assert stored.codeversion == "1.0"          # experiment_code_version of the test project
    assert stored.beginhit is not None


# --- custom routes next to psiTurk's own -----------------------------------------------------


def test_a_custom_route_on_a_psiturk_path_replaces_the_builtin(app_with_custom, make_participant) -> None:
    # psiTurk registers custom_code before its own routes, so a project can replace one:
    # public custom.py files override /complete to send Prolific participants a code.
    app = app_with_custom(
        "@custom_code.route('/complete')\n"
        "def prolific_complete():\n"
        "    return 'completion code: C0DE42'\n"
    )
    p = make_participant(app, worker="WO1", assignment="AO1", mode="sandbox")
    p.open_exp()
    response = p.complete()
    assert response.status_code == 200
    assert b"C0DE42" in response.data


def test_custom_code_can_call_psiturks_complete_view(app_with_custom, make_participant, read_row) -> None:
    # The same projects run psiTurk's own view first, imported at request time:
    # `from psiturk.experiment import debug_complete`. turnout has no psiturk.experiment.
    app = app_with_custom(
        "@custom_code.route('/finish')\n"
        "def finish():\n"
        "    from psiturk.experiment import debug_complete\n"
        "    debug_complete()\n"
        "    return 'finished via psiTurk'\n"
    )
    p = make_participant(app, worker="WF1", assignment="AF1", mode="sandbox")
    p.open_exp()
    response = p.client.get(f"/finish?uniqueId={p.uniqueid}&mode=sandbox", headers=p.headers)
    assert response.status_code == 200, response.data[:300]
    assert read_row(app, p.uniqueid).status == 3


@pytest.mark.parametrize("module", ["psiturk.experiment", "psiturk.amt_services_wrapper"])
def test_custom_py_importing_a_psiturk_module_turnout_lacks_is_not_silently_dropped(
        make_app, sqlite_url, project_file, module) -> None:
    # Under psiTurk every psiturk.* module exists, so its "ModuleNotFoundError: run without
    # custom.py" rule only ever skipped optional third-party drivers. Under turnout a
    # psiturk.* module the shim lacks takes that path: the server starts without any of
    # the project's routes (e.g. /compute_bonus, whose missing answer leaves psiTurk's
    # example task waiting forever) and only a log line says why. Either provide the
    # module or refuse to start, naming it.
    from turnout.config import ConfigError

    project_file("custom.py", _custom(
        f"import {module}\n"
        "@custom_code.route('/compute_bonus')\n"
        "def compute_bonus():\n"
        "    return jsonify(bonusComputed='success')\n"
    ))
    try:
        app = make_app(sqlite_url)
    except ConfigError as exc:      # refusing to start is fine, if it says what is missing
        assert module in str(exc)
        return
    assert app.test_client().get("/compute_bonus?uniqueId=W:A").status_code == 200


@pytest.fixture
def app_with_custom(make_app, sqlite_url, project_file):
    """``app_with_custom(block)``: the test project with a custom.py holding ``block``."""

    def make(*blocks: str) -> Any:
        project_file("custom.py", _custom(*blocks))
        return make_app(sqlite_url)

    return make


# --- psiturk.js and the server together, in Chromium -------------------------------------------

EXP_PAGE = """<!doctype html><html><head><title>exp</title>
<script src="/static/lib/jquery.min.js"></script>
<script src="/static/lib/underscore-min.js"></script>
<script src="/static/lib/backbone-min.js"></script>
<script>var uniqueId = "{{ uniqueId }}"; var adServerLoc = "{{ adServerLoc }}"; var mode = "{{ mode }}";</script>
<script src="/static/js/psiturk.js"></script>
</head><body><p id="ready">ready</p></body></html>
"""

SAVE_JS = """(trials) => new Promise((resolve) => {
    window.psiTurk = new PsiTurk(uniqueId, adServerLoc, mode);
    if (trials.reset) { psiTurk.taskdata.set('data', []); }
    for (let i = 0; i < trials.n; i++) { psiTurk.recordTrialData({phase: 'TEST', i: i}); }
    psiTurk.saveData({
        success: () => resolve('saved'),
        error: (model, xhr) => resolve('refused ' + (xhr && xhr.status))
    });
})"""


@contextmanager
def _serve(make_app, sqlite_url, project_dir, project_file) -> Iterator[Any]:
    """The test project served over real HTTP, with psiTurk's usual libraries in static/lib."""
    from werkzeug.serving import make_server

    for name in ("jquery.min.js", "underscore-min.js", "backbone-min.js"):
        (project_dir / "static" / "lib").mkdir(parents=True, exist_ok=True)
        shutil.copy(TEMPLATE_LIB / name, project_dir / "static" / "lib" / name)
    project_file("templates/exp.html", EXP_PAGE)
    app = make_app(sqlite_url)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture
def served(make_app, sqlite_url, project_dir, project_file) -> Iterator[Any]:
    with _serve(make_app, sqlite_url, project_dir, project_file) as running:
        yield running


@pytest.mark.browser
def test_a_page_reloaded_before_the_task_may_start_its_data_afresh(served, page, read_row, clock) -> None:
    # A public psiTurk task.js does `psiTurk.taskdata.set('data', [])` on load "in case the
    # page was reloaded". psiTurk stores every save (the newest full copy wins); turnout
    # answers 409 to the reloaded page's saves while they hold fewer trials than the
    # previous page load stored, so the participant's new run is not saved and the
    # example's saveData error handler ("prompt_resubmit") loops.
    app, base = served
    url = f"{base}/exp?hitId=HRL1&assignmentId=ARL1&workerId=WRL1&mode=sandbox"
    page.goto(url)
    assert page.evaluate(SAVE_JS, {"n": 4, "reset": False}) == "saved"
    clock.advance(2)                # save stamps carry the server's page-load time
    page.goto(url)                  # still ALLOCATED (instructions not finished): /exp serves it again
    assert page.evaluate(SAVE_JS, {"n": 1, "reset": True}) == "saved"
    stored = json.loads(read_row(app, "WRL1:ARL1").datastring)
    assert len(stored["data"]) == 1


PART_TWO_PAGE = """<!doctype html><html><head><title>part two</title>
<script src="/static/lib/jquery.min.js"></script>
<script src="/static/lib/underscore-min.js"></script>
<script src="/static/lib/backbone-min.js"></script>
<script>var uniqueId = "{{ uniqueId }}"; var adServerLoc = "/complete"; var mode = "sandbox";</script>
<script src="/static/js/psiturk.js"></script>
</head><body><p id="ready">part two</p></body></html>
"""


@pytest.mark.browser
def test_a_second_task_page_from_a_project_route_saves_when_the_browser_clock_is_slow(
        make_app, sqlite_url, project_dir, project_file, page, read_row, clock) -> None:
    # deargle/psiturk-vue's exp.html sends the participant on to a page of the project's own
    # route (/task/psiturk?uniqueId=...), and multi-part tasks continue on such pages. That
    # page has no turnout-page-load meta tag (only /exp writes it), so psiturk.js stamped its
    # saves with the browser's clock while the /exp page's saves carried the server's: with a
    # browser clock two minutes slow, every save of the second page sorted before the first
    # page's and was refused with 409, and its data was lost.
    project_file("custom.py", _custom(
        "from flask import render_template\n"
        "@custom_code.route('/part_two')\n"
        "def part_two():\n"
        "    return render_template('part_two.html', uniqueId=request.args['uniqueId'])\n"
    ))
    project_file("templates/part_two.html", PART_TWO_PAGE)
    with _serve(make_app, sqlite_url, project_dir, project_file) as (app, base):
        page.clock.install(time=clock.now() - datetime.timedelta(minutes=2))  # the browser is slow
        page.goto(f"{base}/exp?hitId=HP2&assignmentId=AP2&workerId=WP2&mode=sandbox")
        assert page.evaluate(SAVE_JS, {"n": 3, "reset": False}) == "saved"
        clock.advance(5)
        page.goto(f"{base}/part_two?uniqueId=WP2:AP2")
        assert page.evaluate(SAVE_JS, {"n": 2, "reset": False}) == "saved"
        stored = json.loads(read_row(app, "WP2:AP2").datastring)
        assert len(stored["data"]) == 5
