"""/requests: Create Certificate Request, the Certificate Requests table, the Request Data (PEM)
and its .csr download, Delete."""

from __future__ import annotations

from typing import Annotated, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Query, Response

from certgate.schemas import CertificateRequest, CreatedRequest, CreateRequestBody, DeletedRequest
from certgate.service import certificates, requests
from certgate.web.api.deps import Admin, App, Viewer
from certgate.web.api.downloads import binary_responses, content_disposition, download
from certgate.web.api.forms import create_form, created_request
from certgate.web.api.openapi import CREATED, problem_responses
from certgate.web.api.paths import RequestRef

router = APIRouter(prefix="/requests", tags=["requests"])

CSR_MEDIA_TYPES = {"pem": "application/x-pem-file", "der": "application/pkcs10"}


@router.get("", summary="List certificate requests")
def list_requests(app: App, _: Viewer) -> list[CertificateRequest]:
    return [CertificateRequest.model_validate(view) for view in requests.list_requests(app)]


@router.post(
    "", summary="Create a certificate request", **CREATED, responses=problem_responses(422)
)
def create_request(
    app: App, principal: Admin, body: CreateRequestBody, response: Response
) -> CreatedRequest:
    """The Create page's "Create Certificate Request": a new key (kept on the appliance) and
    a CSR to give a certificate authority. Importing the signed certificate links it to the
    key."""
    created = certificates.create(app, create_form(body), "request", principal.actor)
    return created_request(app, created, response)


@router.get(
    "/{reference}",
    summary="Show a certificate request",
    responses=problem_responses(404, 422),
)
def show_request(app: App, _: Viewer, reference: RequestRef) -> CertificateRequest:
    """The request with its Request Data (PEM)."""
    return CertificateRequest.model_validate(requests.show_request(app, reference))


@router.get(
    "/{reference}/csr",
    summary="Download a certificate request",
    response_class=Response,
    responses={
        **binary_responses(list(CSR_MEDIA_TYPES.values()), "The request as a .csr file."),
        **problem_responses(404, 422),
    },
)
def download_request(
    app: App,
    _: Viewer,
    reference: RequestRef,
    format: Annotated[
        Literal["pem", "der"], Query(description="PEM (what most CAs ask for) or DER.")
    ] = "pem",
) -> Response:
    view = requests.show_request(app, reference)
    data = view.pem.encode("ascii")
    if format == "der":
        data = x509.load_pem_x509_csr(data).public_bytes(Encoding.DER)
    return download(
        data,
        CSR_MEDIA_TYPES[format],
        content_disposition(view.friendly_name, ".csr", "request"),
    )


@router.delete(
    "/{reference}",
    summary="Delete a certificate request",
    responses=problem_responses(404, 422),
)
def delete_request(app: App, principal: Admin, reference: RequestRef) -> DeletedRequest:
    """Delete the request; its private key goes too unless a certificate or another request
    uses it (a renewal request shares its certificate's key)."""
    deleted = requests.delete_request(app, reference, principal.actor)
    return DeletedRequest(id=deleted.id, private_key_deleted=deleted.private_key_deleted)
