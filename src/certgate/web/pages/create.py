"""The Create page: a key and either a self-signed certificate or a certificate request.

Key generation runs in a worker thread (RSA 4096 takes a while), never on the event loop."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from certgate.errors import ValidationError
from certgate.fields import COMMON_NAME_HELP, SANS_HELP
from certgate.pki.keys import DEFAULT_KEY_SPEC, KeySpec
from certgate.pki.names import SubjectFields, parse_san
from certgate.service import certificates
from certgate.service.auth import Principal
from certgate.web.pages.common import (
    PREFIX,
    Poster,
    Viewer,
    appliance,
    field_errors,
    read_form,
    redirect,
    render,
    text,
    texts,
)

router = APIRouter()
PAGE = PREFIX + "/security/certificates/create"
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
) -> Response:
    return render(
        request,
        "create.html",
        {
            "title": "Security :: Certificates :: Create",
            "section": "security",
            "subsection": "certificates",
            "values": values,
            "key_specs": list(KeySpec),
            "common_name_help": COMMON_NAME_HELP,
            "sans_help": SANS_HELP,
            "errors": errors or {},
        },
        principal=principal,
        status_code=status_code,
    )


@router.get(PAGE)
async def create_form(request: Request, principal: Viewer) -> Response:
    principal.require_admin("creating a certificate")
    return _render(request, principal, {"key": DEFAULT_KEY_SPEC.value, "sans": []})


def _values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: text(form, name).strip() for name in TEXT_FIELDS}
    values["sans"] = [san for san in (s.strip() for s in texts(form, "sans")) if san]
    return values


@router.post(PAGE)
async def create(request: Request, principal: Poster) -> Response:
    """One form, four buttons: Add / Remove a SAN, Create Self-Signed Certificate, Create
    Certificate Request."""
    principal.require_admin("creating a certificate")
    form = await read_form(request)
    values = _values(form)
    button = text(form, "button")
    if button == "add-san":
        return _add_san(request, principal, values)
    if button.startswith("remove-san:"):
        values["sans"] = [san for san in values["sans"] if san != button.split(":", 1)[1]]
        return _render(request, principal, values)
    if values[SAN_INPUT]:  # typed but not added: the administrator surely meant it
        values["sans"].append(values[SAN_INPUT])
        values[SAN_INPUT] = ""
    kind: Literal["self-signed", "request"] = "request" if button == "request" else "self-signed"
    try:
        created = await run_in_threadpool(
            certificates.create, appliance(request), _create_form(values), kind, principal.actor
        )
    except ValidationError as error:
        return _render(request, principal, values, field_errors(error, TEXT_FIELDS), 422)
    what = "Certificate request" if created.kind == "request" else "Self-signed certificate"
    notes = "".join(f" Note: {notice}." for notice in created.notices)
    done = f"{what} {values['friendly_name']!r} created.{notes}"
    if created.kind == "request":
        return redirect(f"{PREFIX}/security/requests/{created.id}", done)
    return redirect(
        f"{PREFIX}/security/certificates",
        done + " It is not yet assigned to an IP address: open it to assign one.",
    )


def _add_san(request: Request, principal: Principal, values: dict[str, Any]) -> Response:
    entry = values[SAN_INPUT]
    if not entry:  # Enter pressed in another field: nothing to add
        return _render(request, principal, values)
    try:
        display = str(parse_san(entry)[1].value)
    except ValidationError as error:
        return _render(request, principal, values, {SAN_INPUT: error.reason}, 422)
    if display not in values["sans"]:
        values["sans"].append(display)
    values[SAN_INPUT] = ""
    return _render(request, principal, values)


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
