"""The audit trail: who changed what, from where, and every use of a private key.

Append-only: this module offers no way to change or remove a recorded event, and the
database refuses UPDATE and DELETE on ``audit_events`` (triggers, migration 0004).
Recording an event never bumps the revision: it changes nothing the listeners serve.
Never put a secret (password, passphrase, key, token value) in an event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Mapped

from certgate.limits import AUDIT_ACTOR_MAX, AUDIT_SOURCE_MAX, AUDIT_TARGET_MAX
from certgate.store.models import AuditEventRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Actor:
    """Who acts and from where: a username, ``token:<name>`` or ``cli:<OS user>``; a
    client address, ``cli``, or ``appliance`` for the appliance's own work."""

    name: str
    source: str


#: The appliance itself (first start; later its renewals and ACME orders).
APPLIANCE = Actor("appliance", "appliance")


class AuditAction(StrEnum):
    """Every action the trail records; one place, so that faces can offer them as filters."""

    APPLIANCE_INIT = "appliance.init"
    CERTIFICATE_CREATE = "certificate.create"
    CERTIFICATE_DELETE = "certificate.delete"
    CERTIFICATE_RENAME = "certificate.rename"
    CERTIFICATE_CHAIN = "certificate.chain"
    CERTIFICATE_REPLACE = "certificate.replace"  # every address of one moved to another
    CERTIFICATE_EXPORT = "certificate.export"
    REQUEST_CREATE = "request.create"
    REQUEST_DELETE = "request.delete"
    IMPORT = "import"
    ADDRESS_ADD = "address.add"
    ADDRESS_REMOVE = "address.remove"
    ADDRESS_ASSIGN = "address.assign"
    ADDRESS_HOSTNAMES = "address.hostnames"
    ADDRESS_NODE = "address.node"  # pinned to a node, or made floating
    NODE_REMOVE = "node.remove"  # a stopped or lost node forgotten
    TLS_UPDATE = "tls.update"
    EMAIL_UPDATE = "email.update"
    ACME_ACCOUNT = "acme.account"  # the ACME CA account registered or changed
    ACME_ORDER = "acme.order"  # an ACME order placed, and how it ended
    USER_CREATE = "user.create"
    USER_DELETE = "user.delete"
    USER_PASSWORD = "user.password"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    LOGIN = "session.login"
    LOGIN_FAILED = "session.login-failed"
    LOGOUT = "session.logout"
    APPLIANCE_BACKUP = "appliance.backup"  # every sealed key and the master key, encrypted
    APPLIANCE_RESTORE = "appliance.restore"  # recorded in the restored store, from which file
    MASTER_KEY_ROTATE = "master-key.rotate"  # every sealed secret re-sealed with a new key
    SUPPORT_PACKAGE = "appliance.support-package"  # certificates and status, no key
    # Uses of a private key (see record_key_use).
    KEY_EXPORT = "key.export"
    KEY_SERVE = "key.serve"
    KEY_SIGN_REQUEST = "key.sign-request"  # a renewal request signed with a certificate's key


#: The actions that use a private key. ACME orders and renewals add theirs here.
KEY_USES = frozenset({AuditAction.KEY_EXPORT, AuditAction.KEY_SERVE, AuditAction.KEY_SIGN_REQUEST})


def record(
    session: Session, actor: Actor, action: AuditAction, target: str, detail: str = ""
) -> None:
    """Append one event to the transaction of ``session``: it commits with the change it
    describes, or not at all."""
    session.add(
        AuditEventRow(
            actor=actor.name[:AUDIT_ACTOR_MAX],
            source=actor.source[:AUDIT_SOURCE_MAX],
            action=str(action),
            target=target[:AUDIT_TARGET_MAX],
            detail=detail,
        )
    )


def record_key_use(
    session: Session,
    actor: Actor,
    use: AuditAction,
    certificate_name: str,
    public_key_fingerprint: str,
    detail: str = "",
) -> None:
    """The hook for every use of a private key (an export with the key, serving it on an
    address; ACME orders and renewals later): the target names the certificate and the
    key by its public-key fingerprint, never the key."""
    if use not in KEY_USES:
        raise ValueError(f"{use} is not a use of a private key")
    record(session, actor, use, f"{certificate_name} (key {public_key_fingerprint})", detail)


def certificate_target(name: str, fingerprint: str) -> str:
    """How an event names a certificate or request: its name and SHA-256 fingerprint."""
    return f"{name} ({fingerprint})"


@dataclass(frozen=True)
class AuditFilter:
    """What the Audit Log shows: each given field narrows it. ``actor`` and ``target`` match
    any part (case-insensitive), ``action`` matches exactly or, ending in ``.``, a family;
    ``since`` is inclusive and ``until`` exclusive; ``before`` is an event id (the pages)."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    before: int | None = None


def events(session: Session, wanted: AuditFilter, limit: int) -> list[AuditEventRow]:
    """The newest ``limit`` events that match, newest first."""
    query = _filtered(select(AuditEventRow), wanted)
    query = query.order_by(AuditEventRow.id.desc()).limit(limit)
    return list(session.scalars(query))


def _filtered(
    query: Select[tuple[AuditEventRow]], wanted: AuditFilter
) -> Select[tuple[AuditEventRow]]:
    if wanted.actor:
        query = query.where(_contains(AuditEventRow.actor, wanted.actor))
    if wanted.action:
        if wanted.action.endswith("."):
            query = query.where(AuditEventRow.action.startswith(wanted.action, autoescape=True))
        else:
            query = query.where(AuditEventRow.action == wanted.action)
    if wanted.target:
        query = query.where(_contains(AuditEventRow.target, wanted.target))
    if wanted.since is not None:
        query = query.where(AuditEventRow.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEventRow.at < wanted.until)
    if wanted.before is not None:
        query = query.where(AuditEventRow.id < wanted.before)
    return query


def _contains(column: Mapped[str], text: str) -> ColumnElement[bool]:
    return func.lower(column).contains(text.lower(), autoescape=True)
