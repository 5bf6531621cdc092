"""The whole store at one moment, as one SQLite database file, and back.

A snapshot is always a SQLite file at a schema certgate knows, whatever the store: on SQLite
it is the online backup of the database (one read transaction, consistent while others
write); on PostgreSQL every table is read in one REPEATABLE READ transaction through
SQLAlchemy and written into a freshly migrated SQLite file (no ``pg_dump`` needed, and the
columns' types are SQLAlchemy's both ways). Loading one into PostgreSQL creates the schema and
inserts every row in one transaction, so a failed load leaves the database as it was. The
nodes' heartbeats stay behind: they describe the machines, not the appliance.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, inspect, make_url, select, text
from sqlalchemy.exc import DBAPIError

from certgate.errors import StoreUnavailableError
from certgate.store.database import (
    SCHEMA_HEAD,
    database_errors,
    is_sqlite,
    make_engine,
    migrate,
)
from certgate.store.models import Base, CertificateRow, KeyRow, MasterKeyRow, NodeRow
from certgate.store.repository import Store

_BATCH = 1000
_ALEMBIC_TABLE = "alembic_version"


class SnapshotError(StoreUnavailableError):
    """A snapshot file that cannot be used (damaged, or from a newer certgate)."""

    code = "snapshot"


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for any other store."""
    if not is_sqlite(url):
        return None
    parsed = make_url(url)
    if not parsed.database:
        return None
    return Path(parsed.database)


def take_snapshot(store: Store, target: Path) -> dict[str, int]:
    """Write the whole store into the new SQLite file ``target`` (mode 0600); returns how
    many certificates and private keys it holds."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = sqlite_path(store.url)
    with database_errors(store.url):
        if source is not None:
            with (
                closing(sqlite3.connect(source, timeout=30)) as reading,
                closing(sqlite3.connect(target)) as writing,
            ):
                reading.backup(writing)  # all pages in one step: one consistent read
        else:
            _copy_into_sqlite(store, target)
    forget_nodes(target)
    return snapshot_counts(target)


def forget_nodes(image: Path) -> None:
    """The nodes' heartbeats are what the machines running the store last did, not the
    appliance's configuration: restored elsewhere, the old cluster's nodes would show as lost
    until removed by hand. Pinned addresses keep their node's name; each node is listed again
    from its first heartbeat after the restore. Done when a snapshot is taken, and again when
    one is restored (a backup made before it was done still holds them)."""
    with closing(sqlite3.connect(image)) as connection, connection:
        connection.execute(f"DELETE FROM {NodeRow.__tablename__}")


def _copy_into_sqlite(store: Store, target: Path) -> None:
    _check_tables(store)
    image = make_engine(f"sqlite:///{target}")
    try:
        migrate(image)
        source = store.engine.connect().execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        with source, source.begin(), image.begin() as writing:
            _clear_seeded(writing)
            for table in Base.metadata.sorted_tables:
                rows = source.execution_options(yield_per=_BATCH).execute(select(table))
                _insert(writing, table, (dict(row._mapping) for row in rows))
            for name in _NEVER_REUSED:
                _keep_highest_id(writing, name, _sequence_used(source, name))
    finally:
        image.dispose()


def _check_tables(store: Store) -> None:
    """Every table of the store is one certgate knows: nothing is left out of a snapshot."""
    with store.engine.connect() as connection:
        present = set(inspect(connection).get_table_names())
    unknown = present - set(Base.metadata.tables) - {_ALEMBIC_TABLE}
    if unknown:
        raise SnapshotError(
            f"the store holds tables this certgate does not know ({', '.join(sorted(unknown))}):"
            " make the backup with the certgate that made them"
        )


def snapshot_counts(image: Path) -> dict[str, int]:
    """Certificates and private keys in a snapshot, and its schema version's check."""
    engine = make_engine(f"sqlite:///{image}")
    try:
        with engine.connect() as connection:
            return {
                "certificates": _count(connection, CertificateRow.__table__),
                "private_keys": _count(connection, KeyRow.__table__),
            }
    finally:
        engine.dispose()


def snapshot_key_id(image: Path) -> str | None:
    """The master key a snapshot's secrets are sealed with, as its store recorded it (None:
    not recorded)."""
    engine = make_engine(f"sqlite:///{image}")
    try:
        with engine.connect() as connection:
            return connection.execute(select(MasterKeyRow.key_id)).scalar()
    finally:
        engine.dispose()


