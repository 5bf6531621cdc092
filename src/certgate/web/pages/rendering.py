"""How a page answers: its template rendered with the caller and the flash message, the
response headers of an HTML page, a redirect carrying a message, a download."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from certgate import __version__
from certgate.pki.diagnostics import format_time
from certgate.service.auth import Principal
from certgate.text import visible
from certgate.web.api.downloads import content_disposition
from certgate.web.pages.forms import FormState
from certgate.web.security import CSRF_FIELD

PREFIX = "/appliance"
STATIC = PREFIX + "/static"
FLASH_COOKIE = "__Host-certgate_flash"  # Secure, Path=/, no Domain: this host's alone

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


def _shown(value: object) -> object:
    """What an expression shows: a text's control characters as their visible escapes, as
    the CLI prints them (a certificate's subject ``x\\u202egnp.exe`` read "xexe.png" on
    every page that shows it); its line breaks and tabs kept (a PEM block). HTML a macro
    made (``Markup``) is left as it is: its own expressions came through here."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value, keep="\t\n\r")
    return value


TEMPLATES.env.finalize = _shown  # before any template is compiled
TEMPLATES.env.trim_blocks = True
TEMPLATES.env.lstrip_blocks = True
TEMPLATES.env.filters["gmt"] = format_time
TEMPLATES.env.filters["thousands"] = lambda number: f"{number:,}"
#: An RFC 4514 name, one attribute per line (an escaped comma stays inside its value).
TEMPLATES.env.filters["rdns"] = lambda name: re.split(r"(?<!\\), ", name) if name else []
TEMPLATES.env.globals.update(static=STATIC, version=__version__, csrf_field=CSRF_FIELD)

#: Pages: no framing, no inline script, no caching of what may be sensitive.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A whole page (or, for htmx, a fragment template); consumes the pending flash message."""
    values: dict[str, Any] = {
        "principal": principal,
        "is_admin": principal is not None and principal.role == "admin",
        "csrf_token": principal.csrf_token if principal else None,
        "flash": None if is_htmx(request) else _read_flash(request),
        "path": request.url.path,
        **(context or {}),
    }
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    if values["flash"] is not None:
        response.delete_cookie(FLASH_COOKIE, path="/", secure=True, httponly=True)
    return response


def render_form(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    state: FormState,
    *,
    principal: Principal,
) -> HTMLResponse:
    """A page with a form: ``context`` and the form's state, each error beside its input,
    answered with the state's status (422 when the service refused what was typed)."""
    return render(
        request,
        template,
        {**context, "errors": state.errors},
        principal=principal,
        status_code=state.status_code,
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


#: A flash message's kinds (its CSS class): done, refused, done but with a warning.
_FLASH_KINDS = ("ok", "error", "warn")


def redirect(url: str, flash: str | None = None, kind: str = "ok") -> RedirectResponse:
    """See Other, with an optional message shown once on the next page (``kind``: one of
    ``_FLASH_KINDS``)."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        set_flash(response, flash, kind)
    return response


def set_flash(response: Response, flash: str, kind: str = "ok") -> None:
    """The message the next page shows once (``redirect``, or htmx's ``HX-Redirect``)."""
    payload = base64.urlsafe_b64encode(json.dumps([kind, flash[:1500]]).encode()).decode()
    response.set_cookie(
        FLASH_COOKIE, payload, path="/", secure=True, httponly=True, samesite="strict"
    )


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        kind, message = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, TypeError):  # not one this module wrote ("5", null: a 500 on every page)
        return None
    return {"kind": kind if kind in _FLASH_KINDS else "ok", "message": str(message)}


def download(data: bytes, label: str, extension: str, media_type: str, fallback: str) -> Response:
    """An attachment named after ``label`` (a friendly name, any text) the API's way: a
    portable ASCII ``filename`` and the name as typed in RFC 6266's ``filename*``."""
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": content_disposition(label, extension, fallback),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def sentence(message: str) -> str:
    """A service message (lower-case, no full stop) as a sentence for a page."""
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def notes(notices: Iterable[str]) -> str:
    """A service's notices, each a " Note: ..." sentence to end a flash message with."""
    return "".join(f" Note: {notice}." for notice in notices)


TEMPLATES.env.filters["sentence"] = sentence
