"""ACME: the account with the CA, the orders placed, the HTTP-01 challenges being answered

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acme_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("directory_url", sa.String(length=500), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("terms_agreed", sa.String(length=500), nullable=True),
        sa.Column("eab_kid", sa.String(length=200), nullable=True),
        sa.Column("ca_bundle", sa.Text(), nullable=True),
        sa.Column("key_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("account_url", sa.String(length=500), nullable=False),
        sa.Column("registration", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "acme_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("friendly_name", sa.String(length=200), nullable=False),
        sa.Column("domains", sa.JSON(), nullable=False),
        sa.Column("key_spec", sa.String(length=16), nullable=False),
        sa.Column("challenge", sa.String(length=16), nullable=False),
        sa.Column("assign", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("order_url", sa.String(length=500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_document", sa.Text(), nullable=True),
        sa.Column("certificate_id", sa.Integer(), nullable=True),
        sa.Column("certificate_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("directory_url", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("acme_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acme_orders_state"), ["state"], unique=False)
    op.create_table(
        "acme_challenges",
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("key_authorization", sa.String(length=500), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["acme_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token"),
    )
    with op.batch_alter_table("acme_challenges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acme_challenges_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("acme_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_challenges_order_id"))
    op.drop_table("acme_challenges")
    with op.batch_alter_table("acme_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_orders_state"))
    op.drop_table("acme_orders")
    op.drop_table("acme_accounts")
