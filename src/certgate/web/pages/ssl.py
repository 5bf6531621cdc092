"""Security > SSL Configuration: TLS versions, the TLS 1.2 ciphers, the HTTPS port, and the
deadlines of connections and of stopping."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.errors import ValidationError
from certgate.service import tls_settings
from certgate.service.auth import Principal
from certgate.tls.policy import DEFAULT_GROUPS, DEFAULT_TLS12_CIPHERS
from certgate.web.pages.access import Poster, call, page_view
from certgate.web.pages.forms import FRESH, FormState, admin_form, checked, integer, typed
from certgate.web.pages.rendering import PREFIX, redirect, render_form

router = APIRouter()
PAGE = PREFIX + "/security/ssl"
INPUTS = (
    "minimum_version",
    "maximum_version",
    "tls12_ciphers",
    "https_port",
    "http_port",
    "groups",
    *(deadline.name for deadline in tls_settings.DEADLINE_SETTINGS),
)


async def _page(request: Request, principal: Principal, state: FormState = FRESH) -> Response:
    values = state.values
    if values is None:
        current = await call(request, tls_settings.get_settings)
        values = {name: _shown(value) for name, value in dataclasses.asdict(current).items()}
    return render_form(
        request,
        "ssl.html",
        {
            "title": "Security :: SSL Configuration",
            "section": "security",
            "subsection": "ssl",
            "values": values,
            "versions": list(tls_settings.VERSIONS),
            "default_ciphers": DEFAULT_TLS12_CIPHERS,
            "default_groups": DEFAULT_GROUPS,
            "deadlines": tls_settings.DEADLINE_SETTINGS,
            "maximum_deadline": tls_settings.MAXIMUM_DEADLINE,
        },
        state,
        principal=principal,
    )


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def seconds(value: str, field: str) -> float | None:
    """A number of seconds from a form field; empty keeps the current setting."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValidationError(field, f"{value!r} is not a number of seconds") from None


router.get(PAGE)(page_view(_page))


@router.post(PAGE)
async def save_ssl(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "changing the SSL configuration")
    values = typed(form, INPUTS)
    send_root = checked(form, "send_root")
    values["send_root"] = str(send_root)
    try:
        await call(
            request,
            tls_settings.update_settings,
            minimum_version=values["minimum_version"],
            maximum_version=values["maximum_version"],
            tls12_ciphers=values["tls12_ciphers"],
            https_port=integer(values["https_port"], "https_port", -1),
            http_port=integer(values["http_port"], "http_port", 0),
            groups=values["groups"],
            send_root=send_root,
            deadlines={
                deadline.name: seconds(values[deadline.name], deadline.name)
                for deadline in tls_settings.DEADLINE_SETTINGS
            },
            actor=principal.actor,
        )
    except ValidationError as error:
        return await _page(request, principal, FormState.refused(values, error, INPUTS))
    return redirect(PAGE, "SSL configuration saved; the listeners use it for new connections.")
