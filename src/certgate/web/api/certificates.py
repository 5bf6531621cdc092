"""/certificates: the Certificates table (filters, paging), Create (self-signed), and the Edit
Certificate Configuration page (rename, chain, IP addresses), Delete."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response

from certgate.errors import ValidationError
from certgate.moments import utc
from certgate.pki.chain import Role
from certgate.pki.diagnostics import WarningCode
from certgate.schemas import (
    Address,
    Certificate,
    CertificateAddresses,
    CertificatePage,
    ChainBody,
    ChainedCertificate,
    CreateCertificateBody,
    CreatedCertificate,
    CreatedRequest,
    DeletedCertificate,
    Rename,
    RenewalRequestBody,
    ReplaceBody,
    Replacement,
)
from certgate.service import certificates, networking, renewal, replacement
from certgate.service.certificates import SortKey
from certgate.web.api.deps import Admin, App, Viewer
from certgate.web.api.forms import create_form, created_request
from certgate.web.api.openapi import CREATED, problem_responses
from certgate.web.api.paths import CertificateRef, locate

router = APIRouter(prefix="/certificates", tags=["certificates"])


MOMENT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)


def _moment(text: str | None) -> dt.datetime | None:
    """An RFC 3339 moment; without an offset it is taken as UTC."""
    if text is None:
        return None
    try:  # in UTC, a moment of year 1 or 9999 may fall outside the calendar
        return utc(dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        raise ValidationError("expiring_before", f"{text!r} is not a valid moment") from None


@router.get("", summary="List certificates", responses=problem_responses(422))
def list_certificates(
    app: App,
    _: Viewer,
    q: Annotated[
        str,
        Query(
            max_length=500,
            description="Text in the friendly name, subject, issuer, SANs, addresses or "
            "fingerprint (case-insensitive).",
        ),
    ] = "",
    role: Annotated[Role | None, Query()] = None,
    has_private_key: Annotated[bool | None, Query()] = None,
    warning: Annotated[
        WarningCode | Literal["any"] | None,
        Query(description="A warning code, or 'any' (a certificate with any warning)."),
    ] = None,
    expiring_before: Annotated[
        str | None,
        Query(
            pattern=MOMENT_PATTERN,
            description="Only certificates whose Not Valid After is before this moment: "
            "RFC 3339 (2027-01-31T00:00:00Z); without an offset, UTC.",
            examples=["2027-01-31T00:00:00Z"],
        ),
    ] = None,
    sort: SortKey = SortKey.ID,
    descending: bool = False,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CertificatePage:
    """The Security :: Certificates table, filtered, sorted and paged."""
    page = certificates.query_certificates(
        app,
        certificates.CertificateQuery(
            text=q,
            role=role,
            has_private_key=has_private_key,
            warning=warning or None,
            expiring_before=_moment(expiring_before),
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
        ),
    )
    return CertificatePage(
        total=page.total,
        offset=offset,
        limit=limit,
        items=[Certificate.model_validate(view) for view in page.items],
    )


@router.post(
    "", summary="Create a self-signed certificate", **CREATED, responses=problem_responses(422)
)
def create_self_signed(
    app: App, principal: Admin, body: CreateCertificateBody, response: Response
) -> CreatedCertificate:
    """The Create page's "Create Self-Signed Certificate": a new key and certificate. It
    secures no address until assigned."""
    created = certificates.create(app, create_form(body), "self-signed", principal.actor)
    locate(response, router.prefix, created.id)
    view = certificates.show_certificate(app, created.id)
    return CreatedCertificate(certificate=Certificate.model_validate(view), notices=created.notices)


@router.get("/{reference}", summary="Show a certificate", responses=problem_responses(404, 422))
def show_certificate(app: App, _: Viewer, reference: CertificateRef) -> Certificate:
    """Every field of the Edit Certificate Configuration page, with chain and warnings."""
    return Certificate.model_validate(certificates.show_certificate(app, reference))


@router.patch("/{reference}", summary="Rename a certificate", responses=problem_responses(404, 422))
def rename_certificate(
    app: App, principal: Admin, reference: CertificateRef, body: Rename
) -> Certificate:
    """Change the Certificate Friendly Name."""
    certificates.rename(app, reference, body.friendly_name, principal.actor)
    return Certificate.model_validate(certificates.show_certificate(app, reference))


@router.delete(
    "/{reference}",
    summary="Delete a certificate",
    responses=problem_responses(404, 409, 422),
)
def delete_certificate(
    app: App,
    principal: Admin,
    reference: CertificateRef,
    reassign_to_factory: Annotated[
        bool,
        Query(
            description="Hand the addresses this certificate secures to the factory "
            "certificate. Without it, deleting a certificate in use is refused (409 in-use)."
        ),
    ] = False,
) -> DeletedCertificate:
    """Delete a certificate (its private key too, unless another certificate or request uses
    it). The factory certificate is protected."""
    deleted = certificates.delete_certificate(
        app, reference, reassign_to_factory=reassign_to_factory, actor=principal.actor
    )
    return DeletedCertificate.model_validate(deleted)


@router.put(
    "/{reference}/chain",
    summary="Set the certificate chain",
    responses=problem_responses(404, 409, 422),
)
def set_chain(
    app: App, principal: Admin, reference: CertificateRef, body: ChainBody
) -> ChainedCertificate:
    """Certificate Chain: Automatic (built from the certificates in the store) or Manually
    Specified (a PEM chain in any order: put nearest issuer first, each link checked, the
    reordering said in ``notices``). For a certificate securing addresses, a chain that ends
    at another root, or that clients refuse, is a 409 `unconfirmed-change` unless `confirm`."""
    notices: list[str] = []
    if body.mode == "automatic":
        certificates.set_automatic_chain(app, reference, principal.actor, confirm=body.confirm)
    else:
        if not body.pem:
            raise ValidationError("pem", "give the chain in PEM for a manually specified chain")
        notices = certificates.set_manual_chain(
            app, reference, body.pem.encode(), principal.actor, confirm=body.confirm
        )
    view = ChainedCertificate.model_validate(certificates.show_certificate(app, reference))
    return view.model_copy(update={"notices": notices})


@router.put(
    "/{reference}/addresses",
    summary="Set the addresses of a certificate",
    responses=problem_responses(404, 409, 422),
)
def set_addresses(
    app: App, principal: Admin, reference: CertificateRef, body: CertificateAddresses
) -> list[Address]:
    """The IP Addresses checkboxes and Save Configuration: the listed addresses present this
    certificate at once; those it had and are not listed go back to the factory certificate.
    Answers every address with its certificate. A move to a chain ending at another root
    (back to the factory certificate included), or to a certificate clients will refuse,
    needs ``"confirm": true`` (409 unconfirmed-change otherwise, nothing changed)."""
    views = networking.set_certificate_addresses(
        app, reference, body.addresses, principal.actor, confirm=body.confirm
    )
    return [Address.model_validate(view) for view in views]


@router.post(
    "/{reference}/renewal-request",
    summary="Create a renewal request from a certificate",
    **CREATED,
    responses=problem_responses(404, 422),
)
def create_renewal_request(
    app: App,
    principal: Admin,
    reference: CertificateRef,
    response: Response,
    body: Annotated[RenewalRequestBody | None, Body()] = None,
) -> CreatedRequest:
    """For a certificate authority that wants a request to renew: a new certificate request
    signed with this certificate's private key (the same key, not a copy), with its subject
    and SANs unless the body changes them. Works for any certificate whose key is stored
    (422 key-missing otherwise), also one imported from PKCS#12. The certificate the CA
    returns finds the key on import. What the request cannot carry over (a second OU, an
    email SAN) is said in ``notices``. The same fields as a stored request (RSA signatures
    are deterministic: the certificate's original request) answer that request, with a
    notice."""
    body = body or RenewalRequestBody()
    changes = renewal.Changes(
        body.friendly_name,
        body.subject.model_dump(),
        None if body.subject_alternative_names is None else list(body.subject_alternative_names),
    )
    created = renewal.renew_request(app, reference, changes, principal.actor)
    return created_request(app, created, response)


@router.post(
    "/{reference}/replace",
    summary="Replace a certificate on every address it secures",
    responses=problem_responses(404, 409, 422),
)
def replace_certificate(
    app: App, principal: Admin, reference: CertificateRef, body: ReplaceBody
) -> Replacement:
    """Every address this certificate secures moves to the certificate ``with`` names, in
    one transaction, live on the next handshake. This one stays on the appliance: it may be
    removed and/or revoked as necessary. Refused, nothing changed: the same certificate (422
    validation), one without its private key (422 key-missing), one that is not a server
    certificate (422 validation), when this one secures no address (409
    nothing-to-replace), or, without ``"confirm": true``, one under another root or one
    clients will refuse (409 unconfirmed-change, each reason in ``concerns``). A renewal
    under the same root, or replacing the factory certificate, needs no confirmation."""
    done = replacement.replace_certificate(
        app, reference, body.with_, principal.actor, confirm=body.confirm
    )
    return Replacement.model_validate(done)
