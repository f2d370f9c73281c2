"""Participants per cell, kept by triggers: ``turnout_cell_count``.

One row per (study, codeversion, mode, status, cond, counterbalance) with its count,
kept by insert/update/delete triggers on the participant table (turnout.db.cell_counts),
and filled here from a full count. Counterbalancing and the dashboard read it instead of
counting a table that grows. On PostgreSQL the trigger creation locks the table against
writes until this migration commits, so the fill is exact; on MariaDB DDL commits at once,
so upgrade with the server stopped (as for every migration).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from turnout.db import cell_counts

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade(tables) -> None:
    bind = op.get_bind()
    if cell_counts.TABLE not in sa.inspect(bind).get_table_names():
        op.create_table(
            cell_counts.TABLE,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(64), nullable=False),
            sa.Column("codeversion", sa.String(128)),
            sa.Column("mode", sa.String(128)),
            sa.Column("status", sa.Integer),
            sa.Column("cond", sa.Integer),
            sa.Column("counterbalance", sa.Integer),
            sa.Column("n", sa.Integer, nullable=False),
        )
        op.create_index("ix_turnout_cell_count_cell", cell_counts.TABLE, ["study", *cell_counts.KEYS])
    cell_counts.install(bind, tables.participants)
    cell_counts.backfill(bind, tables.participants)


def downgrade(tables) -> None:
    bind = op.get_bind()
    cell_counts.uninstall(bind, tables.participants)
    bind.execute(sa.text(f"DELETE FROM {cell_counts.TABLE} WHERE study = :s"), {"s": tables.participants})
    cell_counts.forget(bind.engine)
    if not bind.execute(sa.text(f"SELECT 1 FROM {cell_counts.TABLE}")).first():
        op.drop_table(cell_counts.TABLE)
