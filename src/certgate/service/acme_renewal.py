"""Security > ACME, the renewals: a certificate in service ordered again when it is due (the
CA's suggested time, ARI, else a third of its validity left), under a lease so that one
renewer of several renews it, with backoff after a failure, which is mailed to the
administrators.

Talking to the CA blocks (seconds to a minute): the faces call these on a thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certgate.errors import (
    AcmeError,
    CertgateError,
    DamagedRowError,
    NotFoundError,
    internal_error,
)
from certgate.service import email, smtp
from certgate.service.acme_account import unseal_account_key
from certgate.service.acme_orders import (
    ChallengeType,
    OrderView,
    end_abandoned_orders,
    order_view,
    place_order,
    responder_problem,
)
from certgate.service.appliance import Appliance
from certgate.service.periodic import Periodic, interval_from
from certgate.service.stored import stored_certificate
from certgate.store import acme as queries
from certgate.store.audit import APPLIANCE, Actor
from certgate.store.models import AcmeOrderRow
from certgate.store.repository import Repository

log = logging.getLogger("certgate.acme")
#: A renewer that has held a lease this long has died: another may take it.
RENEWAL_LEASE = dt.timedelta(minutes=10)
#: After a failed renewal: 5 minutes, doubled after each failure, at most a day; a CA's
#: ``rateLimited`` waits at least 3 hours (no retry storm against its limits).
BACKOFF_FIRST = dt.timedelta(minutes=5)
BACKOFF_MAX = dt.timedelta(days=1)
RATE_LIMITED_BACKOFF = dt.timedelta(hours=3)


@dataclass(frozen=True)
class RenewalOutcome:
    """What one renewal check did for one certificate in service."""

    order_id: int
    friendly_name: str
    certificate_id: int | None
    state: str  # renewed, failed, not-due, busy (another renewer holds it), backoff
    renewed_by: OrderView | None = None
    error: str | None = None


def renewal_due(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime) -> bool:
    """When a third of the validity is left (Let's Encrypt's advice; certbot's default for
    90-day certificates is 30 days before expiry)."""
    return now >= not_after - (not_after - not_before) / 3


def backoff(attempts: int, rate_limited: bool) -> dt.timedelta:
    delay: dt.timedelta = min(BACKOFF_FIRST * 2 ** min(max(attempts - 1, 0), 20), BACKOFF_MAX)
    return max(delay, RATE_LIMITED_BACKOFF) if rate_limited else delay


def renew(
    app: Appliance,
    certificate_id: int | None = None,
    *,
    force: bool = False,
    actor: Actor = APPLIANCE,
    now: dt.datetime | None = None,
) -> list[RenewalOutcome]:
    """Renew the certificates in service that are due (every one with ``force``), or only
    ``certificate_id``'s: each under a lease in the store, so that of several renewers
    (workers, nodes, this command beside ``serve``) one renews it, once. The renewed
    certificate replaces the old one on every address it secured, in one transaction."""
    moment = now or app.now()
    with app.store.reading() as repository:
        rows = queries.in_service(repository)
        if certificate_id is not None:
            rows = [row for row in rows if row.certificate_id == certificate_id]
            if not rows:
                raise NotFoundError(
                    f"certificate {certificate_id} was not issued by an ACME order still in "
                    "service ('certgate acme orders' lists them)"
                )
        validity = {
            row.id: _validity(repository, row.certificate_id)
            for row in rows
            if row.certificate_id is not None
        }
    outcomes = []
    for row in rows:
        found = validity.get(row.id)
        if found is None:
            continue
        if found == DAMAGED:
            due = True
        else:
            not_before, not_after, der = found
            suggested = None if force else _suggested_renewal(app, row, der, not_after, moment)
            due = moment >= suggested if suggested else renewal_due(not_before, not_after, moment)
        if not force and not due:
            outcomes.append(
                RenewalOutcome(row.id, row.friendly_name, row.certificate_id, "not-due")
            )
            continue
        outcomes.append(_renew_one(app, row, force, actor))
    return outcomes


def failing_renewals(app: Appliance) -> list[OrderView]:
    """Certificates in service whose last renewal failed (Status, the ACME page)."""
    with app.store.reading() as repository:
        return [order_view(row) for row in queries.failing_renewals(repository)]


#: A certificate in service whose stored DER no longer parses: due (its renewal replaces it).
DAMAGED: Final = "damaged"


def _validity(
    repository: Repository, certificate_id: int | None
) -> tuple[dt.datetime, dt.datetime, bytes] | Literal["damaged"] | None:
    """None: the order's certificate is gone. A damaged one is due (its renewal replaces it)."""
    certificate = repository.certificate(certificate_id) if certificate_id else None
    if certificate is None:
        return None
    try:
        parsed = stored_certificate(certificate)
    except DamagedRowError as error:
        log.warning("renewing it: %s", error)
        return DAMAGED
    return parsed.not_valid_before_utc, parsed.not_valid_after_utc, certificate.der


