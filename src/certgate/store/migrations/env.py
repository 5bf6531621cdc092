"""Alembic environment: certgate passes its engine in ``config.attributes``, or a connection
whose transaction the migrations then join (a restore creates the schema and loads the rows in
one transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from alembic import context
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from certgate.store.models import Base


@contextmanager
def _without_foreign_key_actions(connection: Connection) -> Iterator[None]:
    """SQLite's foreign keys off while a migration rebuilds a table others refer to: with
    them on, dropping the old table deletes its rows first, and that sets the references to
    it to NULL or deletes the rows holding them (sessions, ACME challenges) or refuses. The
    pragma only works outside a transaction; the references are checked before the commit."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    [enforced] = driver.execute("PRAGMA foreign_keys").fetchone()
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute(f"PRAGMA foreign_keys={int(enforced)}")


#: PostgreSQL's advisory lock that lets one migration run at a time ("certgate" in ASCII).
_ONE_AT_A_TIME = 0x6365727467617465


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    if connection.dialect.name == "postgresql":
        # Two nodes upgraded at once ('certgate init' on each): the second waits until the
        # first commits, then reads the version it left, instead of altering a table the
        # first already altered.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ONE_AT_A_TIME})")
    sqlite = connection.dialect.name == "sqlite"
    before = _broken_references(connection) if sqlite else set()
    context.run_migrations()
    if sqlite:
        # Only what the migrations broke: a reference broken before (none should be) must
        # not stop an upgrade that did not touch it.
        broken = _broken_references(connection) - before
        if broken:
            raise RuntimeError(f"a migration broke references: {sorted(broken)}")


def _broken_references(connection: Connection) -> set[tuple[object, ...]]:
    return {tuple(row) for row in connection.exec_driver_sql("PRAGMA foreign_key_check")}


bind = context.config.attributes["engine"]
if isinstance(bind, Engine):
    with (
        bind.connect() as connection,
        _without_foreign_key_actions(connection),
        connection.begin(),
    ):
        _run(connection)
else:
    with nullcontext(bind) as connection:
        _run(connection)
