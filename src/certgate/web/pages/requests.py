"""Certificate requests: the Request Data (PEM) to copy or download as .csr, and delete."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.errors import CertgateError
from certgate.service import requests
from certgate.service.auth import Principal
from certgate.web.pages.access import Poster, Viewer, call
from certgate.web.pages.forms import admin_form, identifiers, read_form, text, texts
from certgate.web.pages.rendering import PREFIX, download, redirect, render

router = APIRouter()
PAGE = PREFIX + "/security/requests/{request_id}"
CERTIFICATES = PREFIX + "/security/certificates"


def _render(
    request: Request, principal: Principal, template: str, title: str, **context: object
) -> Response:
    """A page of Security :: Certificate Requests (listed with the certificates)."""
    return render(
        request,
        template,
        {
            "title": "Security :: Certificate Requests :: " + title,
            "section": "security",
            "subsection": "certificates",
            **context,
        },
        principal=principal,
    )


@router.get(PAGE)
async def request_page(request: Request, request_id: int, principal: Viewer) -> Response:
    view = await call(request, requests.show_request, request_id)
    return _render(request, principal, "request.html", "Request Data", view=view)


@router.get(PAGE + "/csr")
async def download_request(request: Request, request_id: int, _: Viewer) -> Response:
    view = await call(request, requests.show_request, request_id)
    return download(
        view.pem.encode("ascii"), view.friendly_name, ".csr", "application/pkcs10", "request"
    )


@router.post(PREFIX + "/security/requests/action")
async def request_action(request: Request, principal: Poster) -> Response:
    """The Certificate Requests table's Select Action: Delete, after a confirmation that
    names what is lost (the pending private key, unless a certificate or another request
    uses it: a renewal request shares its certificate's key)."""
    form = await read_form(request)
    ids = identifiers(texts(form, "id"))
    if text(form, "action") != "delete" or not ids:
        return redirect(CERTIFICATES, "Check a request and choose Delete.", "error")
    principal.require_admin("deleting certificate requests")
    chosen = await call(request, requests.keys_after_deleting, ids)
    return _render(request, principal, "request_delete_confirm.html", "Delete", chosen=chosen)


@router.post(PREFIX + "/security/requests/delete")
async def delete_requests(request: Request, principal: Poster) -> Response:
    """Delete the confirmed requests (a key goes too when nothing else uses it)."""
    form = await admin_form(request, principal, "deleting certificate requests")
    ids = identifiers(texts(form, "id"))
    if not ids:
        return redirect(CERTIFICATES, "Check a request and choose Delete.", "error")
    notes: list[str] = []
    failed = False
    for request_id in ids:
        try:
            deleted = await call(request, requests.delete_request, request_id, principal.actor)
            key = " and its private key" if deleted.private_key_deleted else ""
            notes.append(f"Request {request_id} deleted{key}.")
        except CertgateError as error:
            failed = True
            notes.append(f"Request {request_id} not deleted: {error}.")
    return redirect(CERTIFICATES, " ".join(notes), "error" if failed else "ok")
