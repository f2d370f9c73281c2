"""Campaigns, their rounds and HITs, scheduled tasks, task runs, and the runner lease.

Idempotent like 0002 (projects sharing one database find the tables already there). The
APScheduler job table (``jobs_table_name``) is not created here: APScheduler's
SQLAlchemyJobStore owns that layout (a pickled job state per row) and creates it, if
missing, when a runner starts; a migration pinning it would drift from the installed
APScheduler, and a psiTurk database already has it in that very layout.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade(tables) -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())

    if "turnout_campaign" not in existing:
        op.create_table(
            "turnout_campaign",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("codeversion", sa.String(128), nullable=False),
            sa.Column("mode", sa.String(16), nullable=False),
            sa.Column("goal", sa.Integer, nullable=False),
            sa.Column("per_round", sa.Integer, nullable=False),
            sa.Column("interval_minutes", sa.Integer, nullable=False),
            sa.Column("reward", sa.String(16), nullable=False),
            sa.Column("duration_hours", sa.Float, nullable=False),
            sa.Column("budget", sa.String(16)),
            # study|codeversion|mode while active, NULL after: the unique constraint is the
            # "one active campaign per codeversion and mode" rule, on all three databases.
            sa.Column("active_key", sa.String(255)),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("created_by", sa.String(128)),
            sa.Column("next_round_at", sa.DateTime),
            sa.Column("rounds", sa.Integer, nullable=False),
            sa.Column("ended_at", sa.DateTime),
            sa.Column("end_reason", sa.Text),
            sa.UniqueConstraint("active_key", name="uq_turnout_campaign_active"),
        )
        op.create_index("ix_turnout_campaign_scope", "turnout_campaign", ["study", "codeversion", "mode"])

    if "turnout_campaign_round" not in existing:
        op.create_table(
            "turnout_campaign_round",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("campaign_id", sa.Integer, nullable=False),
            sa.Column("number", sa.Integer, nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("started_at", sa.DateTime, nullable=False),
            sa.Column("finished_at", sa.DateTime),
            sa.Column("completed", sa.Integer, nullable=False),
            sa.Column("open", sa.Integer, nullable=False),
            sa.Column("planned", sa.Integer, nullable=False),
            sa.Column("posted", sa.Integer, nullable=False),
            sa.Column("note", sa.Text),
            sa.UniqueConstraint("campaign_id", "number", name="uq_turnout_campaign_round"),
        )

    if "turnout_campaign_hit" not in existing:
        op.create_table(
            "turnout_campaign_hit",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("campaign_id", sa.Integer, nullable=False),
            sa.Column("round_number", sa.Integer, nullable=False),
            sa.Column("position", sa.Integer, nullable=False),
            sa.Column("request_key", sa.String(191), nullable=False),
            sa.Column("assignments", sa.Integer, nullable=False),
            sa.Column("cost", sa.String(16), nullable=False),
            sa.Column("hit_id", sa.String(64)),
            sa.Column("closed_at", sa.DateTime),
            sa.UniqueConstraint("request_key", name="uq_turnout_campaign_hit_key"),
        )
        op.create_index("ix_turnout_campaign_hit_campaign", "turnout_campaign_hit", ["campaign_id", "closed_at"])

    if "turnout_task" not in existing:
        op.create_table(
            "turnout_task",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("mode", sa.String(16), nullable=False),
            sa.Column("codeversion", sa.String(128), nullable=False),
            sa.Column("interval_minutes", sa.Integer, nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("created_by", sa.String(128)),
            sa.Column("next_run_at", sa.DateTime),
            sa.Column("last_run_at", sa.DateTime),
            sa.Column("removed_at", sa.DateTime),
        )
        op.create_index("ix_turnout_task_study", "turnout_task", ["study", "removed_at"])

    if "turnout_task_run" not in existing:
        op.create_table(
            "turnout_task_run",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("job_id", sa.String(64), nullable=False),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("started_at", sa.DateTime, nullable=False),
            sa.Column("finished_at", sa.DateTime),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("counts", sa.Text),
            sa.Column("error", sa.Text),
            sa.Column("runner", sa.String(128)),
        )
        op.create_index("ix_turnout_task_run_job", "turnout_task_run", ["study", "job_id", "started_at"])

    if "turnout_runner_lease" not in existing:
        op.create_table(
            "turnout_runner_lease",
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("holder", sa.String(128), nullable=False),
            sa.Column("host", sa.String(128), nullable=False),
            sa.Column("pid", sa.Integer, nullable=False),
            sa.Column("started_at", sa.DateTime, nullable=False),
            sa.Column("heartbeat_at", sa.DateTime, nullable=False),
            sa.Column("expires_at", sa.DateTime, nullable=False),
        )


def downgrade(tables) -> None:
    # Campaign rounds and HITs record what was posted (money committed); they are kept.
    op.drop_table("turnout_runner_lease")
