"""The node of an address through the API (issue 12, point 2): ``node`` on create and in
``PATCH /addresses/{address}`` (``null``: floating), ``409 unknown-node`` for a node that has
never run unless confirmed, and the running serve (a node named by the host name) following
on its wire: it listens on an address pinned to it or floating, not on another node's."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.api.client import Server, mint_token, ok, problem
from tests.support.net import connection_refused
from tests.support.polling import eventually
from tests.support.served import handshake_succeeds

ADDRESS = "127.0.0.42"


@pytest.fixture
def api(primary: Server) -> Iterator[httpx.Client]:
    """An administrator's client; the address it adds is removed afterwards."""
    with primary.client() as client:
        try:
            yield client
        finally:
            client.delete(f"/addresses/{ADDRESS}")


def test_pin_an_address_to_a_node_make_it_floating_and_the_serve_follows(
    primary: Server, api: httpx.Client
) -> None:
    port, here = primary.running.port, socket.gethostname()  # serve's default node name
    refused = problem(
        api.post("/addresses", json={"address": ADDRESS, "node": "node-x"}), 409, "unknown-node"
    )
    assert f"no node named 'node-x' has run on this store (known: {here})" in refused["detail"]
    problem(api.get(f"/addresses/{ADDRESS}"), 404, "not-found")  # nothing was added

    created = ok(
        api.post("/addresses", json={"address": ADDRESS, "node": "node-x", "confirm": True}),
        201,
    )
    assert created["node"] == "node-x"
    assert ok(api.get(f"/addresses/{ADDRESS}")) == created
    assert {item["address"]: item["node"] for item in ok(api.get("/addresses"))}[ADDRESS] == (
        "node-x"
    )
    assert connection_refused(ADDRESS, port)  # another node's address

    # Omitted: unchanged. null: floating, so this serve listens on it too.
    named = ok(api.patch(f"/addresses/{ADDRESS}", json={"hostnames": ["x.example.test"]}))
    assert (named["hostnames"], named["node"]) == (["x.example.test"], "node-x")
    floating = ok(api.patch(f"/addresses/{ADDRESS}", json={"node": None}))
    assert (floating["hostnames"], floating["node"]) == (["x.example.test"], None)
    eventually(lambda: handshake_succeeds(ADDRESS, port, timeout=1), what="serve binds it")

    # Pinned to this serve's own node (it has run: no confirmation), then to another one.
    assert ok(api.patch(f"/addresses/{ADDRESS}", json={"node": here}))["node"] == here
    assert handshake_succeeds(ADDRESS, port)
    problem(api.patch(f"/addresses/{ADDRESS}", json={"node": "node-y"}), 409, "unknown-node")
    assert ok(api.get(f"/addresses/{ADDRESS}"))["node"] == here  # nothing changed
    pinned = api.patch(f"/addresses/{ADDRESS}", json={"node": "node-y", "confirm": True})
    assert ok(pinned)["node"] == "node-y"
    eventually(lambda: connection_refused(ADDRESS, port), what="serve lets it go")

    events = ok(api.get("/audit", params={"action": "address.node"}))["events"]
    assert [event["detail"] for event in events[:3]] == [
        "node: node-y",
        f"node: {here}",
        "floating",
    ]


@pytest.mark.parametrize("node", ["", "a\nb", "n" * 65, 7])
def test_a_node_that_is_no_name_is_refused(api: httpx.Client, node: object) -> None:
    for sent in (
        api.post("/addresses", json={"address": ADDRESS, "node": node}),
        api.patch("/addresses/127.0.0.2", json={"node": node}),
    ):
        refused = problem(sent, 422, "validation")
        assert refused["errors"][0]["field"] == "node", refused


def test_an_auditor_cannot_change_the_node(primary: Server) -> None:
    token = mint_token(primary.running.data_dir, "node-auditor", "auditor")
    with primary.client(token) as auditor:
        problem(auditor.patch("/addresses/127.0.0.2", json={"node": None}), 403, "forbidden")
        assert ok(auditor.get("/addresses/127.0.0.2"))["node"] is None


def test_the_openapi_document_describes_the_node(api: httpx.Client) -> None:
    schemas = ok(api.get("/openapi.json"))["components"]["schemas"]
    assert "floating" in schemas["Address"]["properties"]["node"]["description"]
    for name in ("NewAddress", "AddressChange"):
        assert {"node", "confirm"} <= schemas[name]["properties"].keys()
        assert "unknown-node" in schemas[name]["properties"]["confirm"]["description"]