def _suggested_renewal(
    app: Appliance, row: AcmeOrderRow, der: bytes, not_after: dt.datetime, now: dt.datetime
) -> dt.datetime | None:
    """The CA's suggested renewal time (ARI) where it offers one for the account's directory,
    else None: a third of the validity left decides. The CA is asked again only once its last
    answer's ``Retry-After`` has passed (the answer is kept in the store until then, for every
    renewer). A CA that cannot say now is not a failure of the renewal: its last suggestion
    stands (the one shown), the rule deciding where it made none, and it is asked again at the
    next check. A suggestion at or after the certificate's expiry is not followed into the
    lapse, nor kept to be shown: the rule decides."""
    from certgate.service import acme_ca

    with app.store.reading() as repository:
        account = queries.account(repository)
        if account is None or account.directory_url != row.directory_url:
            return None  # another CA now: what the order's CA said no longer counts
        asked_at = row.renewal_info_next_at
        if asked_at is not None and now < asked_at:
            return _before(not_after, row.renewal_suggested_at)
        key_pem = unseal_account_key(repository, app.sealer, account)
        server = acme_ca.Server(account.directory_url, account.ca_bundle)
        account_url, document = account.account_url, dict(account.registration)
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    try:
        info = acme_ca.renewal_info(server, key_pem, account_url, document, pem, now)
    except CertgateError as error:
        log.info("no renewal information for %r: %s", row.friendly_name, error)
        return _before(not_after, row.renewal_suggested_at)
    if info.malformed is not None:  # an earlier suggestion no longer stands
        log.info("no renewal information for %r: %s", row.friendly_name, info.malformed)
    suggested = _before(not_after, info.suggested)
    if suggested is None and info.suggested is not None:
        log.info(
            "the CA suggests renewing %r at %s, once it has expired: a third of its validity "
            "left decides",
            row.friendly_name,
            f"{info.suggested.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC",
        )
    with app.store.transaction() as repository:
        queries.record_renewal_info(repository, row.id, suggested, info.next_check)
    if suggested is not None:
        log.info(
            "the CA suggests renewing %r at %s (asked again from %s)",
            row.friendly_name,
            f"{suggested:%Y-%m-%d %H:%M:%S} UTC",
            f"{info.next_check.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC",
        )
    return suggested


def _before(not_after: dt.datetime, suggested: dt.datetime | None) -> dt.datetime | None:
    """The suggestion where it comes before the expiry, else None (followed, the
    certificate would lapse first)."""
    return suggested if suggested is not None and suggested < not_after else None


def _renew_one(app: Appliance, row: AcmeOrderRow, force: bool, actor: Actor) -> RenewalOutcome:
    """Renew under the lease, which dates from now, when it is taken: the renewals before
    this one in a check may have taken longer than a lease, and another renewer would take
    one dated from the check's start as lapsed (the certificate renewed twice)."""
    now = app.now()
    claim = secrets.token_hex(16)
    with app.store.transaction() as repository:
        taken = queries.claim_renewal(repository, row.id, claim, now, now - RENEWAL_LEASE, force)
    if not taken:
        state = "backoff" if row.renewal_next_at and row.renewal_claim is None else "busy"
        return RenewalOutcome(row.id, row.friendly_name, row.certificate_id, state)
    try:
        renewed = place_order(
            app,
            name=row.friendly_name,
            domains=row.domains,
            key=row.key_spec,
            challenge=row.challenge,
            actor=actor,
            renewal_of=row.id,
        )
    except CertgateError as error:
        return _failed(app, row, claim, now, error, str(error))
    except Exception as error:  # a damaged row or a fault: confined to this one renewal
        log.exception("renewal of %r (order %d) failed", row.friendly_name, row.id)
        return _failed(app, row, claim, now, error, internal_error(error))
    with app.store.transaction() as repository:
        queries.end_renewal(
            repository, row.id, claim, renewal_attempts=0, renewal_next_at=None, renewal_error=None
        )
    log.info(
        "renewed %r: order %d, certificate %s",
        row.friendly_name,
        renewed.id,
        renewed.certificate_id,
    )
    return RenewalOutcome(row.id, row.friendly_name, row.certificate_id, "renewed", renewed)


