"""expiry notices: one row per (certificate, threshold), sent once cluster-wide

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "expiry_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("certificate_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claim", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("friendly_name", sa.String(length=200), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("certificate_fingerprint", "threshold"),
    )
    with op.batch_alter_table("expiry_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_expiry_notices_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("expiry_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_expiry_notices_state"))
    op.drop_table("expiry_notices")
