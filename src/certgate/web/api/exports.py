"""/certificates/{reference}/export: the Export page, as a file download.

GET serves what needs no secret (the certificate and/or its chain), so ``curl -OJ`` works;
POST takes the whole Export form, including the private key and its passphrase, in the body
(never in the URL). Auditors may export certificates, never a private key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from certgate.pki.export import ExportOptions
from certgate.schemas import ExportBody
from certgate.service import certificates, exports
from certgate.service.appliance import Appliance
from certgate.service.audit import Actor
from certgate.web.api.certificates import router as collection
from certgate.web.api.deps import App, Caller, Viewer
from certgate.web.api.downloads import (
    EXPORT_FORMAT_HEADER,
    EXPORT_MEDIA_TYPES,
    binary_responses,
    content_disposition,
    download,
)
from certgate.web.api.openapi import problem_responses
from certgate.web.api.paths import CertificateRef
from certgate.web.head import is_head

#: A certificate's export is part of the certificates collection: its path and its tag.
router = APIRouter(prefix=collection.prefix, tags=list(collection.tags))

_FORMATS = (
    "The guide's rules pick the format: DER (`application/pkix-cert`, .cer) for the "
    "certificate alone, PKCS#7 (`application/x-pkcs7-certificates`, .p7b) for several "
    "certificates, PKCS#8 (`application/pkcs8`, .p8) for the private key alone, PKCS#12 "
    "(`application/x-pkcs12`, .p12) for the certificate with its key, with or without the "
    "chain; with `pem`, the PEM variants (`application/x-pem-file`). The header "
    f"`{EXPORT_FORMAT_HEADER}` names the format."
)
_RESPONSES = {
    **binary_responses(
        EXPORT_MEDIA_TYPES, "The exported file.", {EXPORT_FORMAT_HEADER: "der, pkcs12, ..."}
    ),
}


def _export(
    app: Appliance, reference: str, options: ExportOptions, actor: Actor, audited: bool = True
) -> Response:
    exported = exports.export_certificate(app, reference, options, actor, audited=audited)
    name = certificates.show_certificate(app, reference).friendly_name
    return download(
        exported.data,
        exported.media_type,
        content_disposition(name, exported.file_extension, "certificate"),
        {EXPORT_FORMAT_HEADER: exported.format.value},
    )


@router.get(
    "/{reference}/export",
    summary="Download a certificate and/or its chain",
    response_class=Response,
    responses={**_RESPONSES, **problem_responses(400, 404, 422)},
    description=_FORMATS,
)
def export_public(
    request: Request,
    app: App,
    principal: Viewer,
    reference: CertificateRef,
    include_certificate: Annotated[bool, Query()] = True,
    include_chain: Annotated[bool, Query()] = False,
    pem: Annotated[bool, Query(description="PEM instead of binary files.")] = False,
) -> Response:
    options = ExportOptions(
        include_certificate=include_certificate, include_chain=include_chain, pem=pem
    )
    return _export(app, reference, options, principal.actor, audited=not is_head(request))


@router.post(
    "/{reference}/export",
    summary="Export a certificate, its private key and/or its chain",
    response_class=Response,
    responses={**_RESPONSES, **problem_responses(400, 404, 422, 500)},
    description=_FORMATS
    + " A private key is exported only by an administrator, and only encrypted with the "
    "`passphrase` unless `unencrypted_private_key` is set.",
)
def export_any(
    app: App, principal: Caller, reference: CertificateRef, body: ExportBody
) -> Response:
    if body.include_private_key:
        principal.require_admin("Exporting a private key")
    passphrase = body.passphrase.get_secret_value().encode() if body.passphrase else None
    options = ExportOptions(
        include_certificate=body.include_certificate,
        include_private_key=body.include_private_key,
        include_chain=body.include_chain,
        passphrase=passphrase,
        pem=body.pem,
        legacy_pkcs12=body.legacy_pkcs12,
        unencrypted_private_key=body.unencrypted_private_key,
    )
    return _export(app, reference, options, principal.actor)
