"""Edit Certificate Configuration: every field of the guide's screenshot, the Certificate
Chain (Automatic / Manually Specified) and the IP Addresses, saved with Save Configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.errors import (
    ImportFormatError,
    KeyMissingError,
    NothingToReplaceError,
    UnconfirmedChangeError,
    ValidationError,
)
from certgate.pki.lint import RULES
from certgate.service import certificates, configuration, networking, replacement
from certgate.service.appliance import Appliance
from certgate.service.audit import Actor
from certgate.service.auth import Principal
from certgate.service.views import CertificateView
from certgate.web.pages.access import Poster, Viewer, call
from certgate.web.pages.confirmation import Confirmation, confirmation_step
from certgate.web.pages.forms import checked, field_errors, number, read_form, text, texts, uploads
from certgate.web.pages.rendering import PREFIX, notes, redirect, render, sentence

router = APIRouter()
PAGE = PREFIX + "/security/certificates/{certificate_id}"
INPUTS = ("friendly_name", "pem", "addresses")  # "pem": the chain file's input


@dataclass(frozen=True)
class Configuration:
    """What the form holds (or, first, what is stored)."""

    friendly_name: str
    chain_mode: str
    addresses: list[str] = field(default_factory=list)


async def _render(
    request: Request,
    principal: Principal,
    view: CertificateView,
    *,
    values: Configuration | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    confirmation: Confirmation | None = None,
) -> Response:
    addresses = await call(request, networking.list_addresses)
    candidates = (
        await call(request, replacement.replacement_candidates, view.id)
        if view.ip_addresses and principal.role == "admin"
        else []
    )
    not_covered = await call(request, networking.hostnames_not_covered_by, view.id)
    return render(
        request,
        "edit.html",
        {
            "title": "Security :: Certificates :: Edit Certificate Configuration",
            "section": "security",
            "subsection": "certificates",
            "view": view,
            "lint_rules": RULES,
            "addresses": addresses,
            "candidates": candidates,
            "not_covered": not_covered,
            "values": values
            or Configuration(view.friendly_name, view.chain_mode, view.ip_addresses),
            "errors": errors or {},
            "confirmation": confirmation,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get(PAGE)
async def edit_page(request: Request, certificate_id: int, principal: Viewer) -> Response:
    view = await call(request, certificates.show_certificate, certificate_id)
    return await _render(request, principal, view)


@router.post(PAGE)
async def save_configuration(request: Request, certificate_id: int, principal: Poster) -> Response:
    principal.require_admin("changing a certificate's configuration")
    view = await call(request, certificates.show_certificate, certificate_id)
    form = await read_form(request)
    chain_files = await uploads(form, "chain_file")
    if not chain_files and text(form, "chain_pem"):  # carried by the confirmation step
        chain_files = [("chain.pem", text(form, "chain_pem").encode())]
    values = Configuration(
        text(form, "friendly_name").strip(),
        "manual" if text(form, "chain_mode") == "manual" else "automatic",
        texts(form, "addresses"),
    )
    confirm = checked(form, "confirm")
    try:
        saved = await call(request, _save, view, values, chain_files, principal.actor, confirm)
    except UnconfirmedChangeError as error:
        fields = [("friendly_name", values.friendly_name), ("chain_mode", values.chain_mode)]
        fields += [("addresses", address) for address in values.addresses]
        fields += [("chain_pem", content.decode("ascii", "replace")) for _, content in chain_files]
        page = PAGE.format(certificate_id=certificate_id)
        step = confirmation_step(error, page, fields, cancel=page)
        return await _render(request, principal, view, values=values, confirmation=step)
    except ValidationError as error:
        errors = field_errors(error, INPUTS)
        return await _render(
            request, principal, view, values=values, errors=errors, status_code=422
        )
    except (KeyMissingError, ImportFormatError) as error:  # beside the addresses, the file
        input_id = "addresses" if isinstance(error, KeyMissingError) else "pem"
        return await _render(
            request,
            principal,
            view,
            values=values,
            errors={input_id: str(error)},
            status_code=error.status,
        )
    message = "Configuration saved." if saved.changed else "Nothing changed."
    message += " The change was confirmed." if confirm and saved.changed else ""
    message += notes(saved.notices)
    return redirect(PAGE.format(certificate_id=certificate_id), message)


def _save(
    app: Appliance,
    view: CertificateView,
    values: Configuration,
    chain_files: list[tuple[str, bytes]],
    actor: Actor,
    confirm: bool,
) -> configuration.Saved:
    """One service operation, one transaction: a refused part leaves every part unsaved."""
    pem = b"\n".join(content for _, content in chain_files) or None
    mode: Literal["automatic", "manual"] = (
        "manual" if values.chain_mode == "manual" else "automatic"
    )
    wanted = configuration.Configuration(values.friendly_name, mode, values.addresses, pem)
    return configuration.save_configuration(app, view.id, wanted, actor, confirm=confirm)


@router.post(PAGE + "/replace")
async def replace(request: Request, certificate_id: int, principal: Poster) -> Response:
    """Replace with ...: every address of this certificate moves to the one chosen, in one
    transaction; this one stays (it may be removed and/or revoked as necessary)."""
    principal.require_admin("replacing a certificate")
    view = await call(request, certificates.show_certificate, certificate_id)
    form = await read_form(request)
    chosen = number(text(form, "with"))
    try:
        if chosen is None:
            raise ValidationError("with", "choose the certificate that takes over the addresses")
        done = await call(
            request,
            replacement.replace_certificate,
            certificate_id,
            chosen,
            principal.actor,
            confirm=checked(form, "confirm"),
        )
    except UnconfirmedChangeError as error:
        page = PAGE.format(certificate_id=certificate_id)
        step = confirmation_step(error, page + "/replace", [("with", str(chosen))], cancel=page)
        return await _render(request, principal, view, confirmation=step)
    except (ValidationError, KeyMissingError, NothingToReplaceError) as error:
        reason = error.reason if isinstance(error, ValidationError) else str(error)
        return await _render(
            request, principal, view, errors={"with": sentence(reason)}, status_code=error.status
        )
    return redirect(
        PAGE.format(certificate_id=done.new.id),
        f"{', '.join(done.addresses)} now present {done.new.friendly_name!r} instead of "
        f"{done.old.friendly_name!r}: live on the next handshake. "
        + sentence(f"{done.old.friendly_name!r} {replacement.OLD_CERTIFICATE_NOTE}"),
    )
