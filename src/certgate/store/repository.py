"""The one API the service layer uses to read and change the store.

``Store.transaction(actor)`` is the unit of work: everything done through the yielded
``Repository`` commits together or not at all, and a commit that wrote a served table bumps
the revision that running listeners watch (the one rule: ``store/revision.py``). ``actor``
is who the audit events of the transaction name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar, TypeVarTuple, cast

from sqlalchemy import (
    Engine,
    Row,
    Select,
    Table,
    Text,
    bindparam,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.schema import Column, ColumnDefault
from sqlalchemy.sql.elements import ColumnElement

from certgate.store import audit, revision
from certgate.store.audit import Actor, AuditAction
from certgate.store.database import (
    concurrent_change,
    database_errors,
    is_current,
    make_engine,
    migrate,
    unavailable,
)
from certgate.store.models import (
    AuditEventRow,
    Base,
    CertificateRow,
    IpAddressRow,
    KeyRow,
    RequestRow,
    RevisionRow,
    SettingRow,
)

log = logging.getLogger("certgate.store")

_CHUNK = 500  # bound on IN (...) lists, under every backend's parameter limit
RowT = TypeVar("RowT", bound=Base)
_Ts = TypeVarTuple("_Ts")


class ChainLink(NamedTuple):
    """A certificate's columns that decide its chain (``views.chain_rows`` walks these as
    it walks whole rows); a tuple: the listeners' plan reads one per address per commit."""

    id: int
    fingerprint: str
    issuer_id: int | None
    chain_mode: str
    manual_chain: tuple[str, ...] | None
    public_key_fingerprint: str


class CertificateSummary(NamedTuple):
    """A certificate's columns that change (its chain's, its name) without its DER and
    parsed fields, which never change for a fingerprint: what the Certificates list reads on
    every commit (``views.ViewCache`` keeps the rest by fingerprint)."""

    id: int
    fingerprint: str
    issuer_id: int | None
    chain_mode: str
    manual_chain: tuple[str, ...] | None
    public_key_fingerprint: str
    friendly_name: str
    is_factory: bool


class ServedLink(NamedTuple):
    """An address, the chain columns of its certificate, the sealed key (None: none), and
    the node the address is pinned to (None: floating)."""

    address: str
    certificate: ChainLink
    sealed_key: bytes | None
    node: str | None = None


