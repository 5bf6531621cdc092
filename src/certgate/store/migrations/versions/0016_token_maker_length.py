"""api_tokens.created_by as long as an audit actor: a token of a 100-character name records
its tokens' maker as ``token:<name>``, which 64 characters refused on PostgreSQL. SQLite
does not hold text to its declared length: nothing to do there.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"


def _created_by(length: int, before: int) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column(
        "api_tokens",
        "created_by",
        type_=sa.String(length=length),
        existing_type=sa.String(length=before),
        existing_nullable=False,
    )


def upgrade() -> None:
    _created_by(200, 64)


def downgrade() -> None:
    _created_by(64, 200)