def _failed(
    app: Appliance,
    row: AcmeOrderRow,
    claim: str,
    now: dt.datetime,
    error: Exception,
    said: str,
) -> RenewalOutcome:
    """Record the failure with the next try backed off (the CA's Retry-After honoured), end
    the lease, tell the administrators."""
    attempts = (row.renewal_attempts or 0) + 1
    limited = isinstance(error, AcmeError) and "rateLimited" in (error.document or "")
    next_at = now + backoff(attempts, limited)
    if isinstance(error, AcmeError) and error.retry_after is not None:
        next_at = max(next_at, error.retry_after)
    with app.store.transaction() as repository:
        queries.end_renewal(
            repository,
            row.id,
            claim,
            renewal_attempts=attempts,
            renewal_next_at=next_at,
            renewal_error=said,
        )
    log.error("renewal of %r (order %d) failed: %s", row.friendly_name, row.id, said)
    _mail_failure(app, row, said, attempts, next_at)
    return RenewalOutcome(row.id, row.friendly_name, row.certificate_id, "failed", error=said)


def _mail_failure(
    app: Appliance, row: AcmeOrderRow, error: str, attempts: int, next_at: dt.datetime
) -> None:
    """Tell the administrators, when Email Configuration exists (a failure to mail is logged:
    the renewal's own failure is recorded already)."""
    try:
        with app.store.reading() as repository:
            settings, relay = email.read_relay(repository, app.sealer)
        if not settings.configured:
            return
        body = (
            f"certgate could not renew the certificate {row.friendly_name!r} "
            f"({', '.join(row.domains)}) from {row.directory_url}.\n\n"
            f"Reason: {error}\n\n"
            f"This was failure {attempts} in a row; the next try is at "
            f"{next_at:%Y-%m-%d %H:%M} UTC ('certgate acme renew {row.certificate_id} --force' "
            "tries now). Security > ACME and Status show it too.\n"
        )
        subject = f"certgate: ACME renewal of {row.friendly_name!r} failed"
        smtp.send(relay, email.message(settings, subject, body), email.SEND_TIMEOUT)
    except CertgateError as mail_error:
        log.error("the renewal failure of %r was not mailed: %s", row.friendly_name, mail_error)


#: How often ``certgate serve`` checks for certificates due (``$CERTGATE_RENEWAL_INTERVAL``
#: may ask for more often).
RENEWAL_INTERVAL = 3600.0
RENEWAL_INTERVAL_ENV = "CERTGATE_RENEWAL_INTERVAL"
#: How long after its start ``certgate serve`` may take to open its HTTP listener before a
#: due renewal is tried anyway (and fails, saying why).
STARTUP_GRACE = 60.0


class RenewalSchedule(Periodic):
    """``certgate serve``'s renewal check, on a thread of its own in one process (the first
    worker); the leases keep every renewal to one renewer even so."""

    def __init__(self, app: Appliance) -> None:
        super().__init__(
            self._check,
            "certgate-acme-renewal",
            "ACME renewals not checked",
            interval_from(RENEWAL_INTERVAL_ENV, RENEWAL_INTERVAL),
        )
        self.app = app
        self._started = time.monotonic()

    def _check(self) -> None:
        """While the serve starting beside it has not opened the listeners its certificates'
        challenges need yet, a renewal would fail (and be mailed) for nothing: wait for them,
        but not for ever (an HTTP port that is not set must show as a failed renewal)."""
        end_abandoned_orders(self.app)
        starting = time.monotonic() - self._started < STARTUP_GRACE
        if starting:
            with self.app.store.reading() as repository:
                kinds = {ChallengeType(row.challenge) for row in queries.in_service(repository)}
            if any(responder_problem(self.app, kind) is not None for kind in kinds):
                return
        renew(self.app)