def _count(connection: Connection, table: Any) -> int:
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def check_snapshot(image: Path) -> None:
    """A SQLite file that is whole and at a schema this certgate can bring to its own."""
    try:
        with closing(sqlite3.connect(image)) as connection:
            [verdict] = connection.execute("PRAGMA quick_check").fetchone()
            version = connection.execute(f"SELECT version_num FROM {_ALEMBIC_TABLE}").fetchone()
    except sqlite3.Error as error:
        raise SnapshotError(f"the backup's database is damaged ({error})") from None
    if verdict != "ok":
        raise SnapshotError(f"the backup's database is damaged ({verdict})")
    if version is None or not str(version[0]).isdigit():
        raise SnapshotError("the backup's database has no schema version")
    if int(version[0]) > int(SCHEMA_HEAD):
        raise SnapshotError(
            f"the backup was made by a newer certgate (schema {version[0]}, this one knows "
            f"{SCHEMA_HEAD}): restore it with that version"
        )


def upgrade_snapshot(image: Path) -> None:
    """Bring a snapshot made by an older certgate to this one's schema; it must then hold
    every table of this certgate's models."""
    engine = make_engine(f"sqlite:///{image}")
    try:
        migrate(engine)
        with engine.connect() as connection:
            missing = set(Base.metadata.tables) - set(inspect(connection).get_table_names())
    except DBAPIError as error:
        raise SnapshotError(f"the backup's database is damaged ({error.orig})") from None
    finally:
        engine.dispose()
    if missing:
        raise SnapshotError(
            f"the backup's database is damaged (it has no {', '.join(sorted(missing))})"
        )


def is_empty_store(url: str) -> bool:
    """True when the database holds no certgate table (a restore's target must be empty)."""
    engine = make_engine(url)
    try:
        with database_errors(url), engine.connect() as connection:
            present = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    return not present & {*Base.metadata.tables, _ALEMBIC_TABLE}


def load_snapshot(image: Path, url: str) -> None:
    """Create the schema in the empty database ``url`` and insert every row of ``image``,
    in one transaction; integer keys' sequences then continue after the restored rows."""
    source = make_engine(f"sqlite:///{image}")
    target = make_engine(url)
    try:
        with database_errors(url), source.connect() as reading, target.begin() as writing:
            migrate(writing)
            _clear_seeded(writing)
            for table in Base.metadata.sorted_tables:
                rows = reading.execution_options(yield_per=_BATCH).execute(select(table))
                _insert(writing, table, (dict(row._mapping) for row in rows))
            given = reading.execute(text("SELECT name, seq FROM sqlite_sequence"))
            used: dict[str, int] = {name: seq for name, seq in given}
            for table in Base.metadata.sorted_tables:
                _continue_sequence(writing, table, used.get(table.name, 0))
    finally:
        source.dispose()
        target.dispose()


def _clear_seeded(connection: Connection) -> None:
    """A freshly migrated database holds the rows its migrations seed (the one
    ``master_key`` row): the snapshot's own rows take their place."""
    connection.execute(delete(MasterKeyRow))


def _insert(connection: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    for batch in _batches(rows):
        connection.execute(insert(table), batch)


def _batches(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


#: The tables whose ids are never given twice (``models.NEVER_REUSED_IDS``): a snapshot
#: carries the highest id each ever gave (SQLite's ``sqlite_sequence``), deleted rows' too.
_NEVER_REUSED = [
    table.name
    for table in Base.metadata.sorted_tables
    if table.dialect_options["sqlite"]["autoincrement"]
]


def _sequence_used(connection: Connection, name: str) -> int:
    """The highest id PostgreSQL's sequence of ``name`` has given (0: none)."""
    used = connection.execute(
        text(f"SELECT pg_sequence_last_value(pg_get_serial_sequence('{name}', 'id'))")
    ).scalar()
    return int(used or 0)


def _keep_highest_id(connection: Connection, name: str, used: int) -> None:
    """The snapshot's ``sqlite_sequence`` for ``name``: at least ``used``."""
    raised = connection.execute(
        text("UPDATE sqlite_sequence SET seq = MAX(seq, :used) WHERE name = :name"),
        {"name": name, "used": used},
    )
    if raised.rowcount == 0 and used:
        connection.execute(
            text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :used)"),
            {"name": name, "used": used},
        )


def _continue_sequence(connection: Connection, table: Table, used: int) -> None:
    """PostgreSQL's serial keys: the next id after the restored rows and after every id the
    snapshot's store ever gave (``used``; a deleted row's id is not given again), not 1."""
    if connection.dialect.name != "postgresql" or "id" not in table.c:
        return
    name = table.name
    connection.execute(
        text(
            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
            "GREATEST(COALESCE(MAX(id), 0), :used, 1), "
            f"GREATEST(COALESCE(MAX(id), 0), :used) > 0) FROM {name}"
        ),
        {"used": used},
    )
