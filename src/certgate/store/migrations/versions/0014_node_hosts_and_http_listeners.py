"""nodes: the host each node runs on (its name, and its boot id, which tells two hosts apart
whatever their names), and its plain HTTP listeners

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("boot_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("http_listeners", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("http_listeners")
        batch_op.drop_column("boot_id")
        batch_op.drop_column("host")
