"""Expiry notices: one mail per certificate per threshold crossed (30, 14, 7 and 1 days before
expiry and on expiry by default, ``email.notice_days``), to the administrators, never twice.

A reconciler: each check reads what is due from the store, claims each notice, sends it, and
records how it went. ``certgate serve`` checks hourly (one process: the first worker, on a
thread of its own); ``certgate notify`` checks once.

Once-only is claim-then-send. A notice is claimed by inserting its (certificate, threshold)
row, which the unique pair lets only one sender do (``store/notices.py``), and committed
before the mail goes; the send then records "sent" or "failed". The other order,
send-then-record, lets two senders that check at the same moment (two workers, two nodes, a
cron ``certgate notify`` beside ``serve``) both send before either records, which happens at
every start of ``serve --workers N`` beside a timer; claim-then-send never sends twice. What
it gives up: a sender that dies between its claim and its record leaves the notice "sending";
after ``CLAIM_LEASE`` (longer than any send can take) the next check takes it again, so only
a crash in the middle of a send can make that one mail go twice, or late. A failed send
(relay refused or down) is recorded "failed" with the relay's answer and taken again by the
next check; ``unsent_notices`` lists them for Status > Diagnostic Status. When a more urgent
notice of the certificate is claimed, its failed ones are recorded "skipped". A check's first
send the relay fails (not one message it refused) is the answer for the rest of it: the
notices after it are recorded failed with that answer, not sent each to a relay that is down,
silent (the timeout for each: hours for a large import) or asking to be left alone ("421 try
again later").

A certificate that has crossed several thresholds at its first check (imported 5 days
before it expires) gets one mail for the most urgent; the others are recorded "skipped".
Certificates that expired more than ``FORGOTTEN_AFTER`` ago get none: an old root kept for a
chain, or a certificate imported long expired, is history, not news. Nor does one an ACME
renewal replaced while no address presents it: its successor is told about.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from email.message import EmailMessage

from certgate.errors import MailError, MessageRefusedError
from certgate.pki.diagnostics import format_time
from certgate.service import email, smtp
from certgate.service.appliance import Appliance
from certgate.service.periodic import Periodic, interval_from
from certgate.service.views import RowInfoCache, chain_rows
from certgate.store import notices as store
from certgate.store.models import CertificateRow, NoticeRow
from certgate.store.repository import Repository
from certgate.text import visible

log = logging.getLogger("certgate.notices")

#: How often ``certgate serve`` checks (the issue: at least hourly); the environment may
#: ask for more often (seconds, at least 0.1), never less.
CHECK_INTERVAL = 3600.0
INTERVAL_ENV = "CERTGATE_NOTICE_INTERVAL"
#: How long a claim may be held before another check takes it again (its sender died):
#: far longer than a send can take (a few steps of ``email.SEND_TIMEOUT`` each).
CLAIM_LEASE = dt.timedelta(minutes=10)
FORGOTTEN_AFTER = dt.timedelta(days=30)
#: A notice claimed more than this after now was claimed by a clock that was ahead (a dead
#: RTC battery, a bad NTP answer, another node's clock): it does not count as sent, and is
#: taken again when due by this clock (else one check made by a clock a month ahead, which
#: found every certificate expired, would silence every real notice).
CLOCK_SLACK = dt.timedelta(hours=1)
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Notice:
    """One notice: due, being sent, sent, or failed (with the relay's answer)."""

    fingerprint: str
    friendly_name: str
    threshold: int  # days before expiry; 0: on expiry
    not_after: dt.datetime
    state: str  # due, sending, sent, failed
    attempts: int = 0
    error: str | None = None

    @property
    def when(self) -> str:
        return "on expiry" if self.threshold == 0 else f"{self.threshold} day(s) before expiry"


@dataclass(frozen=True)
class CheckResult:
    configured: bool
    sent: list[Notice]
    failed: list[Notice]
    #: due but not sent: email is not configured
    waiting: list[Notice]


@dataclass(frozen=True)
class _Due:
    row: CertificateRow
    threshold: int
    also_crossed: tuple[int, ...]
    presented_on: tuple[str, ...]
    existing: NoticeRow | None

    def notice(self, state: str, error: str | None = None) -> Notice:
        attempts = (self.existing.attempts if self.existing else 0) + 1
        return Notice(
            self.row.fingerprint,
            self.row.friendly_name,
            self.threshold,
            self.row.not_after,
            state,
            attempts,
            error,
        )


def check(app: Appliance, timeout: float = email.SEND_TIMEOUT) -> CheckResult:
    """Send every notice that is due and nobody else holds; one mail per certificate."""
    now = app.now()
    with app.store.reading() as repository:
        settings, relay = email.read_relay(repository, app.sealer)
        due = _due(repository, settings.notice_days, now)
        retired = _retired(repository, now)
    if retired:  # never taken again: not shown as failed for ever either
        with app.store.transaction() as repository:
            for fingerprint in retired:
                store.skip_superseded(repository, fingerprint, -1)
    if not settings.configured:
        return CheckResult(False, [], [], [item.notice("due") for item in due])
    sent: list[Notice] = []
    failed: list[Notice] = []
    infos = RowInfoCache()
    refused: str | None = None  # the relay's answer to the first send it failed (not a message)
    for item in due:
        claim = _claim(app, item)
        if claim is None:
            continue  # another sender has it
        if refused is not None:  # the others would fail so too: not one connection each
            outcome = _Outcome(refused, every=True)
        else:
            outcome = _send(relay, _mail(settings, item, infos, now), timeout)
            refused = outcome.error if outcome.every else None
        error = outcome.error
        _finish(app, item, claim, error, outcome.partly)
        if error is not None:
            failed.append(item.notice("failed", error))
            log.warning(
                "expiry notice for %r (%s) not sent: %s",
                item.row.friendly_name,
                item.notice("failed").when,
                error,
            )
        else:
            sent.append(item.notice("sent"))
            log.info(
                "expiry notice for %r (%s) sent to %s",
                item.row.friendly_name,
                item.notice("sent").when,
                ", ".join(settings.to_addresses),
            )
    return CheckResult(True, sent, failed, [])


@dataclass(frozen=True)
class _Outcome:
    """How a send went: ``error`` when it did not (``every``: every other mail would fail so
    too: the relay, not this message); ``partly``: it went, but the relay refused these
    recipients (sent again, it would reach the others twice)."""

    error: str | None = None
    every: bool = False
    partly: str | None = None


def _send(relay: smtp.Relay, mail: EmailMessage, timeout: float) -> _Outcome:
    """Any fault fails the notice rather than leave its claim "sending" (sent again at every
    lease); a fault that is not a ``MailError`` is named by its type only: its text could
    quote the password."""
    try:
        refused = smtp.send(relay, mail, timeout)
    except MailError as error:
        return _Outcome(str(error), every=not isinstance(error, MessageRefusedError))
    except Exception as error:
        return _Outcome(f"mail to the relay {relay.where} failed: {type(error).__name__} (a fault)")
    if not refused:
        return _Outcome()
    said = str(smtp.refusal(relay, refused))
    log.warning("%s (the other recipients got the notice)", said)
    return _Outcome(partly=said)


def unsent_notices(app: Appliance, *, include_due: bool = True) -> list[Notice]:
    """Notices not sent: failed (retried at the next check; Diagnostic Status shows these),
    being sent, and (``include_due``) due while email is not configured. Not those a check
    never takes again: of a deleted certificate, or one expired over ``FORGOTTEN_AFTER`` ago
    (a failed one that a more urgent notice superseded is recorded "skipped")."""
    now = app.now()
    with app.store.reading() as repository:
        settings = email.read_settings(repository)
        found = [
            _recorded(row, friendly_name)
            for row, friendly_name in store.unsent(repository, now - FORGOTTEN_AFTER)
        ]
        if include_due and not settings.configured:
            found += [item.notice("due") for item in _due(repository, settings.notice_days, now)]
    return found


def partly_sent_notices(app: Appliance) -> list[Notice]:
    """Notices that went, but not to every administrator (the relay refused some: a typo in
    an address loses every notice), while no later notice of the certificate went; their
    ``error`` names who was refused and why."""
    with app.store.reading() as repository:
        return [
            _recorded(row, friendly_name)
            for row, friendly_name in store.partly_sent(repository, app.now() - FORGOTTEN_AFTER)
        ]


def _recorded(row: NoticeRow, friendly_name: str) -> Notice:
    """A stored notice, named as its certificate is named now."""
    return Notice(
        row.certificate_fingerprint,
        friendly_name,
        row.threshold,
        row.not_after,
        row.state,
        row.attempts,
        row.last_error,
    )


def _due(repository: Repository, days: tuple[int, ...], now: dt.datetime) -> list[_Due]:
    """The notices due now, certificates that addresses present first, soonest first."""
    if not days:
        return []
    rows = store.certificates_expiring(
        repository, now - FORGOTTEN_AFTER, now + dt.timedelta(days=max(days))
    )
    if not rows:
        return []
    records: dict[str, list[NoticeRow]] = {}
    for record in store.notices_of(repository, [row.fingerprint for row in rows]):
        records.setdefault(record.certificate_fingerprint, []).append(record)
    ahead = now + CLOCK_SLACK
    presented = _presented_on(repository)
    replaced = store.renewed_certificates(repository)
    due: list[_Due] = []
    for row in rows:
        if row.id in replaced and row.id not in presented:
            continue  # renewed: its successor is the one that will expire
        not_after = row.not_after
        crossed = sorted(d for d in days if now >= not_after - d * _DAY)
        if not crossed:
            continue
        threshold, recorded = crossed[0], records.get(row.fingerprint, [])
        kept = [r for r in recorded if r.claimed_at <= ahead]
        if any(r.state == store.SENT and r.threshold <= threshold for r in kept):
            continue  # as urgent a notice went already
        existing = next((r for r in recorded if r.threshold == threshold), None)
        if existing is not None and existing.claimed_at <= ahead and not _takeable(existing, now):
            continue
        others = tuple(d for d in crossed[1:] if all(r.threshold != d for r in kept))
        due.append(_Due(row, threshold, others, tuple(presented.get(row.id, ())), existing))
    due.sort(key=lambda item: (not item.presented_on, item.row.not_after))
    return due


def _retired(repository: Repository, now: dt.datetime) -> set[str]:
    """Fingerprints of the certificates ``_due`` passes over as renewed (on no address) that
    have a notice failed or being sent: it is recorded "skipped"."""
    replaced = store.renewed_certificates(repository) - set(_presented_on(repository))
    if not replaced:
        return set()
    fingerprints = {row.fingerprint for row in repository.certificates_by_id(replaced).values()}
    unsent = store.unsent(repository, now - FORGOTTEN_AFTER)
    return {row.certificate_fingerprint for row, _ in unsent} & fingerprints


def _takeable(record: NoticeRow, now: dt.datetime) -> bool:
    if record.state == store.FAILED:
        return True
    return record.state == store.SENDING and record.claimed_at < now - CLAIM_LEASE


def _presented_on(repository: Repository) -> dict[int, list[str]]:
    """Certificate id -> the addresses that present it, as their certificate or in its
    chain ("192.0.2.10 (in the chain of 'site')")."""
    by_certificate: dict[int, list[str]] = {}
    for address in repository.ip_addresses():
        by_certificate.setdefault(address.certificate_id, []).append(address.address)
    presented: dict[int, list[str]] = {}
    for certificate_id, addresses in by_certificate.items():
        row = repository.certificate(certificate_id)
        if row is None:
            continue
        presented.setdefault(row.id, []).extend(addresses)
        for link in chain_rows(row, repository.certificate, repository.certificate_by_fingerprint):
            presented.setdefault(link.id, []).extend(
                f"{address} (in the chain of {row.friendly_name!r})" for address in addresses
            )
    return presented


def _claim(app: Appliance, item: _Due) -> str | None:
    """Take the notice for this sender (a fresh token), or None if another has it or its
    certificate was deleted since the check read it (the sends before it took that long).
    The claim is dated now, not when the check began: a check longer than the lease (a slow
    relay, many notices) would else make claims that look abandoned at birth and are taken
    mid-send."""
    claim = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(8)}"
    now = app.now()
    with app.store.transaction() as repository:
        if repository.certificate_by_fingerprint(item.row.fingerprint) is None:
            return None
        if item.existing is not None:
            if not store.claim_again(
                repository,
                item.existing.id,
                item.existing.claim,
                claim,
                now,
                now - CLAIM_LEASE,
                now + CLOCK_SLACK,
            ):
                return None
            store.skip_superseded(repository, item.row.fingerprint, item.threshold)
            return claim
        row = item.row
        common = {
            "certificate_fingerprint": row.fingerprint,
            "not_after": row.not_after,
            "friendly_name": row.friendly_name,
            "claimed_at": now,
        }
        values = {**common, "threshold": item.threshold, "state": store.SENDING, "claim": claim}
        if not store.claim_new(repository, {**values, "attempts": 1}):
            return None
        store.skip_superseded(repository, row.fingerprint, item.threshold)
        for threshold in item.also_crossed:  # one mail, not one per threshold crossed at once
            skipped = {"threshold": threshold, "state": store.SKIPPED, "claim": "", "attempts": 0}
            store.claim_new(repository, {**common, **skipped})
    return claim


