"""Errors of /appliance pages answered as pages: the login page when not logged in, an error
page otherwise (the API keeps answering problem+json)."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response
from starlette.routing import Match

from certgate.errors import (
    AuthenticationError,
    CertgateError,
    StoreUnavailableError,
    ThrottledError,
)
from certgate.service.serving import serving_without_store
from certgate.web.api.errors import retry_after
from certgate.web.pages.rendering import PREFIX, is_htmx, redirect, render, set_flash
from certgate.web.security import SESSION_COOKIE, appliance_of

SESSION_ENDED = "Your session has ended: log in again to continue."


def is_page(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def login_url(request: Request) -> str:
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    elif request.method != "GET":
        target = _page_of(request)
    return f"{PREFIX}/login?next={quote(target, safe='')}"


def _page_of(request: Request) -> str:
    """The nearest page at or above a form's action: where a form posted after the session
    ended leads back after the login (its action itself, /tokens/3/revoke say, answered a
    GET with 405)."""
    path = request.url.path
    while path.startswith(PREFIX + "/"):
        if answers_get(request, path):
            return path
        path = path.rsplit("/", 1)[0]
    return PREFIX


def answers_get(request: Request, path: str) -> bool:
    """Whether a route of the app answers a GET of ``path``: a page, not a form's action."""
    scope = {**request.scope, "method": "GET", "path": path}
    return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)


def page_error(request: Request, error: CertgateError) -> Response:
    if isinstance(error, AuthenticationError) and not isinstance(error, ThrottledError):
        url = login_url(request)
        # A browser that still sends a session cookie had a session that ended (idle,
        # its 12 hours, a password change): the login page says so, not just appears.
        ended = SESSION_ENDED if request.cookies.get(SESSION_COOKIE) else None
        if is_htmx(request):
            response = Response(status_code=204, headers={"HX-Redirect": url})
            if ended:
                set_flash(response, ended, "warn")
            return response
        return redirect(url, ended, "warn")
    note = None
    if isinstance(error, StoreUnavailableError):  # what the listeners do meanwhile
        note = serving_without_store(appliance_of(request))
    response = error_page(request, error.status, str(error), note)
    response.headers.update(retry_after(error))
    return response


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
