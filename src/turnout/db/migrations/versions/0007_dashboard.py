"""Dashboard tables: lab accounts, API tokens, failed logins, background batches; and an
index (beginhit, uniqueid) on the participant table for the dashboard's default order
(newest first), so a page walks the index and stops after its rows instead of sorting every
row of the codeversion. It does not start with codeversion on purpose: an index that did
would compete with the covering (codeversion, mode, status, ...) index for the counts, and
SQLite's planner, after ANALYZE, picks it and reads every row.

Idempotent like 0002: projects sharing one database each run it under their own version
table, and the second finds the (shared, ``study``-keyed) tables already there.

Revision ID: 0007
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade(tables) -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())

    if "turnout_user" not in existing:
        op.create_table(
            "turnout_user",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("username", sa.String(64), nullable=False),
            sa.Column("password_hash", sa.String(255), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.UniqueConstraint("study", "username", name="uq_turnout_user_name"),
        )
    if "turnout_api_token" not in existing:
        op.create_table(
            "turnout_api_token",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("token_hash", sa.String(64), nullable=False),
            sa.Column("prefix", sa.String(16), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("last_used_at", sa.DateTime),
            sa.Column("revoked_at", sa.DateTime),
            sa.UniqueConstraint("token_hash", name="uq_turnout_api_token_hash"),
        )
        op.create_index("ix_turnout_api_token_study", "turnout_api_token", ["study"])
    if "turnout_login_failure" not in existing:
        op.create_table(
            "turnout_login_failure",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("address", sa.String(64), nullable=False),
            sa.Column("username", sa.String(64), nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
        )
        op.create_index("ix_turnout_login_failure_address", "turnout_login_failure", ["address", "at"])
        op.create_index("ix_turnout_login_failure_username", "turnout_login_failure",
                        ["study", "username", "at"])
    if "turnout_batch" not in existing:
        op.create_table(
            "turnout_batch",
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("mode", sa.String(16), nullable=False),
            sa.Column("codeversion", sa.String(128)),
            sa.Column("action", sa.String(32), nullable=False),
            sa.Column("params", sa.Text),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("total", sa.Integer, nullable=False),
            sa.Column("actor", sa.String(128), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("finished_at", sa.DateTime),
            sa.Column("lease_owner", sa.String(64)),
            sa.Column("lease_until", sa.DateTime),
        )
        op.create_index("ix_turnout_batch_scope", "turnout_batch", ["study", "mode", "action", "state"])
    if "turnout_batch_item" not in existing:
        op.create_table(
            "turnout_batch_item",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("batch_id", sa.String(32), nullable=False),
            sa.Column("target", sa.String(128), nullable=False),
            sa.Column("worker_id", sa.String(128)),
            sa.Column("amount", sa.String(16)),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("message", sa.Text),
            sa.Column("ledger_id", sa.Integer),
            sa.Column("finished_at", sa.DateTime),
        )
        op.create_index("ix_turnout_batch_item_batch", "turnout_batch_item", ["batch_id", "state"])


    p = tables.participants
    name = f"ix_{p}_newest"
    if name not in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(p)}:
        op.create_index(name, p, ["beginhit", "uniqueid"])


def downgrade(tables) -> None:
    op.drop_index(f"ix_{tables.participants}_newest", table_name=tables.participants)
    # Batches and logins are bookkeeping; accounts and tokens go with the dashboard.
    for table in ("turnout_batch_item", "turnout_batch", "turnout_login_failure",
                  "turnout_api_token", "turnout_user"):
        op.drop_table(table)
