"""/dashboard/workers and /dashboard/hits: assignments and HITs with their buttons, by role."""

from __future__ import annotations

from typing import Any


def test_workers_page_lists_assignments_with_row_actions(sqlite_study: Any, browser_for) -> None:
    hit_id = sqlite_study.hit()
    (aid,) = sqlite_study.submit(hit_id, 1)
    page = browser_for(sqlite_study.app).get("/dashboard/workers").data.decode()
    assert f'data-assignment="{aid}"' in page and 'data-op="approve"' in page
    assert 'data-batch="/api/assignments/action/approve_all"' in page


def test_viewer_gets_no_payment_buttons(sqlite_study: Any, browser_for, add_user) -> None:
    hit_id = sqlite_study.hit()
    sqlite_study.submit(hit_id, 1)
    add_user(sqlite_study.app, "ra", "viewer", "pw")
    page = browser_for(sqlite_study.app, "ra", "pw").get("/dashboard/workers").data.decode()
    assert "data-batch=" not in page and 'data-op="approve"' not in page


def test_hits_page_filters(sqlite_study: Any, browser_for) -> None:
    from turnout.services import hits

    first = sqlite_study.hit()
    second = sqlite_study.hit()
    hits.expire_hits(sqlite_study.ctx(), [first])
    b = browser_for(sqlite_study.app)
    every = b.get("/dashboard/hits").data.decode()
    active = b.get("/dashboard/hits?show=active").data.decode()
    assert first in every and second in every
    assert first not in active and second in active


def test_pages_in_sandbox_without_credentials_explain(sqlite_dash_app: Any, browser_for, monkeypatch) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    b = browser_for(sqlite_dash_app)
    b.post_json("/api/services_manager", {"mode": "sandbox"})
    for path in ("/dashboard/workers", "/dashboard/hits"):
        response = b.get(path)
        assert response.status_code == 200 and b"no AWS credentials" in response.data, path
    assert b.get("/api/hits/").status_code == 503
