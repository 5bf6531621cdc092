"""The Import page: one or more files of any accepted format, an optional password, and the
result of each object (added, already there, linked to its key, or the error)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.service.auth import Principal
from certgate.service.import_process import import_files_apart
from certgate.service.imports import ImportEntry
from certgate.web.pages.access import Poster, Viewer, call
from certgate.web.pages.forms import admin_form, text, uploads
from certgate.web.pages.rendering import PREFIX, render

router = APIRouter()
PAGE = PREFIX + "/security/certificates/import"
#: The guide's list of acceptable formats (found by content, whatever the extension).
FORMATS = (
    ("DER-encoded X.509 Certificate", ".cer, .der, .crt"),
    ("PEM-wrapped DER-encoded X.509 Certificate", ".pem, .cert, .b64"),
    ("DER-encoded PKCS #7 certificates", ".p7, .p7b, .p7c"),
    ("DER-encoded PKCS #8 private key", ".p8"),
    ("DER-encoded PKCS #12 certificates and/or private key", ".p12, .pfx"),
    ("DER-encoded OpenSSL Legacy Private Key", ".key"),
    ("PEM-wrapped DER-encoded OpenSSL Legacy Private Key", ".pem, .key"),
)


def _render(
    request: Request,
    principal: Principal,
    results: list[ImportEntry] | None = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "import.html",
        {
            "title": "Security :: Import Certificate",
            "section": "security",
            "subsection": "certificates",
            "formats": FORMATS,
            "results": results,
            "error": error,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get(PAGE)
async def import_form(request: Request, principal: Viewer) -> Response:
    principal.require_admin("importing certificates")
    return _render(request, principal)


@router.post(PAGE)
async def upload(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "importing certificates")
    files = await uploads(form, "files")
    if not files:
        return _render(request, principal, error="choose one or more files", status_code=422)
    password = text(form, "password")
    results = await call(
        request,
        import_files_apart,
        files,
        password.encode() if password else None,
        principal.actor,
        list,  # the entries themselves, for the table
    )
    failed = all(entry.status == "error" for entry in results)
    return _render(request, principal, results, status_code=422 if failed else 200)
