"""Reconciliation runs in the background: their state, progress and stored report.

A check of thousands of assignments runs in a thread of the web process (like a batch);
the dashboard page follows its progress and later renders from the stored report, so no
page load calls the marketplace. Rows made before this revision count as finished.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

from turnout.db.types import LongText

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = ("state", "hits_done", "hits_total", "report", "error", "lease_until")


def upgrade(tables) -> None:
    existing = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("turnout_reconcile_run")}
    with op.batch_alter_table("turnout_reconcile_run") as batch:
        if "state" not in existing:
            batch.add_column(sa.Column("state", sa.String(16)))
        if "hits_done" not in existing:
            batch.add_column(sa.Column("hits_done", sa.Integer))
        if "hits_total" not in existing:
            batch.add_column(sa.Column("hits_total", sa.Integer))
        if "report" not in existing:
            batch.add_column(sa.Column("report", LongText))
        if "error" not in existing:
            batch.add_column(sa.Column("error", sa.Text))
        if "lease_until" not in existing:
            batch.add_column(sa.Column("lease_until", sa.DateTime))


def downgrade(tables) -> None:
    with op.batch_alter_table("turnout_reconcile_run") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