#: The links of ``Repository.served_links``' last read, by their row (given to the next one).
KnownLinks = dict[tuple[Any, ...], ServedLink]


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        # Writers on SQLite take the write lock at BEGIN, so two writers queue instead of
        # failing on upgrade; readers never block.
        self._writer: Engine = (
            make_engine(url, immediate=True) if url.startswith("sqlite") else self.engine
        )
        # Bookkeeping writes (when a token or session was last used) that must never wait.
        self._toucher: Engine = make_engine(url, immediate=True, wait=False)
        for engine in {self.engine, self._writer, self._toucher}:
            revision.follow(engine)
        # A read sees one committed state, as SQLite's read transactions do: under
        # PostgreSQL's READ COMMITTED each statement would see the commits made since the
        # one before (another node deleting a certificate between the read of an address
        # and the read of its certificate). Read-only, it never fails to serialize.
        reader = (
            self.engine
            if url.startswith("sqlite")
            else self.engine.execution_options(isolation_level="REPEATABLE READ")
        )
        self._read_sessions = sessionmaker(reader, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._touch_sessions = sessionmaker(self._toucher, expire_on_commit=False)

    def migrate(self) -> None:
        with database_errors(self.url):
            is_current(self.engine, self.url)  # a newer schema: refused, not left to Alembic
            # as a writer: on SQLite the write lock is taken before the schema version is
            # read, so a serve's write meanwhile is waited for, not a refusal ("busy")
            migrate(self._writer)

    def is_ready(self) -> bool:
        with database_errors(self.url):
            return is_current(self.engine, self.url)

    def holds_sealed_keys(self) -> bool:
        """True when the database has a schema with at least one sealed private key: what a
        new master key would make unreadable."""
        with database_errors(self.url), self.engine.connect() as connection:
            if not inspect(connection).has_table(KeyRow.__tablename__):
                return False
            return connection.execute(select(KeyRow.id).limit(1)).first() is not None

    @contextmanager
    def transaction(self, actor: Actor | None = None) -> Iterator[Repository]:
        """A write transaction; ``actor`` is needed only by one that records audit events.
        A unique key or a reference broken by another transaction committed meanwhile is a
        ``ConflictError`` (``database.concurrent_change``)."""
        try:
            with database_errors(self.url), self._write_sessions.begin() as session:
                repository = Repository(session, actor)
                yield repository
                repository.commit_revision()
        except IntegrityError as error:
            conflict = concurrent_change(error)
            if conflict is None:
                raise
            raise conflict from None

    def touch(self, work: Callable[[Repository], None]) -> bool:
        """Do a small bookkeeping write now if nobody holds the write lock, else nothing
        (False). For what may be recorded late: when a token or session was last used. A
        request must never wait for it (SQLite has one write lock, and an import may hold
        it for seconds)."""
        try:
            with self._touch_sessions.begin() as session:
                if session.get_bind().dialect.name == "postgresql":
                    session.execute(text("SET LOCAL lock_timeout = '50ms'"))
                repository = Repository(session, None)
                work(repository)
                repository.commit_revision()
        except OperationalError as error:
            if _is_busy(error):
                return False
            raise unavailable(error, self.url) from None
        return True

    @contextmanager
    def reading(self) -> Iterator[Repository]:
        with database_errors(self.url), self._read_sessions.begin() as session:
            yield Repository(session, None)

    def revision(self) -> int:
        """The committed revision: one primary-key read, cheap enough to poll."""
        with database_errors(self.url), self.engine.connect() as connection:
            return connection.execute(_REVISION).scalar_one_or_none() or 0

    def close(self) -> None:
        self.engine.dispose()
        self._writer.dispose()
        self._toucher.dispose()


#: The largest id SQLite's AUTOINCREMENT gave a certificate (migration 0015).
_CERTIFICATES_GIVEN = text(
    f"SELECT seq FROM sqlite_sequence WHERE name = '{CertificateRow.__tablename__}'"
)


def _is_busy(error: OperationalError) -> bool:
    """The write lock (SQLite) or a row lock (PostgreSQL's lock_timeout) was taken."""
    text_ = str(error.orig).lower()
    return "locked" in text_ or "lock timeout" in text_ or "busy" in text_


_CHAIN_COLUMNS = (
    CertificateRow.id,
    CertificateRow.fingerprint,
    CertificateRow.issuer_id,
    CertificateRow.chain_mode,
    CertificateRow.manual_chain,
    CertificateRow.public_key_fingerprint,
)


_REVISION = select(RevisionRow.value).where(RevisionRow.id == 1)
#: ``Repository.served_links``: the manual chain as its JSON text (cast by the database: the
#: PostgreSQL driver decodes JSON itself), so that a row is hashable.
_SERVED_LINKS = (
    select(
        IpAddressRow.address,
        *_CHAIN_COLUMNS[:4],
        sql_cast(CertificateRow.manual_chain, Text),
        CertificateRow.public_key_fingerprint,
        KeyRow.sealed,
        IpAddressRow.node,
    )
    .join(CertificateRow, CertificateRow.id == IpAddressRow.certificate_id)
    .outerjoin(KeyRow, KeyRow.public_key_fingerprint == CertificateRow.public_key_fingerprint)
    .order_by(IpAddressRow.id)
)


def _chain_link(row: Sequence[Any]) -> ChainLink:
    row_id, fingerprint, issuer_id, mode, manual, key = row
    return ChainLink(row_id, fingerprint, issuer_id, mode, manual_chain(manual), key)


def manual_chain(stored: Any) -> tuple[str, ...] | None:
    """A certificate's manual chain as stored (the fingerprints, nearest issuer first), or
    None. One that is damaged (no list of text: a hand edit) reads as empty: the chain ends
    short of its root, shown as incomplete on that certificate alone."""
    if not stored:
        return None
    if isinstance(stored, list | tuple) and all(isinstance(item, str) for item in stored):
        return tuple(stored)
    log.error("a stored manual chain is damaged (%.40r): read as empty", stored)
    return ()


def _json_text(text: str | None) -> Any:
    """JSON a query cast to text; text that does not parse is passed on as it is (damaged)."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _copy_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert with PostgreSQL's COPY: an executemany INSERT runs one statement per row on the
    server, which cost PostgreSQL imports twice what SQLite's took. The columns and values are
    those the INSERT would bind: the rows' keys, each bound by its type's processor (JSON
    serialised the same way), and the Python-side default of each column left out."""
    dialect = connection.dialect
    columns = [
        column
        for column in table.columns
        if column.key in rows[0] or isinstance(column.default, ColumnDefault)
    ]
    processors = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(column.name) for column in columns)
    statement = f"COPY {dialect.identifier_preparer.format_table(table)} ({names}) FROM STDIN"
    driver = connection.connection.driver_connection
    import psycopg  # a PostgreSQL store's: SQLite's commands need not load it

    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                values = []
                for column, process in zip(columns, processors, strict=True):
                    value = row[column.key] if column.key in row else _default(column)
                    values.append(value if process is None else process(value))
                copy.write_row(values)
    except psycopg.Error as error:  # as SQLAlchemy wraps it: the same row committed meanwhile
        # by another import is a conflict (Store.transaction), not an internal error
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from None


