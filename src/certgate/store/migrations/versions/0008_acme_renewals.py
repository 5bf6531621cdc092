"""ACME renewals: each order's successor, and the lease and backoff of its renewal

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("acme_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("renewal_of", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("renewed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("renewal_claim", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("renewal_claimed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("renewal_attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(sa.Column("renewal_next_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("renewal_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("acme_orders", schema=None) as batch_op:
        for column in (
            "renewal_error",
            "renewal_next_at",
            "renewal_attempts",
            "renewal_claimed_at",
            "renewal_claim",
            "renewed_by",
            "renewal_of",
        ):
            batch_op.drop_column(column)
