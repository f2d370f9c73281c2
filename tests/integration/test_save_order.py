"""Saves from turnout's psiturk.js are ordered by page load and sequence (X-Turnout-Save).

A participant who reloads the experiment page may start their data afresh (psiTurk kept
the newest save), while a save from an older page, or an earlier save of the same page,
arriving late is still refused with the stored data kept.
"""

from __future__ import annotations

import pytest

PAGE_1 = "1764000000000-0a1b2c3d"
PAGE_2 = "1764000005000-99887766"


def _save(p, trials: int, order: str):
    body = {"data": [{"uniqueid": p.uniqueid, "current_trial": i, "dateTime": i, "trialdata": {"t": i}}
                     for i in range(trials)], "questiondata": {}, "eventdata": []}
    return p.client.put(f"/sync/{p.uniqueid}", json=body, headers={**p.headers, "X-Turnout-Save": order})


def test_a_reloaded_page_may_replace_the_data_with_fewer_trials(db_app, make_participant, read_row):
    p = make_participant(db_app)
    p.open_exp()
    assert _save(p, 6, f"{PAGE_1}.3").status_code == 200
    assert _save(p, 1, f"{PAGE_2}.1").status_code == 200
    assert read_row(db_app, p.uniqueid).trial_count == 1


def test_a_late_save_from_an_older_page_is_refused_and_newer_data_kept(db_app, make_participant, read_row):
    p = make_participant(db_app)
    p.open_exp()
    assert _save(p, 2, f"{PAGE_2}.1").status_code == 200
    late = _save(p, 9, f"{PAGE_1}.7")
    assert late.status_code == 409
    assert late.json["error"]["code"] == "conflict"
    assert read_row(db_app, p.uniqueid).trial_count == 2


def test_an_earlier_save_of_the_same_page_arriving_late_is_refused(app, make_participant, read_row):
    p = make_participant(app)
    p.open_exp()
    assert _save(p, 5, f"{PAGE_1}.5").status_code == 200
    assert _save(p, 4, f"{PAGE_1}.4").status_code == 409
    assert read_row(app, p.uniqueid).trial_count == 5


def test_a_retried_save_with_the_same_sequence_is_accepted(app, make_participant, read_row):
    p = make_participant(app)
    p.open_exp()
    assert _save(p, 3, f"{PAGE_1}.2").status_code == 200
    assert _save(p, 3, f"{PAGE_1}.2").status_code == 200


@pytest.mark.parametrize("header", ["yesterday", "1764000000000-0a1b2c3d", "1764000000000-XYZ.1", "1.2"])
def test_a_malformed_save_order_header_is_400_and_nothing_is_stored(app, header, make_participant, read_row):
    p = make_participant(app)
    p.open_exp()
    assert p.save(2).status_code == 200
    response = _save(p, 7, header)
    assert response.status_code == 400
    assert read_row(app, p.uniqueid).trial_count == 2


def test_without_the_header_fewer_trials_is_still_refused(app, make_participant, read_row):
    p = make_participant(app)
    p.open_exp()
    assert p.save(4).status_code == 200
    assert p.save(2).status_code == 409
    assert read_row(app, p.uniqueid).trial_count == 4
