"""GET/POST /api/services_manager: each signed-in user's own mode, CSRF on JSON, tokens."""

from __future__ import annotations

from typing import Any

from dashboard.conftest import Browser


def test_mode_is_per_user_never_process_wide(sqlite_dash_app: Any, browser_for, add_user) -> None:
    add_user(sqlite_dash_app, "second", "payer", "pw-second")
    first = browser_for(sqlite_dash_app)
    second = browser_for(sqlite_dash_app, "second", "pw-second")
    response = first.post_json("/api/services_manager", {"mode": "sandbox"})
    assert response.status_code == 200, response.data
    assert first.get("/api/services_manager").get_json()["mode"] == "sandbox"
    assert second.get("/api/services_manager").get_json()["mode"] == "local"
    page = first.get("/dashboard/settings").data.decode()
    assert "live-banner" not in page
    first.post_json("/api/services_manager", {"mode": "live"})
    assert "live-banner" in first.get("/dashboard/settings").data.decode()
    assert "live-banner" not in second.get("/dashboard/settings").data.decode()


def test_sandbox_without_credentials_is_a_message_not_a_500(sqlite_dash_app: Any, browser_for,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    b = browser_for(sqlite_dash_app)
    b.post_json("/api/services_manager", {"mode": "sandbox"})
    body = b.get("/api/services_manager").get_json()
    assert body["balance"] is None and "no AWS credentials" in body["balance_error"]
    page = b.get("/dashboard/settings")
    assert page.status_code == 200 and b"no AWS credentials" in page.data


def test_json_post_without_csrf_header_is_refused(sqlite_dash_app: Any, browser_for) -> None:
    b = browser_for(sqlite_dash_app)
    response = b.post_json("/api/services_manager", {"mode": "sandbox"}, csrf=False)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "csrf_failed"
    assert b.get("/api/services_manager").get_json()["mode"] == "local"


def test_bad_mode_is_a_400(sqlite_dash_app: Any, browser_for) -> None:
    b = browser_for(sqlite_dash_app)
    response = b.post_json("/api/services_manager", {"mode": "moon"})
    assert response.status_code == 400 and "mode must be one of" in response.get_json()["error"]["message"]
    assert b.client.post("/api/services_manager", data="[1", content_type="application/json",
                         headers={"X-CSRFToken": b.csrf}).status_code == 400


def test_bearer_token_authenticates_without_csrf_and_revocation_ends_it(dash_app: Any) -> None:
    from turnout.services import accounts

    sqlite_dash_app = dash_app  # every database
    st = sqlite_dash_app.extensions["turnout.dashboard"]
    _row, token = accounts.create_token(st.db, name="script", role="viewer", clock=st.clock)
    client = sqlite_dash_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    body = client.get("/api/services_manager?mode=sandbox", headers=headers).get_json()
    assert body["role"] == "viewer" and body["mode"] == "sandbox"
    assert [t["name"] for t in accounts.list_tokens(st.db)] == ["script"]
    assert client.get("/api/services_manager", headers={"Authorization": "Bearer tnt_wrong"}).status_code == 401
    accounts.revoke_token(st.db, "script", clock=st.clock)
    assert client.get("/api/services_manager", headers=headers).status_code == 401


def test_unknown_api_path_is_json_404(sqlite_dash_app: Any) -> None:
    response = Browser(sqlite_dash_app).client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
