"""What every page shares: templates, the login and CSRF dependencies, flash messages,
form reading and the response headers of an HTML page."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from certgate import __version__
from certgate.errors import AuthenticationError, ValidationError
from certgate.fields import input_name
from certgate.pki.diagnostics import format_time
from certgate.pki.loader import MAX_FILE_SIZE
from certgate.service.appliance import Appliance
from certgate.service.auth import Principal
from certgate.web.api.downloads import content_disposition
from certgate.web.limits import MAX_FORM_BODY, MAX_IMPORT_FILES
from certgate.web.security import CSRF_FIELD, appliance_of, check_csrf, principal_of

PREFIX = "/appliance"
STATIC = PREFIX + "/static"
FLASH_COOKIE = "certgate_flash"

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
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


# --- who is calling --------------------------------------------------------------------------


async def viewer(request: Request) -> Principal:
    """Any logged-in user; otherwise the page answers with the login page."""
    principal = await run_in_threadpool(principal_of, request)
    if principal is None:
        raise AuthenticationError("log in to continue")
    return principal


async def poster(request: Request) -> Principal:
    """A logged-in user whose form carries the session's CSRF token."""
    principal = await viewer(request)
    await read_form(request)  # parsed once, here, with this module's limits
    await check_csrf(request, principal)
    return principal


Viewer = Annotated[Principal, Depends(viewer)]
Poster = Annotated[Principal, Depends(poster)]


def appliance(request: Request) -> Appliance:
    return appliance_of(request)


_P = ParamSpec("_P")
_T = TypeVar("_T")


async def call(
    request: Request,
    service: Callable[Concatenate[Appliance, _P], _T],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> _T:
    """``service(appliance, *args, **kwargs)`` in a worker thread: a service call reads and
    writes the store (and may generate a key), which must never hold up the event loop."""
    return await run_in_threadpool(service, appliance_of(request), *args, **kwargs)


# --- rendering -------------------------------------------------------------------------------


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
        response.delete_cookie(FLASH_COOKIE, path=PREFIX, secure=True, httponly=True)
    return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


#: A flash message's kinds (its CSS class): done, refused, done but with a warning.
_FLASH_KINDS = ("ok", "error", "warn")


def redirect(url: str, flash: str | None = None, kind: str = "ok") -> RedirectResponse:
    """See Other, with an optional message shown once on the next page (``kind``: one of
    ``_FLASH_KINDS``)."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        payload = base64.urlsafe_b64encode(json.dumps([kind, flash[:1500]]).encode()).decode()
        response.set_cookie(
            FLASH_COOKIE, payload, path=PREFIX, secure=True, httponly=True, samesite="strict"
        )
    return response


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        kind, message = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
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


# --- forms -----------------------------------------------------------------------------------


async def read_form(request: Request) -> FormData:
    """The posted form (already parsed by the CSRF check, so read once)."""
    return await request.form(max_files=MAX_IMPORT_FILES, max_part_size=MAX_FORM_BODY)


async def admin_form(request: Request, principal: Principal, what: str) -> FormData:
    """The posted form of a change only an administrator makes; an auditor is refused,
    ``what`` naming the change (``"adding a user"``)."""
    principal.require_admin(what)
    return await read_form(request)


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value if isinstance(value, str) else default


def texts(form: FormData, name: str) -> list[str]:
    return [value for value in form.getlist(name) if isinstance(value, str)]


def checked(form: FormData, name: str) -> bool:
    return text(form, name) not in ("", "0", "off", "false")


async def uploads(form: FormData, name: str) -> list[tuple[str, bytes]]:
    """The files of a file input (browsers send one empty part when none was chosen)."""
    files: list[tuple[str, bytes]] = []
    for value in form.getlist(name):
        if isinstance(value, UploadFile) and (value.filename or value.size):
            # One byte over the loader's limit is enough for it to say "file too large".
            files.append((value.filename or "upload", await value.read(MAX_FILE_SIZE + 1)))
    return files


#: A number typed into a form or a URL: ASCII digits (``str.isdigit`` also accepts "²", which
#: ``int`` refuses) and few enough of them for a 64-bit database column.
_NUMBER = re.compile(r"-?[0-9]{1,18}")


def number(value: str) -> int | None:
    """The number ``value`` spells, or None when it spells none (or one no column holds)."""
    text = value.strip()
    return int(text) if _NUMBER.fullmatch(text) else None


def identifiers(values: list[str]) -> list[int]:
    """The ids among checked boxes, each once, in order; anything else is ignored."""
    return sorted({found for value in values if (found := number(value) or 0) > 0})


def integer(value: str, field: str, default: int) -> int:
    if not value.strip():
        return default
    found = number(value)
    if found is None:
        raise ValidationError(field, f"{value[:40]!r} is not a number")
    return found


def sentence(message: str) -> str:
    """A service message (lower-case, no full stop) as a sentence for a page."""
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def notes(notices: Iterable[str]) -> str:
    """A service's notices, each a " Note: ..." sentence to end a flash message with."""
    return "".join(f" Note: {notice}." for notice in notices)


def field_errors(
    error: ValidationError, inputs: Collection[str], prefix: str = ""
) -> dict[str, str]:
    """Place a validation error beside its input (the last part of the field's key, see
    ``certgate.fields``) when the form has one of the ``inputs``, else at the top of the form.
    ``prefix``: the ids of a form's inputs on a page with two forms of the same names."""
    name = input_name(error.field)
    return {prefix + name if name in inputs else "form": error.reason}


TEMPLATES.env.filters["sentence"] = sentence
