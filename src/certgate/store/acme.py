"""Queries for ACME: the account row, the orders, the HTTP-01 answers ``certgate serve``
reads by token and the TLS-ALPN-01 challenges its front end answers. Only the last table is
served: an HTTP-01 answer is read when asked for, so publishing one must not make the
listeners re-read their plan; a TLS-ALPN-01 challenge is handed to the front end, so its
commit bumps the revision that every serve follows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select, update

from certgate.store.models import (
    AcmeAccountRow,
    AcmeChallengeRow,
    AcmeOrderRow,
    AcmeTlsChallengeRow,
)
from certgate.store.repository import Repository

#: The states of an order (``AcmeOrderRow.state``).
PENDING, VALID, INVALID, FAILED = "pending", "valid", "invalid", "failed"


def account(repository: Repository) -> AcmeAccountRow | None:
    """The account in use (one row; the newest if a race ever left two)."""
    query = select(AcmeAccountRow).order_by(AcmeAccountRow.id.desc()).limit(1)
    return repository.session.scalars(query).first()


def orders(repository: Repository, limit: int = 200) -> list[AcmeOrderRow]:
    """The newest orders first."""
    query = select(AcmeOrderRow).order_by(AcmeOrderRow.id.desc()).limit(limit)
    return list(repository.session.scalars(query))


def order(
    repository: Repository, order_id: int, *, for_update: bool = False
) -> AcmeOrderRow | None:
    """An order; ``for_update`` locks its row (PostgreSQL) for a change that depends on its
    state."""
    return repository.session.get(AcmeOrderRow, order_id, with_for_update=for_update or None)


def publish(repository: Repository, order_id: int, answers: Sequence[tuple[str, str]]) -> None:
    """Store the (token, key authorization) answers of an order for the HTTP listeners."""
    for token, key_authorization in answers:
        repository.session.merge(
            AcmeChallengeRow(token=token, key_authorization=key_authorization, order_id=order_id)
        )


def publish_tls(
    repository: Repository, order_id: int, challenges: Sequence[tuple[str, str]]
) -> None:
    """Store the (identifier, key authorization) TLS-ALPN-01 challenges of an order for the
    TLS front end (an identifier: a DNS name, or an IP address)."""
    for name, key_authorization in challenges:
        repository.add(
            AcmeTlsChallengeRow(name=name, key_authorization=key_authorization, order_id=order_id)
        )


def withdraw(repository: Repository, order_id: int) -> None:
    """An order's answers are no longer needed (it ended, either way)."""
    for table in (AcmeChallengeRow, AcmeTlsChallengeRow):
        statement = delete(table).where(table.order_id == order_id)
        repository.session.execute(statement.execution_options(synchronize_session=False))


def pending_since(repository: Repository, before: dt.datetime) -> list[int]:
    """The orders still pending that were placed before ``before``."""
    query = select(AcmeOrderRow.id).where(
        AcmeOrderRow.state == PENDING, AcmeOrderRow.created_at < before
    )
    return list(repository.session.scalars(query.order_by(AcmeOrderRow.id)))


def tls_challenges(repository: Repository) -> dict[str, str]:
    """Identifier (a DNS name or an IP address) -> key authorization of the TLS-ALPN-01
    challenges being answered; of two orders validating one identifier at once, the newer
    one's."""
    query = select(AcmeTlsChallengeRow.name, AcmeTlsChallengeRow.key_authorization)
    rows = repository.session.execute(query.order_by(AcmeTlsChallengeRow.id))
    return {name: key_authorization for name, key_authorization in rows}


def key_authorization(repository: Repository, token: str) -> str | None:
    """The answer for ``/.well-known/acme-challenge/TOKEN``, if an order is waiting for it."""
    query = select(AcmeChallengeRow.key_authorization).where(AcmeChallengeRow.token == token)
    return repository.session.scalars(query).first()


def latest_issued(repository: Repository, directory_url: str) -> int | None:
    """The newest certificate still in the store that an order to ``directory_url`` issued."""
    query = (
        select(AcmeOrderRow.certificate_id)
        .where(
            AcmeOrderRow.directory_url == directory_url,
            AcmeOrderRow.state == VALID,
            AcmeOrderRow.certificate_id.is_not(None),
        )
        .order_by(AcmeOrderRow.id.desc())
        .limit(1)
    )
    return repository.session.scalars(query).first()


def in_service(repository: Repository) -> list[AcmeOrderRow]:
    """The orders whose certificate is the latest of its line (issued, not renewed yet, still
    in the store): what renewal looks after."""
    query = select(AcmeOrderRow).where(
        AcmeOrderRow.state == VALID,
        AcmeOrderRow.renewed_by.is_(None),
        AcmeOrderRow.certificate_id.is_not(None),
    )
    return list(repository.session.scalars(query.order_by(AcmeOrderRow.id)))


def claim_renewal(
    repository: Repository,
    order_id: int,
    claim: str,
    now: dt.datetime,
    abandoned_before: dt.datetime,
    force: bool,
) -> bool:
    """Take the lease on renewing an order's certificate: nobody holds it (or its holder has
    held it since ``abandoned_before``), it was not renewed, and its backoff is over (unless
    ``force``). A compare-and-set UPDATE, so of two renewers (workers, nodes, ``certgate acme
    renew``) only one wins. True if taken."""
    conditions = [
        AcmeOrderRow.id == order_id,
        AcmeOrderRow.renewed_by.is_(None),
        or_(
            AcmeOrderRow.renewal_claim.is_(None),
            AcmeOrderRow.renewal_claimed_at < abandoned_before,
        ),
    ]
    if not force:
        conditions.append(
            or_(AcmeOrderRow.renewal_next_at.is_(None), AcmeOrderRow.renewal_next_at <= now)
        )
    statement = (
        update(AcmeOrderRow)
        .where(*conditions)
        .values(renewal_claim=claim, renewal_claimed_at=now)
        .returning(AcmeOrderRow.id)
        .execution_options(synchronize_session=False)
    )
    return repository.session.execute(statement).first() is not None


def end_renewal(repository: Repository, order_id: int, claim: str, **values: Any) -> None:
    """Release the lease held as ``claim``, recording how the renewal ended."""
    statement = (
        update(AcmeOrderRow)
        .where(AcmeOrderRow.id == order_id, AcmeOrderRow.renewal_claim == claim)
        .values(renewal_claim=None, renewal_claimed_at=None, **values)
        .execution_options(synchronize_session=False)
    )
    repository.session.execute(statement)


def record_renewal_info(
    repository: Repository,
    order_id: int,
    suggested_at: dt.datetime | None,
    next_at: dt.datetime,
) -> None:
    """The CA's last answer about renewing an order's certificate (ARI), and when to ask
    again."""
    statement = (
        update(AcmeOrderRow)
        .where(AcmeOrderRow.id == order_id)
        .values(renewal_suggested_at=suggested_at, renewal_info_next_at=next_at)
        .execution_options(synchronize_session=False)
    )
    repository.session.execute(statement)


def failing_renewals(repository: Repository) -> list[AcmeOrderRow]:
    """Certificates in service whose last renewal failed (for Status)."""
    query = select(AcmeOrderRow).where(
        AcmeOrderRow.state == VALID,
        AcmeOrderRow.renewed_by.is_(None),
        AcmeOrderRow.renewal_error.is_not(None),
    )
    return list(repository.session.scalars(query.order_by(AcmeOrderRow.id)))
