"""acme_orders: the CA's renewal information (ARI, RFC 9773) of each order's certificate

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("acme_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("renewal_suggested_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("renewal_info_next_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("acme_orders", schema=None) as batch_op:
        batch_op.drop_column("renewal_info_next_at")
        batch_op.drop_column("renewal_suggested_at")
