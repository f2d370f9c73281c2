"""/dashboard/participants: filters in the URL, facet counts, groups, htmx partials, one participant."""

from __future__ import annotations

import re
from typing import Any


def test_page_shows_status_names_counts_and_twins(sqlite_dash_app: Any, browser_for, seed) -> None:
    seed(sqlite_dash_app, 5, status=[4, 5, 3, 1, 7])
    b = browser_for(sqlite_dash_app)
    page = b.get("/dashboard/participants?complete=true&group_by=cond").data.decode()
    assert 'data-total="4"' in page
    assert "Submitted" in page and "Approved" in page and "Bonused" in page
    assert re.search(r'<span class="badge text-bg-secondary">\d</span>', page) is None  # names, not codes
    assert 'href="/api/participants.csv?complete=true&amp;group_by=cond"' in page
    assert 'id="groups"' in page
    assert 'data-facet="status" data-value="1">1<' in page  # the facet leaves its own filter out


def test_htmx_request_gets_only_the_table(sqlite_dash_app: Any, browser_for, seed) -> None:
    seed(sqlite_dash_app, 2)
    b = browser_for(sqlite_dash_app)
    partial = b.get("/dashboard/participants?mode=local", headers={"HX-Request": "true"}).data.decode()
    assert "<html" not in partial and 'data-total="2"' in partial


def test_bad_filter_is_a_400_page_not_a_500(sqlite_dash_app: Any, browser_for) -> None:
    response = browser_for(sqlite_dash_app).get("/dashboard/participants?sort=nope")
    assert response.status_code == 400 and b"cannot sort by" in response.data


def test_participant_page_and_missing_participant(sqlite_dash_app: Any, browser_for, seed) -> None:
    (uid,) = seed(sqlite_dash_app, 1)
    b = browser_for(sqlite_dash_app)
    page = b.get(f"/dashboard/participants/{uid}")
    assert page.status_code == 200 and b"Submitted (4)" in page.data
    assert b.get("/dashboard/participants/none:here").status_code == 404


def test_viewer_sees_the_table(sqlite_dash_app: Any, browser_for, add_user, seed) -> None:
    seed(sqlite_dash_app, 1)
    add_user(sqlite_dash_app, "ra", "viewer", "pw")
    assert browser_for(sqlite_dash_app, "ra", "pw").get("/dashboard/participants").status_code == 200


def test_batch_buttons_act_on_the_filter_shown_and_only_for_payers(sqlite_dash_app: Any, browser_for, seed,
                                                                   add_user) -> None:
    seed(sqlite_dash_app, 2)
    b = browser_for(sqlite_dash_app)
    partial = b.get("/dashboard/participants?cond=1&sort=workerid&page=1",
                    headers={"HX-Request": "true"}).data.decode()
    assert 'data-batch="/api/participants/action/approve?cond=1"' in partial  # the filter, not the page or order
    assert 'data-batch="/api/participants/action/bonus?cond=1"' in partial
    add_user(sqlite_dash_app, "ra", "viewer", "pw")
    viewer = browser_for(sqlite_dash_app, "ra", "pw").get("/dashboard/participants?cond=1").data.decode()
    assert "data-batch=" not in viewer
