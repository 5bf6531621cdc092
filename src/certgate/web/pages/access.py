"""Who may open a page (a logged-in user) or post its forms (with the session's CSRF token),
and the service calls a page makes for them, in a worker thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from certgate.errors import AuthenticationError
from certgate.service.appliance import Appliance
from certgate.service.auth import Principal
from certgate.web.pages.forms import read_form
from certgate.web.security import appliance_of, check_csrf, principal_of


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


def page_view(
    page: Callable[[Request, Principal], Awaitable[Response]],
) -> Callable[[Request, Principal], Awaitable[Response]]:
    """A page's GET view: ``page`` as it stands, nothing typed and no error, for any
    logged-in user (its forms' views call ``page`` again with what was typed)."""

    async def view(request: Request, principal: Viewer) -> Response:
        return await page(request, principal)

    return view


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
