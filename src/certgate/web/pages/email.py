"""Security > Email Configuration: the SMTP relay, the administrators' addresses, the days
before expiry at which notices go, and Send Test Email."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.errors import MailError, ValidationError
from certgate.service import email
from certgate.service.auth import Principal
from certgate.service.smtp import MailSecurity
from certgate.web.pages.access import Poster, call, page_view
from certgate.web.pages.forms import FRESH, FormState, admin_form, checked, integer, text, typed
from certgate.web.pages.rendering import PREFIX, notes, redirect, render_form

router = APIRouter()
PAGE = PREFIX + "/security/email"
INPUTS = (
    "host",
    "port",
    "security",
    "ca_bundle",
    "from_address",
    "to_addresses",
    "username",
    "password",
    "notice_days",
)


async def _page(request: Request, principal: Principal, state: FormState = FRESH) -> Response:
    current = await call(request, email.get_settings)
    values = state.values
    if values is None:
        values = {
            "host": current.host,
            "port": str(current.port),
            "security": current.security.value,
            "verify_certificate": str(current.verify_certificate),
            "ca_bundle": current.ca_bundle or "",
            "from_address": current.from_address,
            "to_addresses": "\n".join(current.to_addresses),
            "username": current.username or "",
            "notice_days": ", ".join(str(day) for day in current.notice_days),
        }
    return render_form(
        request,
        "email.html",
        {
            "title": "Security :: Email Configuration",
            "section": "security",
            "subsection": "email",
            "values": values,
            "settings": current,
            "securities": list(MailSecurity),
            "notices": email.describe_days(current.notice_days),
        },
        state,
        principal=principal,
    )


def _default_port(security: str) -> int:
    """What an empty port means: the chosen security's port (25, 587 or 465)."""
    try:
        return MailSecurity(security).default_port
    except ValueError:
        return MailSecurity.STARTTLS.default_port  # the security's own error is said instead


def _days(value: str) -> list[int]:
    days = []
    for part in value.replace(" ", "").split(","):
        if part:
            found = integer(part, "notice_days", -1)
            days.append(found)
    return days


router.get(PAGE)(page_view(_page))


@router.post(PAGE)
async def save_email(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "changing the email configuration")
    values = typed(form, (name for name in INPUTS if name != "password"))
    verify = checked(form, "verify_certificate")
    values["verify_certificate"] = str(verify)
    password = text(form, "password")
    remove_password = checked(form, "remove_password")
    shown = await call(request, email.get_settings)
    try:
        # the port as the page showed it is no change: a new security moves a default port
        # to its own (587 -> 465), as on the API
        port = (
            None
            if values["port"].strip() == str(shown.port)
            else integer(values["port"], "port", _default_port(values["security"]))
        )
        saved = await call(
            request,
            email.update_settings,
            host=values["host"],
            port=port,
            security=values["security"],
            verify_certificate=verify,
            ca_bundle=values["ca_bundle"],
            from_address=values["from_address"],
            to_addresses=values["to_addresses"].split(),
            username=values["username"],
            password="" if remove_password else (password or None),
            notice_days=_days(values["notice_days"]),
            actor=principal.actor,
        )
    except ValidationError as error:
        return await _page(request, principal, FormState.refused(values, error, INPUTS))
    return redirect(PAGE, "Email configuration saved." + notes(saved.notices))


@router.post(PAGE + "/test")
async def send_test_email(request: Request, principal: Poster) -> Response:
    principal.require_admin("sending a test email")
    try:
        result = await call(request, email.send_test)
    except (MailError, ValidationError) as error:
        return redirect(PAGE, f"The test email was not sent: {error}", "error")
    return redirect(
        PAGE, f"Test email handed to {result.relay} for {', '.join(result.recipients)}."
    )
