"""Queries for expiry notices: the (certificate, threshold) rows that make a notice go once.

Claims are compare-and-set statements, so that two senders (``serve`` workers, nodes,
``certgate notify``) racing for one notice cannot both win: a new notice is claimed by an
INSERT that does nothing on a conflict with the unique (certificate, threshold) pair, a failed
or abandoned one by an UPDATE whose WHERE names the state and claim it saw. Whoever's statement
changed a row holds the claim. Not a served table: writing it does not bump the revision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from certgate.store.models import AcmeOrderRow, CertificateRow, NoticeRow
from certgate.store.repository import Repository

SENDING, SENT, FAILED, SKIPPED = "sending", "sent", "failed", "skipped"


def certificates_expiring(
    repository: Repository, after: dt.datetime, before: dt.datetime
) -> list[CertificateRow]:
    """Certificates whose end of validity lies between ``after`` and ``before``."""
    query = select(CertificateRow).where(
        CertificateRow.not_after > after, CertificateRow.not_after <= before
    )
    return list(repository.session.scalars(query.order_by(CertificateRow.not_after)))


def renewed_certificates(repository: Repository) -> set[int]:
    """Certificates an ACME renewal replaced (their order is ``renewed_by`` another)."""
    query = select(AcmeOrderRow.certificate_id).where(
        AcmeOrderRow.renewed_by.is_not(None), AcmeOrderRow.certificate_id.is_not(None)
    )
    return {
        certificate_id for certificate_id in repository.session.scalars(query) if certificate_id
    }


def notices_of(repository: Repository, fingerprints: Sequence[str]) -> list[NoticeRow]:
    rows: list[NoticeRow] = []
    wanted = sorted(set(fingerprints))
    for start in range(0, len(wanted), 500):
        query = select(NoticeRow).where(
            NoticeRow.certificate_fingerprint.in_(wanted[start : start + 500])
        )
        rows.extend(repository.session.scalars(query))
    return rows


def claim_new(repository: Repository, values: dict[str, Any]) -> bool:
    """Insert a notice unless its (certificate, threshold) is there: True if inserted."""
    return repository.insert_unless_present(NoticeRow, values) is not None


def claim_again(
    repository: Repository,
    notice_id: int,
    seen_claim: str,
    claim: str,
    now: dt.datetime,
    abandoned_before: dt.datetime,
    ahead_after: dt.datetime,
) -> bool:
    """Take a failed notice, one whose sender has held it since ``abandoned_before``, or one
    in any state claimed after ``ahead_after`` (by a clock that was ahead), if nobody took it
    since it was read as ``seen_claim``. True if taken."""
    statement = (
        update(NoticeRow)
        .where(
            NoticeRow.id == notice_id,
            NoticeRow.claim == seen_claim,
            or_(
                NoticeRow.state == FAILED,
                (NoticeRow.state == SENDING) & (NoticeRow.claimed_at < abandoned_before),
                NoticeRow.claimed_at > ahead_after,
            ),
        )
        .values(state=SENDING, claim=claim, claimed_at=now, attempts=NoticeRow.attempts + 1)
        .returning(NoticeRow.id)
        .execution_options(synchronize_session=False)
    )
    return repository.session.execute(statement).first() is not None


def finish(
    repository: Repository,
    notice_id: int,
    claim: str,
    now: dt.datetime,
    error: str | None,
    partly: str | None = None,
) -> None:
    """Record how the send of a claim ended (sent, or failed with the relay's answer; sent
    with ``partly``, the recipients the relay refused, as its ``last_error``)."""
    statement = (
        update(NoticeRow)
        .where(NoticeRow.id == notice_id, NoticeRow.claim == claim)
        .values(
            state=FAILED if error else SENT,
            sent_at=None if error else now,
            last_error=error or partly,
        )
        .execution_options(synchronize_session=False)
    )
    repository.session.execute(statement)


def skip_superseded(repository: Repository, fingerprint: str, threshold: int) -> None:
    """A notice for ``threshold`` is going: this certificate's failed or pending notices for
    a larger threshold are "skipped", never retried (their claim is void: a sender still
    sending one does not record it failed again)."""
    statement = (
        update(NoticeRow)
        .where(
            NoticeRow.certificate_fingerprint == fingerprint,
            NoticeRow.threshold > threshold,
            NoticeRow.state.in_((FAILED, SENDING)),
        )
        .values(state=SKIPPED, claim="")
        .execution_options(synchronize_session=False)
    )
    repository.session.execute(statement)


def _remembered(forgotten_before: dt.datetime) -> ColumnElement[bool]:
    """Notices still of interest: their certificate is in the store and expired after
    ``forgotten_before`` (a check never takes the others again)."""
    present = exists().where(CertificateRow.fingerprint == NoticeRow.certificate_fingerprint)
    return (NoticeRow.not_after > forgotten_before) & present


def unsent(repository: Repository, forgotten_before: dt.datetime) -> list[tuple[NoticeRow, str]]:
    """Notices claimed but not sent: failed ones, and ones being sent (or abandoned); each
    with its certificate's friendly name now (the row keeps the one it had when claimed)."""
    query = (
        select(NoticeRow, CertificateRow.friendly_name)
        .join(CertificateRow, CertificateRow.fingerprint == NoticeRow.certificate_fingerprint)
        .where(NoticeRow.state.in_((FAILED, SENDING)), NoticeRow.not_after > forgotten_before)
    )
    found = repository.session.execute(query.order_by(NoticeRow.not_after))
    return [(row, friendly_name) for row, friendly_name in found]


def partly_sent(
    repository: Repository, forgotten_before: dt.datetime
) -> list[tuple[NoticeRow, str]]:
    """Notices sent while the relay refused some recipients (a sent row with an error), of
    certificates still stored, that no later (more urgent) notice of theirs has followed."""
    later = aliased(NoticeRow)
    followed = exists().where(
        later.certificate_fingerprint == NoticeRow.certificate_fingerprint,
        later.state == SENT,
        later.threshold < NoticeRow.threshold,
    )
    query = (
        select(NoticeRow, CertificateRow.friendly_name)
        .join(CertificateRow, CertificateRow.fingerprint == NoticeRow.certificate_fingerprint)
        .where(
            NoticeRow.state == SENT,
            NoticeRow.last_error.is_not(None),
            NoticeRow.not_after > forgotten_before,
            ~followed,
        )
    )
    found = repository.session.execute(query.order_by(NoticeRow.not_after))
    return [(row, friendly_name) for row, friendly_name in found]


def counts_by_state(repository: Repository, forgotten_before: dt.datetime) -> dict[str, int]:
    """How many notices of interest are in each state (for /metrics)."""
    query = (
        select(NoticeRow.state, func.count())
        .where(_remembered(forgotten_before))
        .group_by(NoticeRow.state)
    )
    return {state: count for state, count in repository.session.execute(query)}