def _default(column: Column[Any]) -> Any:
    default = column.default
    assert isinstance(default, ColumnDefault)  # columns without one are left out
    return default.arg(None) if default.is_callable else default.arg


class Repository:
    def __init__(self, session: Session, actor: Actor | None) -> None:
        self.session = session
        self.actor = actor

    # --- generic ---------------------------------------------------------------------------

    def add(self, row: Base) -> None:
        self.session.add(row)

    def add_all(self, rows: Iterable[Base]) -> None:
        self.session.add_all(list(rows))

    def flush(self) -> None:
        self.session.flush()

    def delete(self, row: Base) -> None:
        if isinstance(row, AuditEventRow):
            raise TypeError("audit events are append-only")
        self.session.delete(row)

    def audit(self, action: AuditAction, target: str, detail: str = "") -> None:
        """Record an event of this transaction (it does not bump the revision)."""
        audit.record(self.session, self._actor(), action, target, detail)

    def audit_key_use(
        self, use: AuditAction, certificate_name: str, public_key_fingerprint: str, detail: str = ""
    ) -> None:
        """Record a use of a private key (see ``audit.record_key_use``)."""
        audit.record_key_use(
            self.session, self._actor(), use, certificate_name, public_key_fingerprint, detail
        )

    def _actor(self) -> Actor:
        if self.actor is None:
            raise TypeError("a transaction that records audit events needs an actor")
        return self.actor

    def commit_revision(self) -> None:
        """Before the commit: bump the revision if this transaction wrote a served table."""
        self.session.flush()
        if self.session.in_transaction() and revision.served_written(self.session.connection()):
            self._bump_revision()

    def _bump_revision(self) -> None:
        updated = self.session.execute(
            update(RevisionRow).where(RevisionRow.id == 1).values(value=RevisionRow.value + 1)
        )
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            self.session.add(RevisionRow(id=1, value=1))
            self.session.flush()
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text(revision.NOTIFY))  # delivered on commit only

    def revision(self) -> int:
        """The revision this transaction reads (``Store.revision``: the latest committed)."""
        return self.session.execute(_REVISION).scalar_one_or_none() or 0

    # --- certificates ----------------------------------------------------------------------

    def certificate(self, certificate_id: int) -> CertificateRow | None:
        return self.session.get(CertificateRow, certificate_id)

    def certificate_by_fingerprint(self, fingerprint: str) -> CertificateRow | None:
        return self.session.scalar(
            select(CertificateRow).where(CertificateRow.fingerprint == fingerprint)
        )

    def certificates_by_fingerprint_prefix(self, prefix: str) -> list[CertificateRow]:
        query = select(CertificateRow).where(CertificateRow.fingerprint.startswith(prefix))
        return list(self.session.scalars(query.limit(2)))

    def all_certificates(self) -> list[CertificateRow]:
        return list(self.session.scalars(select(CertificateRow).order_by(CertificateRow.id)))

    def certificate_summaries(self) -> list[CertificateSummary]:
        """Every certificate's summary, by id: one query, no DER, no parsed fields."""
        query = select(
            *_CHAIN_COLUMNS, CertificateRow.friendly_name, CertificateRow.is_factory
        ).order_by(CertificateRow.id)
        return [
            CertificateSummary(*_chain_link(row[:6]), row[6], row[7])
            for row in self.session.execute(query)
        ]

    def certificate_infos(self, ids: Iterable[int]) -> list[tuple[str, dict[str, Any]]]:
        """(fingerprint, parsed fields) of these certificates: what never changes."""
        return self._by_ids(ids, CertificateRow.fingerprint, CertificateRow.info)

    def certificate_ders(self, ids: Iterable[int]) -> list[tuple[str, bytes]]:
        """(fingerprint, DER) of these certificates."""
        return self._by_ids(ids, CertificateRow.fingerprint, CertificateRow.der)

    def _by_ids(self, ids: Iterable[int], *columns: Any) -> list[Any]:
        found: list[Any] = []
        for chunk in _chunks(sorted(set(ids))):
            query = select(*columns).where(CertificateRow.id.in_(chunk))
            found.extend(tuple(row) for row in self.session.execute(query))
        return found

    def self_issued_cas(self) -> list[CertificateRow]:
        """The roots of the store (and CA key rollover certificates): CAs named their own
        issuer."""
        query = select(CertificateRow).where(
            CertificateRow.is_ca,
            CertificateRow.subject_name_hash == CertificateRow.issuer_name_hash,
        )
        return list(self.session.scalars(query.order_by(CertificateRow.id)))

    def certificates_by_id(self, ids: Iterable[int]) -> dict[int, CertificateRow]:
        wanted = sorted(set(ids))
        found: dict[int, CertificateRow] = {}
        for chunk in _chunks(wanted):
            query = select(CertificateRow).where(CertificateRow.id.in_(chunk))
            found.update((row.id, row) for row in self.session.scalars(query))
        return found

    def certificates_with_subject_hashes(self, hashes: Sequence[str]) -> list[CertificateRow]:
        """Issuer candidates: certificates whose subject is one of these names."""
        return self._rows_where_in(CertificateRow, CertificateRow.subject_name_hash, hashes)

    def twin_subjects(self, subject_hashes: Sequence[str]) -> set[str]:
        """Which of these subjects more than one certificate has (a cross-signed or
        re-issued CA): only below those can a chain go another way. One grouped scan of the
        subject index, whatever the number of subjects asked about."""
        query = (
            select(CertificateRow.subject_name_hash)
            .group_by(CertificateRow.subject_name_hash)
            .having(func.count() > 1)
        )
        wanted = set(subject_hashes)
        return {subject for subject in self.session.scalars(query) if subject in wanted}

    def linked_children_of(self, subject_hashes: Sequence[str]) -> list[CertificateRow]:
        """Certificates with an issuer already whose issuer name is one of these subjects."""
        rows = self._rows_where_in(CertificateRow, CertificateRow.issuer_name_hash, subject_hashes)
        return [row for row in rows if row.issuer_id is not None]

    def orphan_ids_issued_by(self, subject_hashes: Sequence[str]) -> list[int]:
        """Ids of the certificates with no issuer yet whose issuer name is one of these
        subjects: an import of 10,000 certificates asks about
        10,000 subjects, and loading every matching row whole would cost more than the
        import itself when most matches are the rows just added."""
        # issuer_id is tested here, not in SQL: with both in the WHERE clause SQLite may
        # pick the issuer_id index and scan every unlinked row once per chunk.
        query = select(CertificateRow.issuer_name_hash, CertificateRow.id, CertificateRow.issuer_id)
        return [
            row_id
            for _, row_id, issuer_id in self._matching(query, subject_hashes)
            if issuer_id is None
        ]

    def reserve_certificate_ids(self, count: int) -> list[int]:
        """Ids for ``count`` new certificates, ascending, so that a bulk import can write
        each row with its issuer's id in it (see :meth:`insert_certificates`)."""
        if count == 0:
            return []
        self.session.flush()  # pending ORM rows take their ids first
        if self.session.get_bind().dialect.name == "postgresql":
            query = text(
                "SELECT nextval(pg_get_serial_sequence('certificates', 'id'))"
                " FROM generate_series(1, :count)"
            )
            return sorted(self.session.scalars(query, {"count": count}))
        # SQLite gives a new row the id after the largest it ever gave (AUTOINCREMENT: its
        # sqlite_sequence, a deleted row's id included), or after the largest present;
        # writers hold the write lock from BEGIN IMMEDIATE (Store.transaction), so nobody
        # else takes these before we use them.
        given = self.session.scalar(_CERTIFICATES_GIVEN) or 0
        present = self.session.scalar(select(func.max(CertificateRow.id))) or 0
        start = max(given, present) + 1
        return list(range(start, start + count))

    def insert_certificates(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store new certificates from their column values, ids (reserved) included.

        One executemany INSERT (a COPY on PostgreSQL, see :func:`_copy_rows`): an ORM object
        per row, and the INSERT ... RETURNING per row that the ORM falls back to on SQLite,
        cost more than the rest of a bulk import. A row's issuer must be stored already or
        come earlier in ``rows``.
        """
        if not rows:
            return
        table = cast(Table, CertificateRow.__table__)
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            _copy_rows(connection, table, rows)
            revision.mark(connection)  # COPY goes by the driver, unseen by the rule
        else:
            self.session.execute(insert(table), list(rows))

    def certificate_ids_with_fingerprints(self, fingerprints: Sequence[str]) -> dict[str, int]:
        """Fingerprint -> id of those stored: all an import needs to say "already stored"."""
        query = select(CertificateRow.fingerprint, CertificateRow.id)
        return {fingerprint: row_id for fingerprint, row_id in self._matching(query, fingerprints)}

    def certificate_names_by_public_key(self, fingerprints: Sequence[str]) -> dict[str, str]:
        """Public key -> friendly name of the oldest certificate with it (what a renewal
        inherits), for many keys in a few queries."""
        return self._first_names(CertificateRow, fingerprints)

    def request_names_by_public_key(self, fingerprints: Sequence[str]) -> dict[str, str]:
        """Public key -> friendly name of the oldest request made with it."""
        return self._first_names(RequestRow, fingerprints)

    def certificates_with_public_key(self, fingerprint: str) -> list[CertificateRow]:
        query = select(CertificateRow).where(CertificateRow.public_key_fingerprint == fingerprint)
        return list(self.session.scalars(query))

    def children_of(self, certificate_id: int) -> list[CertificateRow]:
        query = select(CertificateRow).where(CertificateRow.issuer_id == certificate_id)
        return list(self.session.scalars(query))

    def certificates_in_manual_chains(self, fingerprint: str) -> list[CertificateRow]:
        query = select(CertificateRow).where(CertificateRow.manual_chain.is_not(None))
        return [
            row
            for row in self.session.scalars(query)
            if fingerprint in (manual_chain(row.manual_chain) or ())
        ]

    def set_issuers(self, links: dict[int, int]) -> None:
        """Record chosen issuers (certificate id -> issuer id) in bulk.

        One executemany UPDATE on the table: an ORM UPDATE per row re-evaluates its WHERE
        against every object in the session, which made a 10,000-certificate import
        quadratic. Rows already loaded are given the new value as their committed state.
        """
        if not links:
            return
        table = cast(Table, CertificateRow.__table__)
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(issuer_id=bindparam("new_issuer_id"))
        )
        self.session.execute(
            statement,
            [{"row_id": row_id, "new_issuer_id": issuer_id} for row_id, issuer_id in links.items()],
        )
        for row in self._loaded_certificates(links):
            set_committed_value(row, "issuer_id", links[row.id])

    def _loaded_certificates(self, ids: dict[int, int]) -> list[CertificateRow]:
        """Those of ``ids`` that the session holds, looking from the smaller side (a bulk
        import links 10,000 rows it never loaded)."""
        loaded = self.session.identity_map
        if len(loaded) < len(ids):
            return [
                row for row in loaded.values() if isinstance(row, CertificateRow) and row.id in ids
            ]
        found = (loaded.get(identity_key(CertificateRow, row_id)) for row_id in ids)
        return [row for row in found if isinstance(row, CertificateRow)]

    def chain_links(
        self, ids: Iterable[int] = (), fingerprints: Iterable[str] = ()
    ) -> list[ChainLink]:
        """What decides the chains of these certificates (by id or fingerprint), without
        their DER: the listeners' plan compares these to know what it can keep."""
        found: list[ChainLink] = []
        for column, values in (
            (CertificateRow.id, sorted(set(ids))),
            (CertificateRow.fingerprint, sorted(set(fingerprints))),
        ):
            for chunk in _chunks(values):
                query = select(*_CHAIN_COLUMNS).where(column.in_(chunk))
                found.extend(_chain_link(row) for row in self.session.execute(query))
        return found

    def served_links(
        self, node: str | None = None, known: KnownLinks | None = None
    ) -> list[ServedLink]:
        """Every address ``node`` serves (the floating ones and those pinned to it) with its
        certificate's chain columns and sealed key, in one query (the listeners' plan reads
        this after every commit that wrote a served table). A node never reads, nor
        unseals, the keys of addresses it does not serve.

        ``known``: the links of the last read by their row; a row read again gives the same
        object (no new tuples for 999 unchanged addresses of 1,000), and ``known`` is left
        holding this read's."""
        mine: ColumnElement[bool] = IpAddressRow.node.is_(None)
        if node is not None:
            mine = or_(mine, IpAddressRow.node == node)
        fresh: KnownLinks = {}
        rows = self.session.execute(_SERVED_LINKS.where(mine))
        for row in map(tuple, rows):  # plain tuples: hashed and compared in C, not as Rows
            link = known.get(row) if known is not None else None
            if link is None:
                address, certificate_id, fingerprint, issuer, mode, manual, key, sealed, at = row
                chain = manual_chain(_json_text(manual))  # NULL, JSON null, or a list
                certificate = ChainLink(certificate_id, fingerprint, issuer, mode, chain, key)
                link = ServedLink(address, certificate, sealed, at)
            fresh[row] = link
        if known is not None:
            known.clear()
            known.update(fresh)
        return list(fresh.values())

    def factory_certificate(self) -> CertificateRow | None:
        return self.session.scalar(select(CertificateRow).where(CertificateRow.is_factory))

    # --- keys ------------------------------------------------------------------------------

    def key(self, public_key_fingerprint: str) -> KeyRow | None:
        return self.session.scalar(
            select(KeyRow).where(KeyRow.public_key_fingerprint == public_key_fingerprint)
        )

    def key_fingerprints(self, among: Sequence[str] | None = None) -> set[str]:
        """Which of these public keys have a private key (every one, if ``among`` is None)."""
        if among is None:
            return set(self.session.scalars(select(KeyRow.public_key_fingerprint)))
        query = select(KeyRow.public_key_fingerprint)
        return {fingerprint for (fingerprint,) in self._matching(query, among)}

    # --- requests --------------------------------------------------------------------------

    def request(self, request_id: int) -> RequestRow | None:
        return self.session.get(RequestRow, request_id)

    def request_by_fingerprint(self, fingerprint: str) -> RequestRow | None:
        return self.session.scalar(select(RequestRow).where(RequestRow.fingerprint == fingerprint))

    def requests_by_fingerprint_prefix(self, prefix: str) -> list[RequestRow]:
        query = select(RequestRow).where(RequestRow.fingerprint.startswith(prefix))
        return list(self.session.scalars(query.limit(2)))

    def all_requests(self) -> list[RequestRow]:
        return list(self.session.scalars(select(RequestRow).order_by(RequestRow.id)))

    def requests_with_public_key(self, fingerprint: str) -> list[RequestRow]:
        query = select(RequestRow).where(RequestRow.public_key_fingerprint == fingerprint)
        return list(self.session.scalars(query))

    # --- IP addresses ----------------------------------------------------------------------

    def ip_addresses(self, *, for_update: bool = False) -> list[IpAddressRow]:
        """Every address; ``for_update`` locks the rows (PostgreSQL: two removals at once
        must not both see the other's address as left; SQLite serialises writers anyway)."""
        query = select(IpAddressRow).order_by(IpAddressRow.id)
        return list(self.session.scalars(query.with_for_update() if for_update else query))

    def ip_address(self, address: str) -> IpAddressRow | None:
        return self.session.scalar(select(IpAddressRow).where(IpAddressRow.address == address))

    def ip_addresses_of(
        self, certificate_id: int, *, for_update: bool = False
    ) -> list[IpAddressRow]:
        """The addresses presenting the certificate; ``for_update`` locks them (PostgreSQL:
        an assignment committed meanwhile waits, so moves computed from them still hold)."""
        query = select(IpAddressRow).where(IpAddressRow.certificate_id == certificate_id)
        query = query.order_by(IpAddressRow.id)
        return list(self.session.scalars(query.with_for_update() if for_update else query))

    def reassign_addresses(self, from_certificate_id: int, to_certificate_id: int) -> int:
        result = self.session.execute(
            update(IpAddressRow)
            .where(IpAddressRow.certificate_id == from_certificate_id)
            .values(certificate_id=to_certificate_id)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    # --- settings --------------------------------------------------------------------------

    def setting(self, name: str, default: Any = None, *, for_update: bool = False) -> Any:
        """A setting's value; ``for_update`` locks its row (PostgreSQL: two read-modify-writes
        of one settings document at once would else lose one; SQLite has one writer). The
        row is made first when missing, so that two first saves at once queue on its lock
        instead of both inserting (one of them then failing on the key)."""
        if for_update:
            self.insert_unless_present(SettingRow, {"name": name, "value": default})
        row = self.session.get(SettingRow, name, with_for_update=for_update or None)
        return default if row is None else row.value

    def insert_unless_present(self, model: type[Base], values: dict[str, Any]) -> Any:
        """Insert a row unless one with the same unique key is there (INSERT ... ON CONFLICT
        DO NOTHING, so a concurrent insert never fails the transaction): the new row's
        primary key, or None when it was there."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        key = model.__mapper__.primary_key[0]
        statement = insert(model).values(**values).on_conflict_do_nothing().returning(key)
        # RETURNING, not rowcount: the driver may not say how many rows a statement wrote (-1)
        return self.session.execute(statement).scalar()

    def set_setting(self, name: str, value: Any) -> None:
        row = self.session.get(SettingRow, name)
        if row is None:
            self.session.add(SettingRow(name=name, value=value))
        else:
            row.value = value

    # --- helpers ---------------------------------------------------------------------------

    def _first_names(
        self, model: type[CertificateRow] | type[RequestRow], fingerprints: Sequence[str]
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        query = select(model.public_key_fingerprint, model.friendly_name).order_by(model.id)
        for fingerprint, name in self._matching(query, fingerprints):
            found.setdefault(fingerprint, name)
        return found

    def _matching(
        self, query: Select[str, *_Ts], values: Sequence[str]
    ) -> Iterator[Row[str, *_Ts]]:
        """The rows of ``query`` (from one table) whose first column is one of ``values``.

        Asked in chunks; but when a bulk import asks about more values than the table has
        rows (the first import into a new store), every row is read and filtered here:
        binding 10,000 values cost more than reading a few rows.
        """
        wanted = set(values)
        if len(wanted) > _CHUNK:
            table = query.get_final_froms()[0]
            rows = self.session.scalar(select(func.count()).select_from(table)) or 0
            if rows < len(wanted):
                yield from (row for row in self.session.execute(query) if row[0] in wanted)
                return
        column = query.selected_columns[0]
        for chunk in _chunks(sorted(wanted)):
            yield from self.session.execute(query.where(column.in_(chunk)))

    def _rows_where_in(self, model: type[RowT], column: Any, values: Sequence[str]) -> list[RowT]:
        rows: list[RowT] = []
        for chunk in _chunks(sorted(set(values))):
            rows.extend(self.session.scalars(select(model).where(column.in_(chunk))))
        return rows
