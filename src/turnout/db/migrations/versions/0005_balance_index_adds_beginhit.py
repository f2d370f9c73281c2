"""Add beginhit to the counterbalancing index: (codeversion, mode, status, cond,
counterbalance, beginhit).

Counterbalancing now counts the finished participants who began before the cutoff
outside its lock (turnout.experiment.counterbalance.Settled); with beginhit in the index
that count, too, reads the index alone.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BEFORE = ["codeversion", "mode", "status", "cond", "counterbalance"]
AFTER = ["codeversion", "mode", "status", "cond", "counterbalance", "beginhit"]


def _balance_index(tables, columns: list[str]) -> None:
    p = tables.participants
    name = f"ix_{p}_balance"
    found = {ix["name"]: ix["column_names"] for ix in sa.inspect(op.get_bind()).get_indexes(p)}
    if found.get(name) == columns:
        return
    if name in found:
        op.drop_index(name, table_name=p)
    op.create_index(name, p, columns)


def upgrade(tables) -> None:
    _balance_index(tables, AFTER)


def downgrade(tables) -> None:
    _balance_index(tables, BEFORE)
