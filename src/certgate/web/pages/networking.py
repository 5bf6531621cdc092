"""Networking: the appliance's IP addresses and the certificate each one presents."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from certgate.errors import ConfirmationRequiredError, ValidationError
from certgate.service import networking
from certgate.service.addresstest import AddressTest, probe_address
from certgate.service.auth import Principal
from certgate.web.pages.common import (
    PREFIX,
    Poster,
    Viewer,
    appliance,
    checked,
    read_form,
    redirect,
    render,
    text,
)

router = APIRouter()
PAGE = PREFIX + "/networking"


async def _page(
    request: Request,
    principal: Principal,
    error: str = "",
    value: str = "",
    status_code: int = 200,
    confirm_remove: str = "",
    test: AddressTest | None = None,
) -> Response:
    addresses = await run_in_threadpool(networking.list_addresses, appliance(request))
    return render(
        request,
        "networking.html",
        {
            "title": "Networking :: IP Addresses",
            "section": "networking",
            "addresses": addresses,
            "error": error,
            "value": value,
            "confirm_remove": confirm_remove,
            "test": test,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get(PAGE)
async def networking_page(request: Request, principal: Viewer) -> Response:
    return await _page(request, principal)


@router.post(PAGE)
async def add_address(request: Request, principal: Poster) -> Response:
    principal.require_admin("adding an IP address")
    value = text(await read_form(request), "address")
    try:
        added = await run_in_threadpool(
            networking.add_address, appliance(request), value, principal.actor
        )
    except ValidationError as error:
        return await _page(request, principal, error.reason, value, 422)
    return redirect(
        PAGE,
        f"{added.address} added; it presents the factory default certificate until you assign "
        "another on that certificate's Edit Certificate Configuration page.",
    )


@router.post(PAGE + "/remove")
async def remove_address(request: Request, principal: Poster) -> Response:
    principal.require_admin("removing an IP address")
    form = await read_form(request)
    address = text(form, "address")
    try:
        await run_in_threadpool(
            functools.partial(
                networking.remove_address,
                appliance(request),
                address,
                principal.actor,
                confirm=checked(form, "confirm"),
            )
        )
    except ConfirmationRequiredError:
        return await _page(request, principal, confirm_remove=address)
    return redirect(PAGE, f"{address} removed.")


@router.post(PAGE + "/test")
async def test_address(request: Request, principal: Poster) -> Response:
    """Connects to the address as a browser would (in a thread: it waits on the network)."""
    address = text(await read_form(request), "address")
    report = await run_in_threadpool(probe_address, appliance(request), address)
    return await _page(request, principal, test=report)
