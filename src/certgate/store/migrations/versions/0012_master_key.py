"""master_key: which master key seals the store now (its id and generation, the ones it
replaced); nodes.master_key_id: the key each node runs with

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "master_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("made_at", sa.String(length=1000), nullable=True),
        sa.Column("retired", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The one row exists from the start: a sealing writer locks it (FOR SHARE) against a
    # rotation (FOR UPDATE), so there is always a row to lock.
    op.bulk_insert(table, [{"id": 1, "generation": 1, "key_id": None, "retired": []}])
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("master_key_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("master_key_id")
    op.drop_table("master_key")
