"""Renewal request from an existing certificate: a new CSR signed with the certificate's own
key, pre-filled with its subject and SANs (which may be edited), for a certificate authority
that wants a request to renew.

The key is never copied: it stays the one sealed row, found by its public-key fingerprint,
which the new request carries as the certificate does. So the certificate the CA returns
finds the key on import as any certificate does, and deleting the request keeps the key as
long as the certificate (or another request) uses it (``keystore.remove_unused_key``).
A certificate that arrived as PKCS#12 (no request stored) renews the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from certgate.limits import fitted_friendly_name
from certgate.pki.builders import build_request
from certgate.pki.certinfo import read_certificate
from certgate.pki.names import san_entries, subject_fields_of
from certgate.service.appliance import Appliance
from certgate.service.certificates import Created, CreateForm, check_form
from certgate.service.keystore import get_private_key, require_key
from certgate.service.lookup import find_certificate
from certgate.service.requests import new_request_row
from certgate.service.stored import stored_certificate
from certgate.store.audit import APPLIANCE, Actor, AuditAction, certificate_target
from certgate.store.models import CertificateRow
from certgate.store.repository import Repository

#: Added to the certificate's friendly name for its renewal request's.
RENEWAL_SUFFIX = " (renewal)"


@dataclass(frozen=True)
class RenewalForm:
    """The Create form pre-filled from a certificate, and what it could not carry over."""

    certificate_id: int
    certificate_name: str
    key: str  # the certificate's public key, described ("RSA (2048 Bits)")
    form: CreateForm
    left_out: list[str]  # subject attributes and SANs the form has no field for


@dataclass(frozen=True)
class Changes:
    """Fields given instead of the pre-filled ones (CLI options, an API body); None keeps
    the certificate's value, an empty string removes a subject field."""

    friendly_name: str | None = None
    subject: dict[str, str | None] | None = None
    sans: list[str] | None = None

    def applied_to(self, form: CreateForm) -> CreateForm:
        given = {name: value for name, value in (self.subject or {}).items() if value is not None}
        return replace(
            form,
            friendly_name=form.friendly_name if self.friendly_name is None else self.friendly_name,
            subject=replace(form.subject, **given),
            sans=form.sans if self.sans is None else list(self.sans),
        )


def renewal_form(app: Appliance, reference: str | int) -> RenewalForm:
    """The pre-filled form; refused for a certificate whose private key is not stored."""
    with app.store.reading() as repository:
        row = find_certificate(repository, reference)
        _require_key(repository, row)
        return _prefill(row)


def _prefill(row: CertificateRow) -> RenewalForm:
    certificate = stored_certificate(row)
    info = read_certificate(certificate)
    subject, left_out = subject_fields_of(certificate.subject)
    sans, other_names = san_entries(info.sans)
    if not subject.common_name and sans:  # a subject without CN: the first name stands in
        subject = replace(subject, common_name=sans[0])
    form = CreateForm(
        friendly_name=fitted_friendly_name(row.friendly_name + RENEWAL_SUFFIX),
        subject=subject,
        sans=sans,
    )
    return RenewalForm(row.id, row.friendly_name, info.public_key, form, left_out + other_names)


def _require_key(repository: Repository, row: CertificateRow) -> None:
    """A renewal request is signed with the certificate's own key."""
    require_key(
        repository,
        row,
        "cannot be renewed with its own key",
        "create a request with a new key",
    )


def create_renewal_request(
    app: Appliance, reference: str | int, form: CreateForm, actor: Actor = APPLIANCE
) -> Created:
    """A request for ``form``'s subject and SANs, signed with the certificate's key (its
    ``key`` field is not read). The same request made twice (RSA signatures are
    deterministic) is the one already stored, said in a notice."""
    checked = check_form(form)
    with app.store.transaction(actor) as repository:
        row = find_certificate(repository, reference)
        _require_key(repository, row)
        key = get_private_key(repository, app.sealer, row.public_key_fingerprint)
        csr = build_request(key, checked.subject, checked.names)
        request_row = new_request_row(csr, checked.friendly_name)
        stored = repository.request_by_fingerprint(request_row.fingerprint)
        if stored is not None:
            notice = f"this request is already stored as {stored.friendly_name!r}"
            notices = [*checked.notices, notice]
            return Created("request", stored.id, stored.fingerprint, notices, added=False)
        repository.add(request_row)
        repository.flush()
        repository.audit(
            AuditAction.REQUEST_CREATE,
            certificate_target(request_row.friendly_name, request_row.fingerprint),
            f"renewal of {row.friendly_name!r} ({row.fingerprint}), with its key",
        )
        repository.audit_key_use(
            AuditAction.KEY_SIGN_REQUEST,
            row.friendly_name,
            row.public_key_fingerprint,
            f"signed renewal request {request_row.fingerprint}",
        )
        return Created("request", request_row.id, request_row.fingerprint, checked.notices)


def renew_request(
    app: Appliance, reference: str | int, changes: Changes, actor: Actor = APPLIANCE
) -> Created:
    """The CLI's and the API's one step: the pre-filled form with ``changes`` applied, made
    into a request; what the form could not carry over is said in a notice."""
    prefill = renewal_form(app, reference)
    created = create_renewal_request(app, reference, changes.applied_to(prefill.form), actor)
    if prefill.left_out:
        notice = "not carried over (no field for it): " + "; ".join(prefill.left_out)
        return replace(created, notices=[notice, *created.notices])
    return created
