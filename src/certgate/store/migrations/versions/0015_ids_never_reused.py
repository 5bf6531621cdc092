"""ids never given twice: on SQLite the tables whose ids people and other rows refer to
(certificates, requests, keys, users, API tokens, ACME orders) get AUTOINCREMENT, rebuilt
with their rows, references, indexes and constraints; without it SQLite gave the next row
the highest id a deletion freed, so "certificate 7" in the audit trail, a notice or a
bookmarked URL came to name another. PostgreSQL's sequences never go back: nothing to do.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"

#: The models of ``NEVER_REUSED_IDS`` (a test keeps the two in step).
TABLES = (
    "private_keys",
    "certificates",
    "certificate_requests",
    "users",
    "api_tokens",
    "acme_orders",
)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