def _finish(app: Appliance, item: _Due, claim: str, error: str | None, partly: str | None) -> None:
    with app.store.transaction() as repository:
        record = item.existing.id if item.existing is not None else None
        if record is None:
            [record] = [
                r.id
                for r in store.notices_of(repository, [item.row.fingerprint])
                if r.threshold == item.threshold
            ]
        store.finish(repository, record, claim, app.now(), error, partly)


def _mail(
    settings: email.EmailSettings, item: _Due, infos: RowInfoCache, now: dt.datetime
) -> EmailMessage:
    row, info = item.row, infos(item.row)
    not_after = row.not_after
    left = not_after - now
    if left.total_seconds() <= 0:
        subject = f"certgate: the certificate {row.friendly_name!r} has expired"
        when = f"expired on {format_time(not_after)}"
    else:
        days = left.days
        span = f"{days} day(s)" if days else "less than a day"
        subject = f"certgate: the certificate {row.friendly_name!r} expires in {span}"
        when = f"expires on {format_time(not_after)}, in {span}"
    if item.presented_on:
        where = "The addresses that will present an expired certificate:\n" + "".join(
            f"  {address}\n" for address in item.presented_on
        )
    else:
        where = "No IP address presents it (it is not assigned, nor in an assigned chain).\n"
    body = (
        f"The certificate {row.friendly_name!r} {when}.\n\n"
        f"  Friendly name        {visible(row.friendly_name)}\n"
        f"  Subject              {visible(info.subject)}\n"
        f"  Issuer               {visible(info.issuer)}\n"
        f"  SHA-256 fingerprint  {row.fingerprint}\n"
        f"  Not valid after      {format_time(not_after)}\n\n"
        f"{where}\n"
        "Renew or replace it before then, and assign the new certificate to these addresses "
        "(Security > Certificates).\n\n"
        f"certgate sends this notice once ({email.describe_days(settings.notice_days)}).\n"
    )
    return email.message(settings, subject, body)


class NoticeSchedule(Periodic):
    """``certgate serve``'s hourly check, on a thread of its own (never the event loop)."""

    def __init__(self, app: Appliance) -> None:
        super().__init__(
            lambda: check(app),
            "certgate-notices",
            "expiry notices not checked",
            interval_from(INTERVAL_ENV, CHECK_INTERVAL),
        )


def notice_counts(app: Appliance) -> dict[str, int]:
    """Notices sent, failed (to be retried) and being sent, of the certificates in the store
    that have not expired over ``FORGOTTEN_AFTER`` ago (as ``unsent_notices``)."""
    forgotten_before = app.now() - FORGOTTEN_AFTER
    with app.store.reading() as repository:
        counts = store.counts_by_state(repository, forgotten_before)
    return {state: counts.get(state, 0) for state in (store.SENT, store.FAILED, store.SENDING)}
