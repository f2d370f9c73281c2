"""Settings → Accounts and its API twins (/api/accounts/, /api/tokens/): admins only,
CSRF-checked, audited, and safe (no removing the config login, yourself or the last admin)."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard.conftest import ADMIN


def _activity(app: Any, action: str) -> list[dict[str, Any]]:
    from turnout.services.activity import ActivityQuery, list_events

    return list_events(app.extensions["turnout.dashboard"].db, ActivityQuery(action=action))["rows"]


@pytest.mark.parametrize("role", ["viewer", "payer"])
def test_viewer_and_payer_are_refused_everything(sqlite_dash_app: Any, browser_for, add_user, role: str) -> None:
    add_user(sqlite_dash_app, "someone", role, "pw-someone")
    add_user(sqlite_dash_app, "target", "viewer", "pw-target")
    b = browser_for(sqlite_dash_app, "someone", "pw-someone")
    assert b.get("/dashboard/settings/accounts").status_code == 403
    assert b.get("/api/accounts/").status_code == 403
    assert b.get("/api/tokens/").status_code == 403
    for method, path, body in (("post", "/api/accounts/", {"username": "x", "role": "admin"}),
                               ("patch", "/api/accounts/target", {"role": "admin"}),
                               ("delete", "/api/accounts/target", None),
                               ("post", "/api/tokens/", {"name": "t", "role": "admin"})):
        response = getattr(b.client, method)(path, json=body, headers={"X-CSRFToken": b.csrf})
        assert response.status_code == 403, (method, path)
        assert response.get_json()["error"]["code"] == "forbidden"
    settings_page = b.get("/dashboard/settings").data.decode()
    assert "/dashboard/settings/accounts" not in settings_page  # no tab to a page it cannot open
    names = [u["username"] for u in _list(sqlite_dash_app)]
    assert names == [ADMIN, "someone", "target"]


def _list(app: Any) -> list[dict[str, Any]]:
    from turnout.services import accounts

    st = app.extensions["turnout.dashboard"]
    return accounts.list_users(st.db, st.settings)


def test_admin_adds_with_generated_password_changes_role_and_removes(sqlite_dash_app: Any, browser_for) -> None:
    from dashboard.conftest import Browser

    admin = browser_for(sqlite_dash_app)
    page = admin.get("/dashboard/settings/accounts")
    assert page.status_code == 200 and b'id="account-form"' in page.data
    created = admin.post_json("/api/accounts/", {"username": "ra1", "role": "viewer"})
    assert created.status_code == 201, created.data
    password = created.get_json()["password"]
    assert len(password) >= 12
    listed = admin.get("/api/accounts/").get_json()["accounts"]
    assert {"username": "ra1", "role": "viewer"}.items() <= next(u for u in listed if u["username"] == "ra1").items()
    assert password not in admin.get("/api/accounts/").data.decode()  # shown once only
    ra = Browser(sqlite_dash_app)
    assert ra.login("ra1", password).status_code == 302
    assert ra.get("/api/accounts/").status_code == 403

    assert admin.client.patch("/api/accounts/ra1", json={"role": "admin"},
                              headers={"X-CSRFToken": admin.csrf}).get_json()["role"] == "admin"
    assert ra.get("/api/accounts/").status_code == 200  # the new role holds at once
    removed = admin.client.delete("/api/accounts/ra1", headers={"X-CSRFToken": admin.csrf})
    assert removed.status_code == 200 and removed.get_json() == {"removed": "ra1"}
    assert ra.get("/api/accounts/").status_code == 401  # its session ended with it
    actions = [(e["action"], e["target"], e["actor"]) for e in _activity(sqlite_dash_app, "account")]
    assert actions == [("account.remove", "ra1", f"dashboard:{ADMIN}"), ("account.role", "ra1", f"dashboard:{ADMIN}"),
                       ("account.add", "ra1", f"dashboard:{ADMIN}")]


def test_account_errors_are_clear_4xx(sqlite_dash_app: Any, browser_for, add_user) -> None:
    admin = browser_for(sqlite_dash_app)
    add_user(sqlite_dash_app, "second", "admin", "pw-second-1")

    def code(response: Any) -> tuple[int, str]:
        return response.status_code, response.get_json()["error"]["code"]

    assert code(admin.post_json("/api/accounts/", {"username": "bad name", "role": "viewer"})) == (400, "invalid_input")
    assert code(admin.post_json("/api/accounts/", {"username": "x", "role": "owner"})) == (400, "invalid_input")
    assert code(admin.post_json("/api/accounts/", {"username": "x", "role": "viewer", "password": "short"})) \
        == (400, "invalid_input")
    assert code(admin.post_json("/api/accounts/", ["not", "an", "object"])) == (400, "invalid_input")
    assert code(admin.post_json("/api/accounts/", {"username": "second", "role": "viewer",
                                                   "password": "long-enough"})) == (409, "conflict")
    assert code(admin.post_json("/api/accounts/", {"username": ADMIN, "role": "viewer"}))[0] == 409
    headers = {"X-CSRFToken": admin.csrf}
    assert code(admin.client.delete(f"/api/accounts/{ADMIN}", headers=headers)) == (409, "conflict")
    assert code(admin.client.patch(f"/api/accounts/{ADMIN}", json={"role": "viewer"}, headers=headers))[0] == 409
    assert code(admin.client.delete("/api/accounts/nobody", headers=headers)) == (404, "not_found")
    assert code(admin.client.patch("/api/accounts/second", json={"role": "boss"}, headers=headers))[0] == 400
    # A database admin cannot remove or demote itself (that would lock it out mid-session).
    second = browser_for(sqlite_dash_app, "second", "pw-second-1")
    mine = {"X-CSRFToken": second.csrf}
    assert code(second.client.delete("/api/accounts/second", headers=mine))[0] == 409
    assert code(second.client.patch("/api/accounts/second", json={"role": "payer"}, headers=mine))[0] == 409
    assert [u["username"] for u in _list(sqlite_dash_app)] == [ADMIN, "second"]


def test_last_admin_cannot_go(sqlite_dash_app: Any, clock: Any) -> None:
    """Without a config login (a script's view of the service), the last admin stays."""
    import dataclasses

    from turnout.errors import Conflict
    from turnout.services import accounts

    st = sqlite_dash_app.extensions["turnout.dashboard"]
    no_config = dataclasses.replace(st.settings, login_username="")
    accounts.add_user(st.db, no_config, "only", "pw-only-123", "admin", clock=clock)
    with pytest.raises(Conflict, match="last admin"):
        accounts.set_role(st.db, no_config, "only", "viewer", clock=clock)
    with pytest.raises(Conflict, match="last admin"):
        accounts.remove_user(st.db, "only", settings=no_config, clock=clock)
    accounts.add_user(st.db, no_config, "other", "pw-other-123", "admin", clock=clock)
    assert accounts.set_role(st.db, no_config, "only", "viewer", clock=clock)["changed"] is True


def test_csrf_is_required_for_every_change(sqlite_dash_app: Any, browser_for, add_user) -> None:
    add_user(sqlite_dash_app, "target", "viewer", "pw-target")
    admin = browser_for(sqlite_dash_app)
    refused = [admin.client.post("/api/accounts/", json={"username": "x", "role": "viewer"}),
               admin.client.patch("/api/accounts/target", json={"role": "admin"}),
               admin.client.delete("/api/accounts/target"),
               admin.client.post("/api/tokens/", json={"name": "t"}),
               admin.client.delete("/api/tokens/1"),
               admin.client.delete("/api/accounts/target", headers={"X-CSRFToken": "wrong"})]
    assert [r.status_code for r in refused] == [400] * 6
    assert all(r.get_json()["error"]["code"] == "csrf_failed" for r in refused)
    assert [u["username"] for u in _list(sqlite_dash_app)] == [ADMIN, "target"]


def test_tokens_created_once_listed_and_revoked(sqlite_dash_app: Any, browser_for) -> None:
    admin = browser_for(sqlite_dash_app)
    created = admin.post_json("/api/tokens/", {"name": "nightly", "role": "viewer"})
    assert created.status_code == 201
    body = created.get_json()
    token, token_id = body["token"], body["id"]
    script = sqlite_dash_app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    assert script.get("/api/participants", headers=bearer).status_code == 200
    assert script.get("/api/tokens/", headers=bearer).status_code == 403  # a viewer token is no admin
    listing = admin.get("/api/tokens/").get_json()["tokens"]
    assert [(t["id"], t["name"], t["revoked"]) for t in listing] == [(token_id, "nightly", False)]
    assert token not in admin.get("/api/tokens/").data.decode()
    assert token not in admin.get("/dashboard/settings/accounts").data.decode()
    headers = {"X-CSRFToken": admin.csrf}
    assert admin.client.delete(f"/api/tokens/{token_id}", headers=headers).get_json() == {"revoked": token_id}
    assert script.get("/api/participants", headers=bearer).status_code == 401
    again = admin.client.delete(f"/api/tokens/{token_id}", headers=headers)
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "not_found"
    assert admin.client.delete("/api/tokens/nightly", headers=headers).status_code == 400  # by id only
    assert admin.post_json("/api/tokens/", {"name": "", "role": "viewer"}).status_code == 400
    assert admin.post_json("/api/tokens/", {"name": "x", "role": "root"}).status_code == 400
    assert [e["action"] for e in _activity(sqlite_dash_app, "token")] == ["token.revoke", "token.create"]


def test_admin_token_manages_accounts_without_csrf(sqlite_dash_app: Any, browser_for) -> None:
    admin = browser_for(sqlite_dash_app)
    token = admin.post_json("/api/tokens/", {"name": "ops", "role": "admin"}).get_json()["token"]
    script = sqlite_dash_app.test_client()
    made = script.post("/api/accounts/", json={"username": "bot-made", "role": "payer", "password": "pw-bot-made"},
                       headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201 and "password" not in made.get_json()
    assert _activity(sqlite_dash_app, "account.add")[0]["actor"] == "dashboard:token:ops"


def test_accounts_page_shows_accounts_and_tokens(sqlite_dash_app: Any, browser_for, add_user) -> None:
    add_user(sqlite_dash_app, "ra", "viewer", "pw-ra-1234")
    admin = browser_for(sqlite_dash_app)
    admin.post_json("/api/tokens/", {"name": "export-job", "role": "viewer"})
    page = admin.get("/dashboard/settings/accounts").data.decode()
    assert 'data-user="ra"' in page and 'data-remove-user="ra"' in page
    assert f'data-remove-user="{ADMIN}"' not in page  # the config login has no Remove button
    assert "export-job" in page and "data-revoke-token=" in page
    assert 'aria-current="page" href="/dashboard/settings"' in page  # Settings stays lit in the nav
