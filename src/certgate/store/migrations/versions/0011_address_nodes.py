"""the node that serves an address: none for a floating address, served by every node

A node's name (``certgate serve --node NAME``), not a key into ``nodes``: an address may be
pinned to a node before it first starts, and keeps its node while that node is forgotten.
The addresses that were there stay floating, so every node goes on serving them.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ip_addresses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ip_addresses", schema=None) as batch_op:
        batch_op.drop_column("node")
