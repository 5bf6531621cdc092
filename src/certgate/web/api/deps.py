"""Who may call what: every endpoint has a principal (Bearer token or browser session);
session-authenticated changes carry the session's CSRF token; changes need an administrator.

The FastAPI security objects only document the two schemes in the OpenAPI document; the
caller is resolved by ``web.security`` (one resolution per request, shared with the pages).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from certgate.service.appliance import Appliance
from certgate.service.auth import Principal
from certgate.web.security import SESSION_COOKIE, appliance_of, check_csrf, require_principal

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token: `certgate token create`, or POST /api/v1/tokens.",
)
_session = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description="The /appliance login session. Changes also need the `X-CSRF-Token` header.",
)


async def _principal(
    request: Request,
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _cookie: Annotated[str | None, Depends(_session)],
) -> Principal:
    principal = await run_in_threadpool(require_principal, request)  # reads the store
    await check_csrf(request, principal)
    return principal


async def _changer(
    principal: Annotated[Principal, Depends(_principal)],
    _csrf: Annotated[
        str | None,
        Header(
            alias="X-CSRF-Token",
            description="With the session cookie: the session's CSRF token. Not needed with "
            "a Bearer token.",
        ),
    ] = None,
) -> Principal:
    return principal


async def _administrator(
    request: Request, principal: Annotated[Principal, Depends(_changer)]
) -> Principal:
    route = request.scope.get("route")
    principal.require_admin(getattr(route, "summary", None) or "this operation")
    return principal


#: Anyone logged in: administrators and auditors (safe methods).
Viewer = Annotated[Principal, Depends(_principal)]
#: Anyone logged in, for an unsafe method that an auditor may still use (an export
#: without the private key).
Caller = Annotated[Principal, Depends(_changer)]
#: An administrator: every change.
Admin = Annotated[Principal, Depends(_administrator)]


def _appliance(request: Request) -> Appliance:
    return appliance_of(request)


#: The appliance the app serves.
App = Annotated[Appliance, Depends(_appliance)]
