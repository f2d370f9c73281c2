"""Initial schema: psiTurk's participant and HIT tables, turnout's columns, indexes, transitions.

Works on an empty database and on a psiTurk 3.x database alike: tables that exist are
kept with every row, and only what is missing (turnout's columns, the lookup indexes,
turnout's own tables) is added.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _long_text() -> sa.types.TypeEngine:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade(tables) -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    p = tables.participants

    if p not in existing:
        op.create_table(
            p,
            sa.Column("uniqueid", sa.String(128), primary_key=True),
            sa.Column("assignmentid", sa.String(128), nullable=False),
            sa.Column("workerid", sa.String(128), nullable=False),
            sa.Column("hitid", sa.String(128), nullable=False),
            sa.Column("ipaddress", sa.String(128)),
            sa.Column("browser", sa.String(128)),
            sa.Column("platform", sa.String(128)),
            sa.Column("language", sa.String(128)),
            sa.Column("cond", sa.Integer),
            sa.Column("counterbalance", sa.Integer),
            sa.Column("codeversion", sa.String(128)),
            sa.Column("beginhit", sa.DateTime),
            sa.Column("beginexp", sa.DateTime),
            sa.Column("endhit", sa.DateTime),
            sa.Column("bonus", sa.Float),
            sa.Column("status", sa.Integer),
            sa.Column("mode", sa.String(128)),
            sa.Column("datastring", _long_text()),
            sa.Column("turnout_token", sa.String(64)),
            sa.Column("turnout_trials", sa.Integer),
        )
    else:
        columns = {c["name"] for c in inspector.get_columns(p)}
        with op.batch_alter_table(p) as batch:
            if "turnout_token" not in columns:
                batch.add_column(sa.Column("turnout_token", sa.String(64)))
            if "turnout_trials" not in columns:
                batch.add_column(sa.Column("turnout_trials", sa.Integer))

    have = {ix["name"] for ix in sa.inspect(bind).get_indexes(p)}
    for name, cols in ((f"ix_{p}_workerid", ["workerid"]), (f"ix_{p}_assignmentid", ["assignmentid"]),
                       (f"ix_{p}_hitid", ["hitid"]),
                       (f"ix_{p}_balance", ["codeversion", "mode", "status"]),
                       (f"ix_{p}_recent", ["codeversion", "mode", "beginhit"])):
        if name not in have:
            op.create_index(name, p, cols)

    if tables.hits not in existing:
        op.create_table(tables.hits, sa.Column("hitid", sa.String(128), primary_key=True))

    if "turnout_status_transition" not in existing:
        op.create_table(
            "turnout_status_transition",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("table_name", sa.String(64), nullable=False),
            sa.Column("uniqueid", sa.String(128), nullable=False),
            sa.Column("old_status", sa.Integer),
            sa.Column("new_status", sa.Integer, nullable=False),
            sa.Column("reason", sa.String(64), nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("processed_at", sa.DateTime),
            sa.Column("detail", sa.Text),
        )
        op.create_index("ix_turnout_status_transition_uniqueid", "turnout_status_transition", ["uniqueid"])
        op.create_index("ix_turnout_status_transition_unprocessed", "turnout_status_transition",
                        ["processed_at"])


def downgrade(tables) -> None:
    # Participant data is never dropped by a downgrade; only turnout's additions go.
    op.drop_table("turnout_status_transition")
    p = tables.participants
    for name in (f"ix_{p}_workerid", f"ix_{p}_assignmentid", f"ix_{p}_hitid", f"ix_{p}_balance",
                 f"ix_{p}_recent"):
        op.drop_index(name, table_name=p)
