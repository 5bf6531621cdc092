"""Networking: the appliance's IP addresses, the certificate each one presents and the node
that serves it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.errors import (
    ConfirmationRequiredError,
    ConflictError,
    UnknownNodeError,
    ValidationError,
)
from certgate.fields import input_name
from certgate.service import networking
from certgate.service.addresstest import AddressTest, probe_address
from certgate.service.auth import Principal
from certgate.web.pages.access import Poster, call, page_view
from certgate.web.pages.forms import admin_form, checked, read_form, text
from certgate.web.pages.rendering import PREFIX, redirect, render

router = APIRouter()
PAGE = PREFIX + "/networking"


@dataclass(frozen=True)
class HostnamesError:
    """A refused list of hostnames, shown beside its address's input as typed."""

    address: str
    value: str
    message: str


@dataclass(frozen=True)
class NodeChoice:
    """A node name typed for an address: refused beside its input (``message``), or to be
    confirmed (``confirm``: the node has never run here) before it is saved. ``adding``: the
    Add form's (``hostnames`` as typed there), else the address's own row."""

    address: str
    value: str
    message: str = ""
    confirm: bool = False
    adding: bool = False
    hostnames: str = ""
    known: tuple[str, ...] = ()


def _node(value: str) -> str | None:
    """The node typed (blank: none, the address is floating)."""
    return value.strip() or None


def _hostnames(value: str) -> list[str]:
    """The hostnames typed in one input, separated by commas or spaces."""
    return [name for name in re.split(r"[\s,]+", value) if name]


async def _page(
    request: Request,
    principal: Principal,
    error: str = "",
    value: str = "",
    status_code: int = 200,
    confirm_remove: str = "",
    test: AddressTest | None = None,
    hostnames_value: str = "",
    hostnames_add_error: str = "",
    hostnames_error: HostnamesError | None = None,
    node_choice: NodeChoice | None = None,
) -> Response:
    addresses = await call(request, networking.list_addresses)
    known_nodes = await call(request, networking.node_names)
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
            "hostnames_value": hostnames_value,
            "hostnames_add_error": hostnames_add_error,
            "hostnames_error": hostnames_error,
            "node_choice": node_choice,
            "known_nodes": known_nodes,
            "floating_text": networking.FLOATING_TEXT,
        },
        principal=principal,
        status_code=status_code,
    )


router.get(PAGE)(page_view(_page))


@router.post(PAGE)
async def add_address(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "adding an IP address")
    value, names, node = text(form, "address"), text(form, "hostnames"), text(form, "node")
    try:
        added = await call(
            request,
            networking.add_address,
            value,
            principal.actor,
            _hostnames(names),
            _node(node),
            confirm=checked(form, "confirm"),
        )
    except UnknownNodeError as error:
        choice = NodeChoice(
            value, node, confirm=True, adding=True, hostnames=names, known=error.known
        )
        return await _page(request, principal, value=value, status_code=409, node_choice=choice)
    except ConflictError as error:  # already configured: beside the address, as typed
        return await _page(
            request,
            principal,
            str(error),
            value,
            error.status,
            hostnames_value=names,
            node_choice=NodeChoice(value, node, adding=True, hostnames=names),
        )
    except ValidationError as error:
        field = input_name(error.field)
        return await _page(
            request,
            principal,
            "" if field in ("hostnames", "node") else error.reason,
            value,
            422,
            hostnames_value=names,
            hostnames_add_error=error.reason if field == "hostnames" else "",
            node_choice=NodeChoice(
                value,
                node,
                error.reason if field == "node" else "",
                adding=True,
                hostnames=names,
            ),
        )
    return redirect(
        PAGE,
        f"{added.address} added; it presents the factory default certificate until you assign "
        "another on that certificate's Edit Certificate Configuration page."
        + _node_note(added)
        + _coverage_note(added),
        _flash_kind(added),
    )


@router.post(PAGE + "/node")
async def set_node(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "changing the node of an IP address")
    address, node = text(form, "address"), text(form, "node")
    try:
        view = await call(
            request,
            networking.set_node,
            address,
            _node(node),
            principal.actor,
            confirm=checked(form, "confirm"),
        )
    except UnknownNodeError as error:
        choice = NodeChoice(address, node, confirm=True, known=error.known)
        return await _page(request, principal, status_code=409, node_choice=choice)
    except ValidationError as error:
        choice = NodeChoice(address, node, error.reason)
        return await _page(request, principal, status_code=422, node_choice=choice)
    return redirect(PAGE, f"{view.address}: {_node_text(view)}.")


def _node_text(view: networking.AddressView) -> str:
    if view.node is None:
        return "every node serves it (floating)"
    return f"only node {view.node} serves it"


def _node_note(view: networking.AddressView) -> str:
    return f" Only node {view.node} serves it." if view.node is not None else ""


@router.post(PAGE + "/hostnames")
async def set_hostnames(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "changing the hostnames of an IP address")
    address, names = text(form, "address"), text(form, "hostnames")
    try:
        view = await call(
            request, networking.set_hostnames, address, _hostnames(names), principal.actor
        )
    except ValidationError as error:
        refused = HostnamesError(address, names, error.reason)
        return await _page(request, principal, status_code=422, hostnames_error=refused)
    saved = ", ".join(view.hostnames) or "none"
    message = f"Hostnames of {view.address} saved: {saved}." + _coverage_note(view)
    return redirect(PAGE, message, _flash_kind(view))


def _coverage_note(view: networking.AddressView) -> str:
    note = networking.coverage_note(view)
    return f" Warning: {note}." if note else ""


def _flash_kind(view: networking.AddressView) -> str:
    return "warn" if view.hostnames_not_covered else "ok"


@router.post(PAGE + "/remove")
async def remove_address(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "removing an IP address")
    address = text(form, "address")
    try:
        await call(
            request,
            networking.remove_address,
            address,
            principal.actor,
            confirm=checked(form, "confirm"),
        )
    except ConfirmationRequiredError:
        return await _page(request, principal, confirm_remove=address)
    return redirect(PAGE, f"{address} removed.")


@router.post(PAGE + "/test")
async def test_address(request: Request, principal: Poster) -> Response:
    """Connects to the address as a browser would (in a thread: it waits on the network)."""
    address = text(await read_form(request), "address")
    report = await call(request, probe_address, address)
    return await _page(request, principal, test=report)
