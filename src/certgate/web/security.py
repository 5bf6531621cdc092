"""Who is calling each request (session cookie or Bearer token) and CSRF on forms."""

from __future__ import annotations

from fastapi import Request

from certgate.errors import AuthenticationError, ForbiddenError
from certgate.service import auth
from certgate.service.appliance import Appliance

#: ``__Host-``: Secure, Path=/, no Domain, so only this host sets it (a sibling subdomain
#: could set a plain name for the parent domain); one under the old name is ignored.
SESSION_COOKIE = "__Host-certgate_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def appliance_of(request: Request) -> Appliance:
    app: Appliance = request.app.state.appliance
    return app


def client_address(request: Request) -> str:
    """Where a request comes from, as the audit trail and the login throttle name it."""
    return request.client.host if request.client else "unknown"


def principal_of(request: Request) -> auth.Principal | None:
    """The caller, resolved once per request (Bearer token first, then the session)."""
    if hasattr(request.state, "principal"):
        cached: auth.Principal | None = request.state.principal
        return cached
    app = appliance_of(request)
    principal: auth.Principal | None = None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        principal = auth.resolve_token(app, header[7:].strip(), client_address(request))
    elif cookie := request.cookies.get(SESSION_COOKIE):
        principal = auth.resolve_session(app, cookie, client_address(request))
    request.state.principal = principal
    return principal


def require_principal(request: Request) -> auth.Principal:
    principal = principal_of(request)
    if principal is None:
        raise AuthenticationError("log in, or send an API token as 'Authorization: Bearer'")
    return principal


async def check_csrf(request: Request, principal: auth.Principal) -> None:
    """Session-authenticated changes must carry the session's CSRF token (header or field)."""
    if request.method not in UNSAFE_METHODS or principal.via != "session":
        return
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        presented = field if isinstance(field, str) else None
    if not auth.csrf_matches(principal, presented):
        raise ForbiddenError("the form's CSRF token is missing or wrong: reload the page")
