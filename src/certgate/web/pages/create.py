"""The Create page: a key and either a self-signed certificate or a certificate request; and
the same form pre-filled from a certificate for a renewal request with its key.

Key generation runs in a worker thread (RSA 4096 takes a while), never on the event loop."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from certgate.errors import ValidationError
from certgate.fields import COMMON_NAME_HELP, SANS_HELP
from certgate.pki.keys import DEFAULT_KEY_SPEC, KeySpec
from certgate.pki.names import SubjectFields, parse_san
from certgate.service import certificates, renewal
from certgate.service.auth import Principal
from certgate.service.renewal import RenewalForm
from certgate.web.pages.access import Poster, Viewer, call
from certgate.web.pages.forms import admin_form, field_errors, read_form, text, texts, typed
from certgate.web.pages.rendering import PREFIX, notes, redirect, render

router = APIRouter()
PAGE = PREFIX + "/security/certificates/create"
RENEWAL_PAGE = PREFIX + "/security/certificates/{certificate_id}/renewal-request"
SAN_INPUT = "subject_alternative_names"
#: The form's text inputs; "subject_alternative_names" is the input a SAN is typed in.
TEXT_FIELDS = (
    "friendly_name",
    "key",
    "country",
    "state",
    "city",
    "organization",
    "organizational_unit",
    "common_name",
    "subject_alternative_names",
)


def _render(
    request: Request,
    principal: Principal,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    renewal: RenewalForm | None = None,
) -> Response:
    """The Create form; with ``renewal``, the same form pre-filled from a certificate, whose
    key signs the request (no key choice, one button)."""
    return render(
        request,
        "create.html",
        {
            "title": "Security :: Certificates :: " + ("Renewal Request" if renewal else "Create"),
            "section": "security",
            "subsection": "certificates",
            "values": values,
            "key_specs": list(KeySpec),
            "common_name_help": COMMON_NAME_HELP,
            "sans_help": SANS_HELP,
            "errors": errors or {},
            "renewal": renewal,
            "action": RENEWAL_PAGE.format(certificate_id=renewal.certificate_id)
            if renewal
            else PAGE,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get(PAGE)
async def create_form(request: Request, principal: Viewer) -> Response:
    principal.require_admin("creating a certificate")
    return _render(request, principal, {"key": DEFAULT_KEY_SPEC.value, "sans": []})


def _values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {**typed(form, TEXT_FIELDS)}
    values["sans"] = [san for san in (s.strip() for s in texts(form, "sans")) if san]
    return values


@router.post(PAGE)
async def create(request: Request, principal: Poster) -> Response:
    """One form, four buttons: Add / Remove a SAN, Create Self-Signed Certificate, Create
    Certificate Request."""
    form = await admin_form(request, principal, "creating a certificate")
    values = _values(form)
    button = text(form, "button")
    answered = _edit_sans(request, principal, values, button, None)
    if answered is not None:
        return answered
    kind: Literal["self-signed", "request"] = "request" if button == "request" else "self-signed"
    try:
        created = await call(
            request, certificates.create, _create_form(values), kind, principal.actor
        )
    except ValidationError as error:
        return _render(request, principal, values, field_errors(error, TEXT_FIELDS), 422)
    what = "Certificate request" if created.kind == "request" else "Self-signed certificate"
    done = f"{what} {values['friendly_name']!r} created.{notes(created.notices)}"
    if created.kind == "request":
        return redirect(f"{PREFIX}/security/requests/{created.id}", done)
    return redirect(
        f"{PREFIX}/security/certificates",
        done + " It is not yet assigned to an IP address: open it to assign one.",
    )


@router.get(RENEWAL_PAGE)
async def renewal_form(request: Request, certificate_id: int, principal: Viewer) -> Response:
    """Create Renewal Request: the form pre-filled with the certificate's subject and SANs."""
    principal.require_admin("creating a renewal request")
    prefill = await call(request, renewal.renewal_form, certificate_id)
    form = prefill.form
    values: dict[str, Any] = {
        "friendly_name": form.friendly_name,
        **asdict(form.subject),
        "sans": list(form.sans),
    }
    return _render(request, principal, values, renewal=prefill)


@router.post(RENEWAL_PAGE)
async def create_renewal(request: Request, certificate_id: int, principal: Poster) -> Response:
    """Add / Remove a SAN, or Create Renewal Request (signed with the certificate's key)."""
    principal.require_admin("creating a renewal request")
    prefill = await call(request, renewal.renewal_form, certificate_id)
    form = await read_form(request)
    values = _values(form)
    answered = _edit_sans(request, principal, values, text(form, "button"), prefill)
    if answered is not None:
        return answered
    try:
        created = await call(
            request,
            renewal.create_renewal_request,
            certificate_id,
            _create_form(values),
            principal.actor,
        )
    except ValidationError as error:
        errors = field_errors(error, TEXT_FIELDS)
        return _render(request, principal, values, errors, 422, renewal=prefill)
    what = "created" if created.added else "found"
    return redirect(
        f"{PREFIX}/security/requests/{created.id}",
        f"Renewal request {what}, with the key of {prefill.certificate_name!r}: give its "
        f"Request Data to your certificate authority, and import the certificate it returns "
        f"(it finds the key).{notes(created.notices)}",
    )


def _edit_sans(
    request: Request,
    principal: Principal,
    values: dict[str, Any],
    button: str,
    renewal_form: RenewalForm | None,
) -> Response | None:
    """Add or Remove a SAN (the form again), or, for a create button, take a SAN typed but
    not added (the administrator surely meant it) and answer None."""
    if button == "add-san":
        return _add_san(request, principal, values, renewal_form)
    if button.startswith("remove-san:"):
        values["sans"] = [san for san in values["sans"] if san != button.split(":", 1)[1]]
        return _render(request, principal, values, renewal=renewal_form)
    if values[SAN_INPUT]:
        values["sans"].append(values[SAN_INPUT])
        values[SAN_INPUT] = ""
    return None


def _add_san(
    request: Request,
    principal: Principal,
    values: dict[str, Any],
    renewal_form: RenewalForm | None,
) -> Response:
    entry = values[SAN_INPUT]
    if not entry:  # Enter pressed in another field: nothing to add
        return _render(request, principal, values, renewal=renewal_form)
    try:
        display = str(parse_san(entry)[1].value)
    except ValidationError as error:
        errors = {SAN_INPUT: error.reason}
        return _render(request, principal, values, errors, 422, renewal=renewal_form)
    if display not in values["sans"]:
        values["sans"].append(display)
    values[SAN_INPUT] = ""
    return _render(request, principal, values, renewal=renewal_form)


def _create_form(values: dict[str, Any]) -> certificates.CreateForm:
    return certificates.CreateForm(
        friendly_name=values["friendly_name"],
        subject=SubjectFields(
            common_name=values["common_name"],
            country=values["country"],
            state=values["state"],
            city=values["city"],
            organization=values["organization"],
            organizational_unit=values["organizational_unit"],
        ),
        sans=list(values["sans"]),
        key=KeySpec.parse(values["key"] or DEFAULT_KEY_SPEC.value),
    )
