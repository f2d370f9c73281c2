"""The participant column that orders /sync saves by page load and sequence.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade(tables) -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(tables.participants)}
    if "turnout_save" not in columns:
        with op.batch_alter_table(tables.participants) as batch:
            batch.add_column(sa.Column("turnout_save", sa.String(40)))


def downgrade(tables) -> None:
    with op.batch_alter_table(tables.participants) as batch:
        batch.drop_column("turnout_save")
