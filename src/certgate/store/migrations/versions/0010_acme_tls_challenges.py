"""acme_tls_challenges: the TLS-ALPN-01 challenges being answered (a served table)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acme_tls_challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("key_authorization", sa.String(length=500), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["acme_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("acme_tls_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_acme_tls_challenges_order_id"), ["order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("acme_tls_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_tls_challenges_order_id"))
    op.drop_table("acme_tls_challenges")
