"""The Export page: Include Certificate / Private Key (+ Passphrase) / Certificate Chain, the
guide's format rules, and the download. Auditors export no private key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import escape
from starlette.datastructures import FormData

from certgate.errors import CertgateError, ExportError
from certgate.limits import EXPORT_PASSPHRASE_MIN
from certgate.pki.export import ExportOptions, choose_format
from certgate.service.auth import Principal
from certgate.service.certificates import show_certificate
from certgate.service.exports import export_certificate
from certgate.service.views import CertificateView
from certgate.web.pages.access import Poster, Viewer, call
from certgate.web.pages.forms import checked, read_form, text
from certgate.web.pages.rendering import PREFIX, download, render

router = APIRouter()
PAGE = PREFIX + "/security/certificates/{certificate_id}/export"
#: The guide's rules, shown on the page.
RULES = (
    ("DER", "Used when exporting just the server certificate."),
    ("PKCS#8", "Used when exporting just the private key."),
    ("PKCS#7", "Used when exporting multiple certificates."),
    (
        "PKCS#12",
        "Used when exporting the server certificate and private key, with or without the "
        "server certificate chain.",
    ),
)
FORMAT_NAMES = {
    "der": "DER (.cer)",
    "pem": "PEM (.pem)",
    "pkcs7": "PKCS#7 (.p7b)",
    "pkcs7-pem": "PKCS#7, PEM (.p7b)",
    "pkcs8": "PKCS#8 (.p8)",
    "pkcs8-pem": "PKCS#8, PEM (.key)",
    "pkcs12": "PKCS#12 (.p12)",
    "pem-bundle": "PEM bundle (.pem)",
}


def _options(form: FormData) -> ExportOptions:
    passphrase = text(form, "passphrase")
    return ExportOptions(
        include_certificate=checked(form, "include_certificate"),
        include_private_key=checked(form, "include_private_key"),
        include_chain=checked(form, "include_chain"),
        passphrase=passphrase.encode() if passphrase else None,
        pem=checked(form, "pem"),
        legacy_pkcs12=checked(form, "legacy_pkcs12"),
        unencrypted_private_key=checked(form, "unencrypted_private_key"),
    )


def format_label(options: ExportOptions, view: CertificateView) -> str:
    try:
        return FORMAT_NAMES[choose_format(options, len(view.chain_subjects)).value]
    except ExportError as error:
        return f"none: {error}"


def _render(
    request: Request,
    principal: Principal,
    view: CertificateView,
    options: ExportOptions,
    error: str = "",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "export.html",
        {
            "title": "Security :: Certificates :: Export",
            "section": "security",
            "subsection": "certificates",
            "view": view,
            "options": options,
            "rules": RULES,
            "format": format_label(options, view),
            "error": error,
            "passphrase_min": EXPORT_PASSPHRASE_MIN,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get(PAGE)
async def export_form(request: Request, certificate_id: int, principal: Viewer) -> Response:
    view = await call(request, show_certificate, certificate_id)
    return _render(request, principal, view, ExportOptions())


@router.post(PAGE + "/format")
async def export_format(request: Request, certificate_id: int, principal: Poster) -> Response:
    """The format the current choices produce (htmx, as the checkboxes change)."""
    view = await call(request, show_certificate, certificate_id)
    label = format_label(_options(await read_form(request)), view)
    return HTMLResponse(f'<output id="export-format">{escape(label)}</output>')


@router.post(PAGE)
async def export(request: Request, certificate_id: int, principal: Poster) -> Response:
    options = _options(await read_form(request))
    if options.include_private_key:
        principal.require_admin("exporting a private key")
    view = await call(request, show_certificate, certificate_id)
    try:
        exported = await call(request, export_certificate, certificate_id, options, principal.actor)
    except CertgateError as error:
        return _render(request, principal, view, options, str(error), 422)
    return download(
        exported.data,
        view.friendly_name,
        exported.file_extension,
        exported.media_type,
        "certificate",
    )
