"""The node of an address on the Networking page (issue 12, point 2): an address is added
pinned to a node, a node that has never run is confirmed first (or cancelled), the row's
Node field makes it floating or pins it again, and the running serve follows on its wire."""

from __future__ import annotations

import socket
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.ui import UI
from tests.support.net import connection_refused
from tests.support.polling import eventually
from tests.support.served import handshake_succeeds
from tests.support.server import RunningAppliance, run_cli

Shot = Callable[[Page, str], None]
ADDRESS = "127.0.0.43"


def test_an_address_is_pinned_to_a_node_confirmed_then_made_floating_on_the_page(
    ui: UI, appliance: RunningAppliance, screenshot: Shot
) -> None:
    page, port = ui.page, appliance.port
    here = socket.gethostname()  # serve's default node name
    eventually(lambda: here in run_cli(appliance.data_dir, "node", "list").stdout)
    ui.goto("/appliance/networking")
    expect(page.locator('[data-node="127.0.0.2"] .node-name')).to_have_text("every node (floating)")

    # A node that has never run: the page asks first, naming the nodes it knows.
    page.get_by_label("IP Address", exact=True).fill(ADDRESS)
    page.get_by_label("Node", exact=True).fill("node-x")
    page.get_by_role("button", name="Add", exact=True).click()
    dialog = page.get_by_role("alertdialog", name=f"Pin {ADDRESS} to node node-x?")
    expect(dialog).to_contain_text(
        f"No node named node-x has run on this store (known nodes: {here})"
    )
    dialog.get_by_role("link", name="Cancel").click()
    expect(page.locator(f'[data-node="{ADDRESS}"]')).to_have_count(0)

    page.get_by_label("IP Address", exact=True).fill(ADDRESS)
    page.get_by_label("Node", exact=True).fill("node-x")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("button", name=f"Pin {ADDRESS} to node-x").click()
    expect(page.locator(".flash")).to_contain_text(f"{ADDRESS} added")
    expect(page.locator(".flash")).to_contain_text("Only node node-x serves it.")
    expect(page.locator(f'[data-node="{ADDRESS}"] .node-name')).to_have_text("node-x")
    assert connection_refused(ADDRESS, port)  # this serve is not node-x
    screenshot(page, "networking-nodes")

    # Status names the address nobody serves, and why.
    ui.goto("/appliance/status")
    expect(page.locator("#diagnostics li")).to_contain_text(
        f"{ADDRESS} is pinned to node 'node-x', which has never run on this store"
    )

    # A name that cannot be a node's is refused beside the row's field, as typed.
    ui.goto("/appliance/networking")
    field = page.get_by_label(f"Node of {ADDRESS}", exact=True)
    field.fill("n" * 65)
    page.get_by_role("button", name=f"Save the node of {ADDRESS}").click()
    field = page.get_by_label(f"Node of {ADDRESS}", exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#" + str(field.get_attribute("aria-describedby")))).to_contain_text(
        "longer than 64 characters"
    )

    # Blank: floating, so this serve listens on it at once.
    field.fill("")
    page.get_by_role("button", name=f"Save the node of {ADDRESS}").click()
    expect(page.locator(".flash")).to_contain_text(f"{ADDRESS}: every node serves it (floating).")
    eventually(lambda: handshake_succeeds(ADDRESS, port, timeout=1), what="serve binds it")

    # This serve's own node is known (offered by the field): pinned without a question.
    page.get_by_label(f"Node of {ADDRESS}", exact=True).fill(here)
    page.get_by_role("button", name=f"Save the node of {ADDRESS}").click()
    expect(page.locator(".flash")).to_contain_text(f"{ADDRESS}: only node {here} serves it.")
    expect(page.locator(f'[data-node="{ADDRESS}"] .node-name')).to_have_text(here)
    assert handshake_succeeds(ADDRESS, port)
    options = page.locator("#known-nodes option")
    expect(options).to_have_count(1)
    assert options.first.get_attribute("value") == here
