"""Errors of /appliance pages answered as pages: the login page when not logged in, an error
page otherwise (the API keeps answering problem+json)."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from certgate.errors import (
    AuthenticationError,
    CertgateError,
    StoreUnavailableError,
    ThrottledError,
)
from certgate.service.serving import serving_without_store
from certgate.web.pages.rendering import PREFIX, is_htmx, redirect, render
from certgate.web.security import appliance_of


def is_page(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def login_url(request: Request) -> str:
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return f"{PREFIX}/login?next={quote(target, safe='')}"


def page_error(request: Request, error: CertgateError) -> Response:
    if isinstance(error, AuthenticationError) and not isinstance(error, ThrottledError):
        url = login_url(request)
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": url})
        return redirect(url)
    note = None
    if isinstance(error, StoreUnavailableError):  # what the listeners do meanwhile
        note = serving_without_store(appliance_of(request))
    return error_page(request, error.status, str(error), note)


def error_page(
    request: Request, status_code: int, message: str, note: str | None = None
) -> Response:
    # The caller is known when the error came from a view (resolved once per request).
    principal = getattr(request.state, "principal", None)
    return render(
        request,
        "error.html",
        {
            "title": HTTPStatus(status_code).phrase,
            "status_code": status_code,
            "message": message,
            "note": note,
        },
        principal=principal,
        status_code=status_code,
    )
