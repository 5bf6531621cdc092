"""hostnames of an address: the DNS names clients use to reach it

A JSON list of A-label names on each address (empty for the addresses that were there).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ip_addresses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hostnames", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("ip_addresses", schema=None) as batch_op:
        batch_op.drop_column("hostnames")
