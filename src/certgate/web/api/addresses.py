"""/addresses: Networking's IP addresses, which certificate each presents and which node
serves it.

A new address presents the factory certificate until it is assigned; the listeners follow
every change at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from certgate.schemas import (
    Address,
    AddressChange,
    AddressTest,
    AddressTestOptions,
    Assignment,
    NewAddress,
)
from certgate.service import addresstest, networking
from certgate.web.api.deps import Admin, App, Caller, Viewer
from certgate.web.api.openapi import CREATED, NO_CONTENT, problem_responses
from certgate.web.api.paths import locate

router = APIRouter(prefix="/addresses", tags=["addresses"])

AddressPath = Annotated[
    str,
    Path(
        max_length=64,
        description="An IPv4 or IPv6 address of the appliance.",
        examples=["192.0.2.10"],
    ),
]


@router.get("", summary="List IP addresses")
def list_addresses(app: App, _: Viewer) -> list[Address]:
    """Each address with the certificate it is currently assigned to."""
    return [Address.model_validate(view) for view in networking.list_addresses(app)]


@router.post("", summary="Add an IP address", **CREATED, responses=problem_responses(409, 422))
def add_address(app: App, principal: Admin, body: NewAddress, response: Response) -> Address:
    """The new address presents the factory certificate until a certificate is assigned.
    ``hostnames``: the DNS names clients will use to reach it. ``node``: the one node that
    serves it; without one the address is floating and every node serves it. A node that has
    never run on this store needs ``"confirm": true`` (409 unknown-node otherwise)."""
    view = networking.add_address(
        app, body.address, principal.actor, body.hostnames, body.node, confirm=body.confirm
    )
    locate(response, router.prefix, view.address)
    return Address.model_validate(view)


@router.put(
    "/{address}",
    summary="Assign a certificate to an IP address",
    responses=problem_responses(404, 409, 422),
)
def assign_address(app: App, principal: Admin, address: AddressPath, body: Assignment) -> Address:
    """The address presents the certificate at once. Only a certificate whose private key is
    available can be assigned (422 key-missing otherwise). A certificate whose chain ends at
    another root than the address's does now (self-signed to CA-signed and back), or one
    clients will refuse (expired, not yet valid, incomplete chain, a hostname of the address
    not covered), is assigned only with ``"confirm": true`` (409 unconfirmed-change
    otherwise, each reason in ``concerns``; nothing changed). Leaving the factory
    certificate, or a certificate under the same root, needs no confirmation."""
    (view,) = networking.assign(
        app, [address], body.certificate, principal.actor, confirm=body.confirm
    )
    return Address.model_validate(view)


@router.get("/{address}", summary="Show an IP address", responses=problem_responses(404, 422))
def show_address(app: App, _: Viewer, address: AddressPath) -> Address:
    """The certificate the address presents and the hostnames clients use to reach it."""
    return Address.model_validate(networking.show_address(app, address))


@router.patch(
    "/{address}",
    summary="Change an IP address's hostnames or node",
    responses=problem_responses(404, 409, 422),
)
def change_address(
    app: App, principal: Admin, address: AddressPath, body: AddressChange
) -> Address:
    """``hostnames`` replaces the DNS names clients use to reach the address (``[]`` clears
    them); each is checked before anything changes. The certificate the address presents
    is warned about (``hostname-not-covered``) when it does not cover one of them.
    ``node`` pins the address to one node, ``"node": null`` makes it floating (every node
    serves it); the nodes follow at once. A node that has never run on this store needs
    ``"confirm": true`` (409 unknown-node otherwise, nothing changed). One transaction."""
    node_given = "node" in body.model_fields_set
    view = networking.change_address(
        app,
        address,
        principal.actor,
        hostnames=body.hostnames,
        node=body.node,
        floating=node_given and body.node is None,
        confirm=body.confirm,
    )
    return Address.model_validate(view)


@router.post(
    "/{address}/test",
    summary="Test what an IP address really serves",
    responses=problem_responses(404, 422),
)
def test_address(
    app: App, _: Caller, address: AddressPath, body: AddressTestOptions | None = None
) -> AddressTest:
    """Connects to the address as a browser would (real TLS; SNI = the given hostname, else
    each hostname of the address, else each DNS name of its certificate) and reports the
    chain presented, whether it validates to a root of the store or of the system trust
    store, the hostname match, the days left, the protocol and cipher. Nothing listening or a
    refused handshake is a result, not an error."""
    options = body or AddressTestOptions()
    report = addresstest.probe_address(app, address, options.hostname, options.port)
    return AddressTest.model_validate(report)


@router.delete(
    "/{address}",
    summary="Remove an IP address",
    **NO_CONTENT,
    responses=problem_responses(404, 409, 422),
)
def remove_address(
    app: App,
    principal: Admin,
    address: AddressPath,
    confirm: Annotated[
        bool,
        Query(
            description="Required to remove the last address: that locks the administrator "
            "out of the pages (409 confirmation-required otherwise)."
        ),
    ] = False,
) -> None:
    networking.remove_address(app, address, principal.actor, confirm=confirm)
