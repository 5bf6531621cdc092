"""Queries for ACME: the account row, the orders, and the HTTP-01 answers ``certgate serve``
reads by token. None of these tables is served: writing them does not bump the revision
(an answer published while an order runs must not make the listeners re-read their plan)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select

from certgate.store.models import AcmeAccountRow, AcmeChallengeRow, AcmeOrderRow
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


def order(repository: Repository, order_id: int) -> AcmeOrderRow | None:
    return repository.session.get(AcmeOrderRow, order_id)


def publish(repository: Repository, order_id: int, answers: Sequence[tuple[str, str]]) -> None:
    """Store the (token, key authorization) answers of an order for the HTTP listeners."""
    for token, key_authorization in answers:
        repository.session.merge(
            AcmeChallengeRow(token=token, key_authorization=key_authorization, order_id=order_id)
        )


def withdraw(repository: Repository, order_id: int) -> None:
    """An order's answers are no longer needed (it ended, either way)."""
    statement = delete(AcmeChallengeRow).where(AcmeChallengeRow.order_id == order_id)
    repository.session.execute(statement.execution_options(synchronize_session=False))


def key_authorization(repository: Repository, token: str) -> str | None:
    """The answer for ``/.well-known/acme-challenge/TOKEN``, if an order is waiting for it."""
    query = select(AcmeChallengeRow.key_authorization).where(AcmeChallengeRow.token == token)
    return repository.session.scalars(query).first()
