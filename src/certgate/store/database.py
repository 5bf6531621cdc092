"""Engines and schema: the SQLite file in the data directory by default, PostgreSQL by URL.

The schema is owned by Alembic migrations; ``migrate`` brings any database to head.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from certgate.errors import ConflictError, SchemaNewerError, StoreUnavailableError

if TYPE_CHECKING:
    from alembic.config import Config

DATABASE_FILE = "certgate.db"
log = logging.getLogger("certgate.store")

#: The newest migration. Every command checks the database against it; importing Alembic
#: for that check alone would cost each CLI call ~0.2 s (a test keeps the two in step).
SCHEMA_HEAD = "0016"
_MIGRATIONS = Path(__file__).parent / "migrations"


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DATABASE_FILE}"


def is_sqlite(url: str) -> bool:
    """An SQLite URL; anything else names a PostgreSQL database (``libpq_conninfo``)."""
    return url.startswith("sqlite")


def libpq_conninfo(url: str) -> str:
    """What psycopg (libpq) is handed for a PostgreSQL store: the URL as given
    (``postgresql://...``, ``postgres://...``; SQLAlchemy's ``+psycopg`` dropped) or the
    keyword form (``host=a,b port=5432 dbname=certgate target_session_attrs=read-write``)
    as given. libpq reads them, so everything it knows works: several hosts (``host=a,b``,
    ``postgresql://a:5432,b:5432/db``) tried in turn, ``target_session_attrs``, service
    files, ``options``; SQLAlchemy's URL parser would refuse ``a:5432,b:5432``."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme.split("+")[0] in ("postgresql", "postgres"):
        return f"postgresql://{rest}"
    if separator:
        raise StoreUnavailableError(
            f"store unavailable: {scheme}:// is not a database certgate can use: give a "
            "postgresql:// URL or libpq's 'host=... dbname=...' (or nothing: the SQLite file)"
        )
    return url


def describe_database(url: str) -> str:
    """The database as an operator names it: the SQLite file, or the servers and database
    (never the password)."""
    if is_sqlite(url):
        return str(make_url(url).database)
    import psycopg  # only for PostgreSQL stores: SQLite's commands need not load it
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(libpq_conninfo(url))
    except psycopg.Error:  # libpq refuses it; connecting says why
        return "named by --database-url"
    hosts = str(params.get("host") or "localhost").split(",")
    ports = str(params.get("port") or "5432").split(",")
    ports += ports[-1:] * (len(hosts) - len(ports))  # one port for every host
    servers = ",".join(f"{host}:{port}" for host, port in zip(hosts, ports, strict=False))
    return f"{servers}/{params.get('dbname') or params.get('user') or ''}"


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """The one place that reads the drivers' errors: a database that cannot be used becomes
    a :class:`StoreUnavailableError` naming it and what to do, never a driver's exception.
    A constraint violation is left alone (its caller decides what it means)."""
    try:
        yield
    except DBAPIError as error:
        if isinstance(error, IntegrityError):
            raise
        raise unavailable(error, url) from None


def concurrent_change(error: IntegrityError) -> ConflictError | None:
    """A write that another transaction, committed meanwhile, made break a unique key (the
    same address, user, certificate or key added at once on two nodes) or a reference (what
    it refers to deleted at once): a conflict (409) to look at again, not a fault. None for
    any other constraint (a bug: it stays the driver's error)."""
    said = (str(error.orig) if error.orig is not None else str(error)).lower()
    if "unique" in said or "duplicate key" in said:
        happened = "another change added the same item at the same moment"
    elif "foreign key" in said:
        happened = "another change removed what this one refers to at the same moment"
    else:
        return None
    return ConflictError(
        f"{happened} (another node or command): nothing was changed; look again and retry"
    )


def unavailable(error: DBAPIError, url: str) -> StoreUnavailableError:
    """The driver's ``error`` as what the operator reads: "store unavailable: the database
    X cannot be reached (the driver's first line): what to do"."""
    where = describe_database(url)
    said = (str(error.orig) if error.orig is not None else str(error)).strip()
    said = _without_password(said.splitlines()[0], url) if said else type(error.orig).__name__
    lowered = said.lower()
    if "readonly" in lowered or "read-only" in lowered:
        todo = (
            "give the user running certgate write access to it and to its directory"
            if is_sqlite(url)
            else "give certgate's database role write access (and no read-only default)"
        )
        problem = f"is read-only ({said}): {todo}"
    elif "not a database" in lowered or "malformed" in lowered:
        todo = "restore it from your backup ('certgate restore')"
        problem = f"is damaged ({said}): {todo}"
    elif "unable to open" in lowered:
        todo = "check that it and its directory exist and this user may write them"
        problem = f"cannot be opened ({said}): {todo}"
    elif _state(error) == _DISK_FULL_STATE or "disk is full" in lowered:
        todo = "free space on the disk that holds it; nothing was changed"
        problem = f"is full ({said}): {todo}"
    elif "disk i/o error" in lowered:
        todo = (
            "check the disk that holds it (full, failing, or a file size limit); "
            "nothing was changed"
        )
        problem = f"could not be written or read ({said}): {todo}"
    elif "locked" in lowered or "busy" in lowered:
        problem = f"is busy ({said}): another process holds it too long; try again"
    elif _schema_behind(error, lowered):
        problem = (
            f"lacks a table or column this certgate needs ({said}): its schema is older "
            "than this certgate; run 'certgate init' to upgrade it"
        )
    elif _unreachable(error) or "connection" in lowered or "does not exist" in lowered:
        todo = "check that the server runs and the database URL (--database-url) is right"
        problem = f"cannot be reached ({said}): {todo}"
    else:
        problem = f"cannot be used: {said}"
    return StoreUnavailableError(f"store unavailable: the database {where} {problem}")


#: A password in a URL (``postgresql://user:PASSWORD@host``) or in libpq's keyword form.
_PASSWORD = re.compile(r"://[^/@:]*:([^/@]+)@|password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def _without_password(said: str, url: str) -> str:
    """The driver's words without the URL's password: libpq quotes a URL it cannot parse."""
    for found in _PASSWORD.finditer(url):
        said = said.replace(found.group(1) or found.group(2), "***")
    return said


#: SQLSTATE classes of a server that cannot be reached or talked to now: 08 (connection
#: exception) and 57P (operator intervention: shutting down, starting up, restarted).
_UNREACHABLE_STATES = ("08", "57P")


#: PostgreSQL's SQLSTATE for "could not extend file: No space left on device".
_DISK_FULL_STATE = "53100"


#: SQLSTATEs of a statement naming what the schema lacks: no such table, no such column.
_SCHEMA_BEHIND_STATES = ("42P01", "42703")


def _schema_behind(error: DBAPIError, lowered: str) -> bool:
    """The store's schema is older than the code (a node upgraded while its database was
    away, say): PostgreSQL's SQLSTATE, SQLite's words."""
    return (
        _state(error) in _SCHEMA_BEHIND_STATES
        or "no such table" in lowered
        or ("no such column" in lowered)
    )


def _unreachable(error: DBAPIError) -> bool:
    """The server is stopped, restarting or out of reach (not a fault of the statement):
    SQLAlchemy saw the connection die, or the server said so with its SQLSTATE."""
    return error.connection_invalidated or _state(error).startswith(_UNREACHABLE_STATES)


def _state(error: DBAPIError) -> str:
    """PostgreSQL's SQLSTATE of the error ("" from SQLite)."""
    return getattr(error.orig, "sqlstate", None) or ""


def make_engine(url: str, *, immediate: bool = False, wait: bool = True) -> Engine:
    """An engine with the settings each backend needs for safe concurrent use.

    ``immediate`` (SQLite): transactions take the write lock at BEGIN, for writers.
    ``wait=False`` (SQLite): a busy write lock fails at once instead of after 30 s.
    """
    if is_sqlite(url):
        timeout = 30 if wait else 0
        engine = create_engine(
            url, connect_args={"timeout": timeout}, json_deserializer=_json_or_none
        )
        event.listen(engine, "connect", _sqlite_pragmas if wait else _sqlite_pragmas_no_wait)
        # pysqlite's own transaction handling defers BEGIN; take it over so that every
        # service operation is one real transaction (BEGIN IMMEDIATE for writers).
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        event.listen(engine, "begin", lambda connection: connection.exec_driver_sql(begin))
        return engine
    # The string goes to psycopg as given (libpq_conninfo), not through SQLAlchemy's URL:
    # the dialect's empty URL gives psycopg "" and its adapters, the string replaces "".
    conninfo = libpq_conninfo(url)
    connect_args: dict[str, Any] = {}
    if not _names_connect_timeout(conninfo):
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    if not _names(conninfo, "tcp_user_timeout"):
        connect_args["tcp_user_timeout"] = TCP_USER_TIMEOUT_MS
    engine = create_engine("postgresql+psycopg://", connect_args=connect_args, pool_pre_ping=True)

    def as_given(_dialect: Any, _record: Any, cargs: list[Any], _cparams: Any) -> None:
        cargs[:] = [conninfo]

    event.listen(engine, "do_connect", as_given)
    return engine


#: Seconds a connection attempt to one PostgreSQL host may take (psycopg's default is 130):
#: a server out of reach is said within that, and the next host of a multi-host string is
#: tried. ``connect_timeout`` in the string (or PGCONNECT_TIMEOUT) decides instead.
CONNECT_TIMEOUT = 10


#: Milliseconds what was sent to the server may go unacknowledged before the connection is
#: given up (libpq's ``tcp_user_timeout``): a connection whose network went silent (a cut,
#: a firewall or NAT that forgot it: no reset) fails like a stopped server, instead of each
#: query on it waiting until the kernel gives up, a quarter of an hour.
#: ``tcp_user_timeout`` in the string decides instead.
TCP_USER_TIMEOUT_MS = 10_000


def _names_connect_timeout(conninfo: str) -> bool:
    return bool(os.environ.get("PGCONNECT_TIMEOUT")) or _names(conninfo, "connect_timeout")


def _names(conninfo: str, keyword: str) -> bool:
    """Whether the string sets libpq's ``keyword`` (True when libpq refuses the string: it
    says why when connecting)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        return keyword in conninfo_to_dict(conninfo)
    except psycopg.Error:  # refused when connecting, with libpq's reason
        return True


def _json_or_none(text: str) -> Any:
    """A JSON column's value; None, logged, where SQLite holds text that is no JSON (a damaged
    row: PostgreSQL refuses to store such text): the row's reader then falls back as for a
    missing value, instead of every query that reads it failing."""
    try:
        return json.loads(text)
    except ValueError:
        log.error("a JSON value in the store is damaged (it does not parse): read as missing")
        return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_timeout: int = 30000) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see make_engine)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout)}")
    cursor.close()
    # lower() as PostgreSQL's: SQLite's folds only A-Z, so the audit trail's "any part,
    # any case" filters found no "Ärzte" when "Ärzte" was typed
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _sqlite_pragmas_no_wait(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record, busy_timeout=0)


def _alembic_config(engine: Engine | Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine | Connection) -> None:
    """Create or upgrade the schema to the newest migration (on a connection: inside its
    transaction)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), "head")


def is_current(engine: Engine, url: str) -> bool:
    """True when the database exists and is at the newest migration; a schema newer than
    this certgate's is refused (``SchemaNewerError``): neither an upgrade nor 'init' helps."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if current is not None and current.isdigit() and int(current) > int(SCHEMA_HEAD):
        raise SchemaNewerError(
            f"the database {describe_database(url)} has a newer schema ({current}) than this "
            f"certgate knows ({SCHEMA_HEAD}): a newer certgate migrated it (another node, "
            "upgraded first); upgrade certgate on this node to that version"
        )
    return current == SCHEMA_HEAD


def newest_migration(engine: Engine) -> str | None:
    """The head revision according to the migration scripts (for the test of SCHEMA_HEAD)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
