"""Settings → Accounts (admins only): lab accounts and API tokens.

The page lists through ``services.accounts`` and changes things only through the JSON API
(``/api/accounts/``, ``/api/tokens/``) from ``accounts.js``, so the page and a script get
the same rules, role check, CSRF check and Activity-log rows. A generated password or a
new token is shown once, in the page, from the API's answer; it is never stored in clear.
"""

from __future__ import annotations

from typing import Any

from flask import render_template

from turnout.dashboard.auth import current_principal, require_role
from turnout.dashboard.blueprint import bp
from turnout.dashboard.market import state
from turnout.services import accounts


@bp.get("/settings/accounts")
@require_role("admin")
def accounts_page() -> Any:
    st = state()
    principal = current_principal()
    return render_template("dashboard/accounts.html", users=accounts.list_users(st.db, st.settings),
                           tokens=accounts.list_tokens(st.db), roles=accounts.ROLES,
                           me=principal.username if principal else None)
