"""The API tests share the dashboard tests' fixtures (a dashboard-enabled app, sign-in)."""

from dashboard.conftest import (  # noqa: F401  (fixtures)
    add_user,
    browser_for,
    dash_app,
    seed,
    sqlite_dash_app,
    sqlite_study,
    study,
)
