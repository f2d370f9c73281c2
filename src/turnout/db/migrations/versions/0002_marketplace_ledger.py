"""Recruitment tables: HIT records, the payments ledger, audit events, owned qualifications.

Idempotent like 0001: two projects sharing one database each run it under their own
version table, and the second finds the (shared, ``study``-keyed) tables already there.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade(tables) -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())

    if "turnout_hit" not in existing:
        op.create_table(
            "turnout_hit",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("mode", sa.String(16), nullable=False),
            sa.Column("codeversion", sa.String(128)),
            sa.Column("request_key", sa.String(191), nullable=False),
            sa.Column("request_token", sa.String(64), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("hit_id", sa.String(64)),
            sa.Column("title", sa.String(255)),
            sa.Column("reward", sa.String(16), nullable=False),
            sa.Column("max_assignments", sa.Integer, nullable=False),
            sa.Column("lifetime_seconds", sa.Integer, nullable=False),
            sa.Column("duration_seconds", sa.Integer, nullable=False),
            sa.Column("annotation", sa.String(255)),
            sa.Column("qualifications", sa.Text),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("finished_at", sa.DateTime),
            sa.Column("deleted_at", sa.DateTime),
            sa.Column("actor", sa.String(128)),
            sa.Column("error", sa.Text),
            sa.UniqueConstraint("request_key", name="uq_turnout_hit_request_key"),
        )
        op.create_index("ix_turnout_hit_scope", "turnout_hit", ["study", "mode", "codeversion"])
        op.create_index("ix_turnout_hit_hit_id", "turnout_hit", ["hit_id"])

    if "turnout_ledger" not in existing:
        op.create_table(
            "turnout_ledger",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("mode", sa.String(16), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("idempotency_key", sa.String(191), nullable=False),
            sa.Column("request_token", sa.String(64)),
            sa.Column("assignment_id", sa.String(64), nullable=False),
            sa.Column("worker_id", sa.String(64)),
            sa.Column("hit_id", sa.String(64)),
            sa.Column("uniqueid", sa.String(128)),
            sa.Column("codeversion", sa.String(128)),
            sa.Column("amount", sa.String(16)),
            sa.Column("reason", sa.Text),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("claimed_by", sa.String(64)),
            sa.Column("claimed_at", sa.DateTime),
            sa.Column("first_sent_at", sa.DateTime),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("finished_at", sa.DateTime),
            sa.Column("error_code", sa.String(128)),
            sa.Column("error_message", sa.Text),
            sa.Column("actor", sa.String(128)),
            sa.UniqueConstraint("idempotency_key", name="uq_turnout_ledger_key"),
        )
        op.create_index("ix_turnout_ledger_assignment", "turnout_ledger", ["assignment_id"])
        op.create_index("ix_turnout_ledger_state", "turnout_ledger", ["state"])
        op.create_index("ix_turnout_ledger_scope", "turnout_ledger", ["study", "mode", "kind"])

    if "turnout_audit_event" not in existing:
        op.create_table(
            "turnout_audit_event",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("actor", sa.String(128), nullable=False),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("mode", sa.String(16), nullable=False),
            sa.Column("marketplace", sa.String(255), nullable=False),
            sa.Column("target", sa.String(128)),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("ledger_id", sa.Integer),
            sa.Column("detail", sa.Text),
        )
        op.create_index("ix_turnout_audit_event_at", "turnout_audit_event", ["study", "at"])
        op.create_index("ix_turnout_audit_event_target", "turnout_audit_event", ["target"])

    if "turnout_qualification" not in existing:
        op.create_table(
            "turnout_qualification",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("mode", sa.String(16), nullable=False),
            sa.Column("purpose", sa.String(32), nullable=False),
            sa.Column("qualification_type_id", sa.String(64), nullable=False),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.UniqueConstraint("study", "mode", "purpose", name="uq_turnout_qualification_purpose"),
        )

    if "turnout_qualification_grant" not in existing:
        op.create_table(
            "turnout_qualification_grant",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("qualification_type_id", sa.String(64), nullable=False),
            sa.Column("worker_id", sa.String(64), nullable=False),
            sa.Column("granted_at", sa.DateTime, nullable=False),
            sa.UniqueConstraint("qualification_type_id", "worker_id", name="uq_turnout_qual_grant"),
        )


def downgrade(tables) -> None:
    # The ledger and audit trail record real payments; a downgrade keeps them. Only the
    # bookkeeping of owned qualifications goes.
    op.drop_table("turnout_qualification_grant")
    op.drop_table("turnout_qualification")
