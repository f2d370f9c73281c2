"""``/api/accounts/`` and ``/api/tokens/``: lab accounts and API tokens, for admins only.

The Settings → Accounts page calls these (session + ``X-CSRFToken``); a script with an
admin token can too. A generated password and a new token are in the answer once and
stored only as hashes. Every change is written to the Activity log by the service.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from turnout.api.blueprint import bp
from turnout.api.views import json_body
from turnout.dashboard.auth import current_principal, require_role
from turnout.dashboard.market import actor, state
from turnout.errors import InvalidInput
from turnout.services import accounts

MIN_PASSWORD = 8


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{key} is required (text)" if required else f"{key} must be text")
    return value.strip()


def _me() -> str | None:
    principal = current_principal()
    return principal.username if principal is not None and principal.source != "token" else None


@bp.get("/accounts/")
@require_role("admin")
def account_list() -> Any:
    st = state()
    return jsonify({"accounts": accounts.list_users(st.db, st.settings)})


@bp.post("/accounts/")
@require_role("admin")
def account_add() -> Any:
    """``{"username", "role", "password"?}``; without a password one is generated and
    returned (once) as ``"password"``."""
    body = json_body()
    username = _text(body, "username")
    role = accounts.check_role(_text(body, "role"))
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        raise InvalidInput("password must be text")
    generated = not password
    if generated:
        password = accounts.generate_password()
    elif len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password must be at least {MIN_PASSWORD} characters "
                           "(leave it out to have one generated)")
    st = state()
    row = accounts.add_user(st.db, st.settings, username, password, role, clock=st.clock, actor=actor())
    if generated:
        row["password"] = password
    return jsonify(row), 201


@bp.patch("/accounts/<username>")
@require_role("admin")
def account_change(username: str) -> Any:
    """``{"role"}``: the config login, your own account and the last admin are refused (409)."""
    role = _text(json_body(), "role")
    st = state()
    return jsonify(accounts.set_role(st.db, st.settings, username, role, clock=st.clock, actor=actor(),
                                     actor_name=_me()))


@bp.delete("/accounts/<username>")
@require_role("admin")
def account_remove(username: str) -> Any:
    st = state()
    accounts.remove_user(st.db, username, settings=st.settings, clock=st.clock, actor=actor(), actor_name=_me())
    return jsonify({"removed": username})


@bp.get("/tokens/")
@require_role("admin")
def token_list() -> Any:
    return jsonify({"tokens": accounts.list_tokens(state().db)})


@bp.post("/tokens/")
@require_role("admin")
def token_create() -> Any:
    """``{"name", "role"}`` → 201 with ``"token"``: shown this once, stored only as a hash."""
    body = json_body()
    name = _text(body, "name")
    role = _text(body, "role", required=False) or "viewer"
    st = state()
    row, token = accounts.create_token(st.db, name=name, role=role, clock=st.clock, actor=actor())
    return jsonify({**row, "token": token}), 201


@bp.delete("/tokens/<token_id>")
@require_role("admin")
def token_revoke(token_id: str) -> Any:
    st = state()
    accounts.revoke_token(st.db, token_id, clock=st.clock, actor=actor(), by_id=True)
    return jsonify({"revoked": int(token_id)})
