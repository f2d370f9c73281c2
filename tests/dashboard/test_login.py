"""Signing in and out of /dashboard: the login form, rate limits, redirects, roles, CSRF."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from turnout.config import ConfigError

from .conftest import ADMIN, ADMIN_PW, Browser, csrf_of


def test_dashboard_disabled_is_a_404_and_mounts_nothing(app: Any) -> None:
    client = app.test_client()
    assert client.get("/dashboard/login").status_code == 404
    assert client.get("/api/services_manager").status_code == 404
    assert not any(rule.rule.startswith(("/dashboard", "/api")) for rule in app.url_map.iter_rules())


@pytest.mark.parametrize("missing", ["login_username", "login_pw", "secret_key"])
def test_enabled_without_a_login_setting_stops_with_one_line(make_app, missing: str) -> None:
    values = {"enable_dashboard": "true", "login_username": "u", "login_pw": "p", "secret_key": "s"}
    values[missing] = ""
    with pytest.raises(ConfigError) as caught:
        make_app(**values)
    message = str(caught.value)
    assert missing in message and "\n" not in message


def test_unauthenticated_page_redirects_to_login_with_next(sqlite_dash_app: Any) -> None:
    response = sqlite_dash_app.test_client().get("/dashboard/settings?x=1")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/dashboard/login?next=")


def test_unauthenticated_api_gets_401_json(sqlite_dash_app: Any) -> None:
    response = sqlite_dash_app.test_client().get("/api/services_manager")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_login_sets_a_safe_cookie_and_logout_is_a_post(sqlite_dash_app: Any) -> None:
    b = Browser(sqlite_dash_app)
    response = b.login()
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert b.get("/dashboard/settings").status_code == 200
    assert b.get("/dashboard/logout").status_code in (404, 405)
    assert b.post_form("/dashboard/logout", {}).status_code == 302
    assert b.get("/dashboard/settings").status_code == 302


def test_session_cookie_is_secure_under_https(sqlite_dash_app: Any) -> None:
    client = sqlite_dash_app.test_client()
    form = client.get("/dashboard/login", base_url="https://localhost")
    response = client.post("/dashboard/login", base_url="https://localhost",
                           data={"username": ADMIN, "password": ADMIN_PW, "csrf_token": csrf_of(form)})
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_wrong_password_is_refused(sqlite_dash_app: Any) -> None:
    response = Browser(sqlite_dash_app).login(password="wrong")
    assert response.status_code == 200
    assert b"Incorrect username or password" in response.data


def test_login_without_csrf_token_is_refused(sqlite_dash_app: Any) -> None:
    client = sqlite_dash_app.test_client()
    client.get("/dashboard/login")
    response = client.post("/dashboard/login", data={"username": ADMIN, "password": ADMIN_PW})
    assert response.status_code == 400
    assert client.get("/dashboard/settings").status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)"])
def test_redirect_after_login_stays_on_this_site(sqlite_dash_app: Any, target: str) -> None:
    response = Browser(sqlite_dash_app).login(next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/"


def test_redirect_after_login_keeps_a_local_path(sqlite_dash_app: Any) -> None:
    response = Browser(sqlite_dash_app).login(next="/dashboard/settings")
    assert response.headers["Location"] == "/dashboard/settings"


def test_failed_logins_are_limited_per_account_across_processes(dash_app: Any, clock: Any) -> None:
    """The failures live in the database: a second app (another worker process) sees them."""
    for i in range(10):
        b = Browser(dash_app)
        b.client.environ_base["REMOTE_ADDR"] = f"10.0.0.{i}"
        assert b.login(password="nope").status_code == 200
    b = Browser(dash_app)
    b.client.environ_base["REMOTE_ADDR"] = "10.0.1.1"
    assert b.login().status_code == 429  # even the right password, for now
    clock.advance(timedelta(minutes=16))
    assert b.login().status_code == 302


def test_failed_logins_are_limited_per_address(sqlite_dash_app: Any) -> None:
    b = Browser(sqlite_dash_app)
    for i in range(10):
        assert b.login(username=f"someone{i}", password="nope").status_code == 200
    assert b.login().status_code == 429
    other = Browser(sqlite_dash_app)
    other.client.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    assert other.login().status_code == 302


def test_hashed_login_pw_works(make_app) -> None:
    from turnout.services.accounts import hash_password

    app = make_app(enable_dashboard="true", login_username="lab", login_pw=hash_password("s3cret").replace("%", "%%"),
                   secret_key="k")
    assert Browser(app).login("lab", "s3cret").status_code == 302
    assert Browser(app).login("lab", "scrypt").status_code == 200


def test_database_account_signs_in_and_is_ended_by_removal(sqlite_dash_app: Any, add_user, browser_for) -> None:
    from turnout.services import accounts

    add_user(sqlite_dash_app, "ra", "viewer", "pw-ra")
    b = browser_for(sqlite_dash_app, "ra", "pw-ra")
    assert b.get("/api/services_manager").get_json()["role"] == "viewer"
    accounts.remove_user(sqlite_dash_app.extensions["turnout.dashboard"].db, "ra")
    assert b.get("/api/services_manager").status_code == 401


def test_vendored_assets_are_served_from_the_package(sqlite_dash_app: Any) -> None:
    client = sqlite_dash_app.test_client()
    page = client.get("/dashboard/login").data.decode()
    import re

    assets = re.findall(r'(?:href|src)="(/dashboard/static/[^"]+)"', page)
    assert len(assets) >= 4
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_settings_form_without_csrf_changes_nothing(sqlite_dash_app: Any, browser_for) -> None:
    b = browser_for(sqlite_dash_app)
    assert b.post_form("/dashboard/settings", {"mode": "live"}, csrf=False).status_code == 400
    assert b.get("/api/services_manager").get_json()["mode"] == "local"
    assert b.post_form("/dashboard/settings", {"mode": "live"}).status_code == 303
    assert b.get("/api/services_manager").get_json()["mode"] == "live"
