"""The tables. Display fields of a certificate are cached beside its DER (``info``) so that
listing 10,000 certificates never re-parses DER; warnings are never stored."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from certgate.limits import (
    AUDIT_ACTOR_MAX,
    AUDIT_SOURCE_MAX,
    AUDIT_TARGET_MAX,
    BOOT_ID_MAX,
    FRIENDLY_NAME_MAX,
    NODE_HOST_MAX,
    NODE_NAME_MAX,
)
from certgate.moments import utc


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A moment, written and read back in UTC on both backends: SQLite keeps no offset (it
    would keep another zone's wall time), PostgreSQL answers in its session's time zone (a
    server set to local time would put its hours on pages that say UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else utc(value)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        return None if value is None else utc(value)


#: A table whose ids people and other rows refer to: an id is never given twice (SQLite gives
#: the next row the highest id a deletion freed without it; migration 0015).
NEVER_REUSED_IDS: dict[str, Any] = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UtcDateTime(),
        dict[str, Any]: JSON,
    }


class KeyRow(Base):
    """A private key, sealed; found by the SHA-256 of its SubjectPublicKeyInfo."""

    __tablename__ = "private_keys"
    __table_args__ = NEVER_REUSED_IDS
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_key_fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    algorithm: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


#: A shared column's place: before each table's own columns, the order its migration made.
_FIRST = -1


class StoredDer:
    """What a certificate and a request are stored as: their DER, found by its SHA-256
    fingerprint, the name people gave it, and the public-key fingerprint that finds its key."""

    __table_args__ = NEVER_REUSED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=_FIRST)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True, sort_order=_FIRST)
    der: Mapped[bytes] = mapped_column(LargeBinary, sort_order=_FIRST)
    friendly_name: Mapped[str] = mapped_column(String(FRIENDLY_NAME_MAX), sort_order=_FIRST)
    public_key_fingerprint: Mapped[str] = mapped_column(String(64), index=True, sort_order=_FIRST)


class CertificateRow(StoredDer, Base):
    __tablename__ = "certificates"
    subject_name_hash: Mapped[str] = mapped_column(String(64), index=True)
    issuer_name_hash: Mapped[str] = mapped_column(String(64), index=True)
    #: The issuer chosen by signature check (a cache of pki.chain.choose_issuer).
    issuer_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificates.id", ondelete="SET NULL"), index=True
    )
    not_after: Mapped[dt.datetime] = mapped_column(index=True)
    is_ca: Mapped[bool] = mapped_column(Boolean)
    info: Mapped[dict[str, Any]] = mapped_column(JSON)
    chain_mode: Mapped[str] = mapped_column(String(16), default="automatic")
    #: Fingerprints of the manually specified chain, nearest issuer first.
    manual_chain: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    is_factory: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RequestRow(StoredDer, Base):
    __tablename__ = "certificate_requests"
    subject: Mapped[str] = mapped_column(Text)
    sans: Mapped[list[list[str]]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IpAddressRow(Base):
    """An address of the appliance; it always has a certificate (the factory one by default)."""

    __tablename__ = "ip_addresses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    certificate_id: Mapped[int] = mapped_column(
        ForeignKey("certificates.id", ondelete="RESTRICT"), index=True
    )
    #: The DNS names clients use to reach it (A-labels, in the order given; migration 0005).
    hostnames: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The node that serves it (``certgate serve --node NAME``; migration 0011), or None: a
    #: floating address, which every node binds (``IP_FREEBIND``) and whichever holds it serves.
    node: Mapped[str | None] = mapped_column(String(NODE_NAME_MAX), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SettingRow(Base):
    __tablename__ = "settings"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class RevisionRow(Base):
    """One row whose number grows with every committed change: listeners watch only it."""

    __tablename__ = "revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class AuditEventRow(Base):
    """One recorded change or use of a private key (``store/audit.py``). Append-only: the
    database refuses UPDATE and DELETE on this table (triggers, migration 0004)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    #: who: a username, ``token:<name>``, ``cli:<OS user>`` or ``appliance``
    actor: Mapped[str] = mapped_column(String(AUDIT_ACTOR_MAX), index=True)
    #: from where: the client's address, ``cli`` or ``appliance``
    source: Mapped[str] = mapped_column(String(AUDIT_SOURCE_MAX), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    #: what it was done to (a certificate's name and fingerprint, an address, a user)
    target: Mapped[str] = mapped_column(String(AUDIT_TARGET_MAX), default="")
    detail: Mapped[str] = mapped_column(Text)


class NoticeRow(Base):
    """One expiry notice: a certificate (by fingerprint, so a certificate deleted and imported
    again is not told about twice) and a threshold (days before expiry, 0: on expiry). The
    unique pair is the once-only rule: whoever inserts it first (a ``serve`` worker, another
    node, ``certgate notify``) is the one that sends (``service/notices.py``)."""

    __tablename__ = "expiry_notices"
    __table_args__ = (UniqueConstraint("certificate_fingerprint", "threshold"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_fingerprint: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[int] = mapped_column(Integer)
    #: sending (claimed), sent, failed (retried by the next check), skipped (a more urgent
    #: threshold was due first: one mail, not one per threshold crossed at once)
    state: Mapped[str] = mapped_column(String(16), index=True)
    #: who holds the claim (a random token) and since when: a claim older than the lease
    #: (its sender died mid-send) may be taken again
    claim: Mapped[str] = mapped_column(String(64), default="")
    claimed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_after: Mapped[dt.datetime] = mapped_column()
    friendly_name: Mapped[str] = mapped_column(String(FRIENDLY_NAME_MAX), default="")
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class UserRow(Base):
    """An account of the /appliance interface; the password only as an Argon2 hash."""

    __tablename__ = "users"
    __table_args__ = NEVER_REUSED_IDS
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # "admin" | "auditor"
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class SessionRow(Base):
    """A browser session; only the SHA-256 of its cookie value is stored."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LoginFailureRow(Base):
    """A failed login, once per username and once per client, kept for the throttle's
    window: every worker process of ``certgate serve`` counts the same failures."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class ApiTokenRow(Base):
    """An API token for automation; only the SHA-256 of the token is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSED_IDS
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(AUDIT_ACTOR_MAX))  # token:<name> too
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class AcmeAccountRow(Base):
    """The appliance's account with an ACME CA (RFC 8555): one row, the account in use.

    The account key is sealed like a private key (``service/acme_account.py``, its own associated
    data); the EAB HMAC key is used once, at registration, and never stored.
    """

    __tablename__ = "acme_accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    directory_url: Mapped[str] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    #: the CA's terms the administrator agreed to (its URL), when it has any
    terms_agreed: Mapped[str | None] = mapped_column(String(500), default=None)
    eab_kid: Mapped[str | None] = mapped_column(String(200), default=None)
    #: PEM roots trusted for a private ACME server's HTTPS (none: the system's)
    ca_bundle: Mapped[str | None] = mapped_column(Text, default=None)
    key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: the account's URL at the CA (its ``kid``) and its last registration document
    account_url: Mapped[str] = mapped_column(String(500))
    registration: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AcmeOrderRow(Base):
    """One certificate order placed with the ACME CA, whatever its outcome: its state, and
    the CA's error document verbatim when it failed."""

    __tablename__ = "acme_orders"
    __table_args__ = NEVER_REUSED_IDS
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    friendly_name: Mapped[str] = mapped_column(String(FRIENDLY_NAME_MAX))
    #: the identifiers (DNS names), in the order given
    domains: Mapped[list[str]] = mapped_column(JSON)
    key_spec: Mapped[str] = mapped_column(String(16))
    challenge: Mapped[str] = mapped_column(String(16))
    #: the addresses the issued certificate is assigned to
    assign: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: pending (placed, being validated), valid (issued and imported), invalid (the CA
    #: refused it), failed (it could not be completed: no answer, timeout, an import error)
    state: Mapped[str] = mapped_column(String(16), index=True)
    order_url: Mapped[str | None] = mapped_column(String(500), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    #: the CA's problem document (RFC 7807 JSON), verbatim
    error_document: Mapped[str | None] = mapped_column(Text, default=None)
    certificate_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificates.id", ondelete="SET NULL"), default=None
    )
    certificate_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    directory_url: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # --- renewal (migration 0008) -------------------------------------------------------
    #: the order whose certificate this one renewed, and the order that renewed this one's
    renewal_of: Mapped[int | None] = mapped_column(Integer, default=None)
    renewed_by: Mapped[int | None] = mapped_column(Integer, default=None)
    #: the lease: who renews this order's certificate now (a random token) and since when; a
    #: claim older than the lease (its holder died) may be taken again
    renewal_claim: Mapped[str | None] = mapped_column(String(64), default=None)
    renewal_claimed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: failed renewals in a row, when the next may be tried (backoff), the last one's error
    renewal_attempts: Mapped[int] = mapped_column(Integer, default=0)
    renewal_next_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    renewal_error: Mapped[str | None] = mapped_column(Text, default=None)
    # --- the CA's renewal information, ARI (migration 0013) -------------------------------
    #: when the CA suggests renewing the certificate (a moment picked in its suggested
    #: window), None if it offers no renewal information; and when it may be asked again
    #: (its ``Retry-After``): until then this answer stands
    renewal_suggested_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    renewal_info_next_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class AcmeChallengeRow(Base):
    """An HTTP-01 challenge being answered: ``certgate serve``'s plain HTTP listener answers
    ``/.well-known/acme-challenge/TOKEN`` with the key authorization, whichever process placed
    the order. Not a served table: writing it does not bump the revision."""

    __tablename__ = "acme_challenges"
    token: Mapped[str] = mapped_column(String(200), primary_key=True)
    key_authorization: Mapped[str] = mapped_column(String(500))
    order_id: Mapped[int] = mapped_column(
        ForeignKey("acme_orders.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AcmeTlsChallengeRow(Base):
    """A TLS-ALPN-01 challenge being answered (RFC 8737): ``certgate serve``'s TLS front end
    presents a certificate made from the key authorization to a client offering ALPN
    ``acme-tls/1`` with ``name`` as SNI (an IP address's reverse-mapping name), whichever
    process placed the order. A served table:
    the front end holds the challenges, so writing it bumps the revision and every serve (on
    every node) hands them over at once."""

    __tablename__ = "acme_tls_challenges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the identifier validated: a DNS name (lower-case A-label) or an IP address
    name: Mapped[str] = mapped_column(String(253))
    key_authorization: Mapped[str] = mapped_column(String(500))
    order_id: Mapped[int] = mapped_column(
        ForeignKey("acme_orders.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class NodeRow(Base):
    """A ``certgate serve`` that has run on this store, by its node name, and its heartbeat:
    what each of its listeners presented when it last wrote (``service/nodes.py``). Not a
    served table: a heartbeat bumps no revision."""

    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NODE_NAME_MAX), unique=True)
    version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column()
    last_seen: Mapped[dt.datetime] = mapped_column()
    #: seconds between two heartbeats of this node: it is alive while it keeps to them
    interval: Mapped[float] = mapped_column()
    #: set when the node stopped cleanly (SIGTERM); cleared by its next start
    stopped_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: [{address, port, state, fingerprint, error}] as the node's listeners reported them
    listeners: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: ``Sealer.key_id`` of the master key the node runs with (None: a node from before it
    #: was recorded): another than the store's means the node's key is stale
    master_key_id: Mapped[str | None] = mapped_column(String(64), default=None)
    #: the name of the host it runs on, and the boot id that tells hosts apart whatever their
    #: names (None: a node from before they were recorded)
    host: Mapped[str | None] = mapped_column(String(NODE_HOST_MAX), default=None)
    boot_id: Mapped[str | None] = mapped_column(String(BOOT_ID_MAX), default=None)
    #: its plain HTTP listeners (ACME http-01, the redirect), as ``listeners`` (None: a node
    #: from before they were recorded)
    http_listeners: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=list)


class MasterKeyRow(Base):
    """Which master key seals the store's secrets now: one row (id 1), changed by ``certgate
    key rotate`` in the transaction that re-seals them. Every node compares its own key with
    it (``service/master_key.py``). Not a served table."""

    __tablename__ = "master_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: 1 for the key ``certgate init`` made, one more at every rotation
    generation: Mapped[int] = mapped_column(Integer)
    #: ``Sealer.key_id`` of the current key; None until a node that holds it records it (a
    #: store from before this column: its key is then checked by opening a sealed row)
    key_id: Mapped[str | None] = mapped_column(String(64))
    #: when the current key was made (None: by init), and where a copy of it is: the
    #: "host:path" of the master.key that made or first recorded it
    changed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    made_at: Mapped[str | None] = mapped_column(String(1000), default=None)
    #: the keys it replaced: [{generation, key_id, retired_at}], oldest first
    retired: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
