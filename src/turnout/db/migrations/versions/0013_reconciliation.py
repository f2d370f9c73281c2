"""Reconciliation: excluded participant rows and the record of each check.

Idempotent like 0002: projects sharing one database share these ``study``-keyed tables.

Revision ID: 0013
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade(tables) -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "turnout_exclusion" not in existing:
        op.create_table(
            "turnout_exclusion",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("uniqueid", sa.String(128), nullable=False),
            sa.Column("assignment_id", sa.String(64)),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("actor", sa.String(128), nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.UniqueConstraint("study", "uniqueid", name="uq_turnout_exclusion_row"),
        )
        op.create_index("ix_turnout_exclusion_assignment", "turnout_exclusion", ["assignment_id"])
    if "turnout_reconcile_run" not in existing:
        op.create_table(
            "turnout_reconcile_run",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("mode", sa.String(16), nullable=False),
            sa.Column("codeversion", sa.String(128)),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("actor", sa.String(128), nullable=False),
            sa.Column("checked", sa.Integer, nullable=False),
            sa.Column("differences", sa.Integer, nullable=False),
            sa.Column("summary", sa.Text),
        )
        op.create_index("ix_turnout_reconcile_run_scope", "turnout_reconcile_run", ["study", "mode", "at"])


def downgrade(tables) -> None:
    op.drop_table("turnout_reconcile_run")
    op.drop_table("turnout_exclusion")
