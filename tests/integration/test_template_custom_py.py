"""The custom.py that ``turnout init`` writes (project_template/custom.py) faces the same
hostile participants as turnout's own routes: its ``/compute_bonus`` reads task data the
participant wrote, so odd shapes of that data must not end in a 500 with a traceback.

Found by the outside review: a participant who saved ``{"data": [1]}`` (or ``{"data": 5}``)
with their own token made ``GET /compute_bonus`` a 500 on every database.
"""

from __future__ import annotations

import logging
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

ODD_TASK_DATA = {
    "records_not_objects": b'{"data": [1, "x", null]}',
    "data_not_a_list": b'{"data": 5}',
    "data_a_string": b'{"data": "abc"}',
    "trialdata_a_list": b'{"data": [{"trialdata": [1]}]}',
}


@pytest.fixture
def template_app(make_app, shared_database_url: str, project_dir: Path) -> Any:
    """The test project with turnout's own project-template custom.py in place of its own."""
    with resources.as_file(resources.files("turnout").joinpath("project_template/custom.py")) as source:
        shutil.copyfile(source, project_dir / "custom.py")
    return make_app(shared_database_url)


@pytest.mark.parametrize("name", list(ODD_TASK_DATA))
def test_compute_bonus_of_odd_task_data_is_a_zero_bonus_not_a_500(template_app, make_participant, read_row,
                                                                   caplog: pytest.LogCaptureFixture,
                                                                   name: str) -> None:
    p = make_participant(template_app)
    p.open_exp()
    saved = p.client.put(f"/sync/{p.uniqueid}", data=ODD_TASK_DATA[name], content_type="application/json",
                         headers=p.headers)
    assert saved.status_code == 200
    with caplog.at_level(logging.ERROR):
        response = p.client.get(f"/compute_bonus?uniqueId={p.uniqueid}")
    assert response.status_code == 200, response.data[:200]
    assert response.json == {"bonusComputed": "success", "bonus": 0}
    assert read_row(template_app, p.uniqueid).bonus == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_compute_bonus_still_counts_correct_test_trials(template_app, make_participant, read_row) -> None:
    p = make_participant(template_app)
    p.open_exp()
    assert p.save(6).status_code == 200  # trials 0, 2, 4 are TEST hits
    response = p.client.get(f"/compute_bonus?uniqueId={p.uniqueid}")
    assert response.json == {"bonusComputed": "success", "bonus": 0.06}
    assert read_row(template_app, p.uniqueid).bonus == pytest.approx(0.06)



def test_a_nul_in_the_query_of_a_custom_route_is_a_400(template_app, caplog: pytest.LogCaptureFixture) -> None:
    # turnout's NUL guard covered only its own routes; PostgreSQL refuses a NUL in a query
    # parameter, so custom.py's routes (psiTurk projects' too) ended in a 500 there.
    with caplog.at_level(logging.ERROR):
        response = template_app.test_client().get("/compute_bonus?uniqueId=W1%00:A1")
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
