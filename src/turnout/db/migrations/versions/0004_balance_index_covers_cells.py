"""Widen the counterbalancing index to (codeversion, mode, status, cond, counterbalance).

Every first visit counts the finished participants per condition. With the
(codeversion, mode, status) index each of those rows was read from the table: 0.35 s
per first visit at 100k participants on SQLite, with the write lock held. With cond and
counterbalance in the index the count reads no table rows. Same name and still one
index, so a write maintains no more indexes than before; every query the narrow index
served, the wide one serves.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NARROW = ["codeversion", "mode", "status"]
WIDE = ["codeversion", "mode", "status", "cond", "counterbalance"]


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
    _balance_index(tables, WIDE)


def downgrade(tables) -> None:
    _balance_index(tables, NARROW)
