"""The one rule for the revision the listeners watch: a commit bumps it when it wrote to a
served table (certificates, private keys, addresses, settings, and the TLS-ALPN-01 challenges
the front end answers), whoever wrote and however.

The rule looks at the statements the database is sent, not at flags set by the code that
changes things: every INSERT, UPDATE or DELETE that SQLAlchemy runs on a served table (ORM
flushes, bulk statements) marks its connection, and ``Store.transaction`` bumps the revision
when it commits a marked one. Writes to users, sessions, tokens, login failures and the
audit trail, and every read (an export, a login), leave it alone: each bump makes every
``serve`` worker re-read its plan and every process drop its certificate views.

On PostgreSQL the bump also sends ``NOTIFY`` on the store's channel (``CHANNEL``), in the
same transaction: PostgreSQL delivers it only when that transaction commits, so a listening
node (``store/watch.py``) hears of exactly the committed changes, at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Table, event
from sqlalchemy.engine import Connection

SERVED_TABLES = frozenset(
    {"certificates", "private_keys", "ip_addresses", "settings", "acme_tls_challenges"}
)
_MARK = "certgate.served-written"

#: The NOTIFY channel of the store (PostgreSQL), as SQL: one per schema, since several
#: stores may share one database in schemas of their own (the tests do). A channel name is
#: at most 63 bytes, so a long schema name is hashed. Both ends evaluate this same expression.
CHANNEL = (
    "CASE WHEN octet_length(current_schema()) <= 45 "
    "THEN 'certgate_revision_' || current_schema() "
    "ELSE 'certgate_revision_' || md5(current_schema()) END"
)
#: Sent after the bump, in its transaction; the payload is the new revision.
NOTIFY = f"SELECT pg_notify({CHANNEL}, (SELECT value FROM revision WHERE id = 1)::text)"


def follow(engine: Engine) -> None:
    """Mark a connection whenever a statement on it writes a served table."""
    event.listen(engine, "begin", _clear)
    event.listen(engine, "after_cursor_execute", _after_execute)


def mark(connection: Connection) -> None:
    """For the one write that bypasses SQLAlchemy's execution (PostgreSQL's COPY)."""
    connection.info[_MARK] = True


def served_written(connection: Connection) -> bool:
    """True when the transaction on ``connection`` wrote a served table."""
    return bool(connection.info.get(_MARK))


def _clear(connection: Connection) -> None:
    connection.info.pop(_MARK, None)


def _after_execute(
    connection: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    if context is None or not (context.isinsert or context.isupdate or context.isdelete):
        return
    compiled = context.compiled
    table = getattr(getattr(compiled, "statement", None), "table", None)
    # An UPDATE or DELETE that matched no row changed nothing (-1: the driver cannot say).
    # An INSERT's count is not read: SQLite's driver says 0 for an INSERT ... RETURNING
    # (the ORM's flush of several rows) until its rows are fetched.
    changed = context.isinsert or cursor.rowcount != 0
    if isinstance(table, Table) and table.name in SERVED_TABLES and changed:
        mark(connection)
