"""The guard (issue 10, point 6) in Chromium: Save Configuration or Replace that would make an
address present a chain ending at another root shows a confirmation step naming both roots
and the guide's warnings; nothing changes (on the wire either) until Confirm. Leaving the
factory certificate and a replacement under the same root go through at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.ui import UI
from tests.support.pki import TestCA, fingerprint, issued_chain
from tests.support.polling import eventually
from tests.support.served import served_fingerprint, wait_until_served
from tests.support.server import RunningAppliance, import_with_key, run_cli

Shot = Callable[[Page, str], None]
ADDRESS = "127.0.0.2"


def test_a_change_of_root_is_confirmed_on_a_step_of_its_own(
    ui: UI, appliance: RunningAppliance, tmp_path: Path, screenshot: Shot
) -> None:
    a = TestCA.make(root_name="Example Root A", intermediate_name="Example Issuing A")
    b = TestCA.make(root_name="Example Root B", intermediate_name="Example Issuing B")
    chain_a = issued_chain(a, "a.example.test")
    chain_b = issued_chain(b, "b.example.test")
    site_a = import_with_key(appliance, tmp_path, chain_a, with_chain=True)
    import_with_key(appliance, tmp_path, chain_b, with_chain=True)
    page = ui.page

    # Off the factory certificate: saved at once.
    ui.open_certificate("a.example.test")
    ui.assign([ADDRESS])
    wait_until_served(ADDRESS, appliance.port, fingerprint(chain_a.leaf))

    # To another root: the confirmation step, naming both roots, and nothing changed.
    ui.open_certificate("b.example.test")
    page.get_by_label(f"{ADDRESS} (Currently assigned to Certificate: a.example.test)").check()
    page.get_by_role("button", name="Save Configuration").click()
    step = page.get_by_role("alertdialog", name="Confirm the change")
    expect(step).to_be_visible()
    concern = step.locator("tbody tr")
    expect(concern).to_have_count(1)
    expect(concern).to_contain_text(ADDRESS)
    expect(concern.locator("td").nth(1)).to_contain_text("a.example.test")
    expect(concern.locator("td").nth(1)).to_contain_text("Root: CN=Example Root A")
    expect(concern.locator("td").nth(2)).to_contain_text("b.example.test")
    expect(concern.locator("td").nth(2)).to_contain_text("Root: CN=Example Root B")
    expect(step).to_contain_text(
        "If this CA is changed without preparing the clients beforehand, then it is possible "
        "to permanently lose connectivity to the clients due to failed SSL validation."
    )
    expect(step).to_contain_text("You should not assign an IP address to a new certificate")
    screenshot(page, "confirm-change")
    assert served_fingerprint(ADDRESS, appliance.port) == fingerprint(chain_a.leaf)
    [address] = json.loads(run_cli(appliance.data_dir, "ip", "list", "--json").stdout)
    assert address["certificate_name"] == "a.example.test"

    step.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flash.ok")).to_contain_text("Configuration saved.")
    expect(page.locator(".flash.ok")).to_contain_text("The change was confirmed.")
    label = f"{ADDRESS} (Currently assigned to Certificate: This Certificate)"
    expect(page.get_by_label(label)).to_be_checked()
    wait_until_served(ADDRESS, appliance.port, fingerprint(chain_b.leaf))

    # A renewal under the same root replaces it with no question...
    renewed = issued_chain(b, "b.example.test", days=730)
    renewed_id = import_with_key(appliance, tmp_path, renewed, with_chain=True)
    page.reload()
    page.get_by_label("Replace with").select_option(value=str(renewed_id))
    page.get_by_role("button", name="Replace", exact=True).click()
    expect(page.locator(".flash.ok")).to_contain_text(f"{ADDRESS} now present 'b.example.test'")
    wait_until_served(ADDRESS, appliance.port, fingerprint(renewed.leaf))

    # ... and Replace with the one under Root A asks first.
    page.get_by_label("Replace with").select_option(value=str(site_a))
    page.get_by_role("button", name="Replace", exact=True).click()
    step = page.get_by_role("alertdialog", name="Confirm the change")
    expect(step.locator("tbody tr")).to_contain_text("Root: CN=Example Root B")
    expect(step.locator("tbody tr")).to_contain_text("Root: CN=Example Root A")
    assert served_fingerprint(ADDRESS, appliance.port) == fingerprint(renewed.leaf)
    step.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flash.ok")).to_contain_text(
        f"{ADDRESS} now present 'a.example.test' instead of 'b.example.test'"
    )
    wait_until_served(ADDRESS, appliance.port, fingerprint(chain_a.leaf))


def test_deleting_a_certificate_that_secures_an_address_says_what_clients_lose(
    ui: UI, appliance: RunningAppliance, tmp_path: Path
) -> None:
    """The delete confirmation offers the hand-over to the factory certificate with the
    guide's warning; without the box ticked nothing changes, with it the factory certificate
    is on the wire."""
    a = TestCA.make(root_name="Example Root A", intermediate_name="Example Issuing A")
    chain_a = issued_chain(a, "a.example.test")
    import_with_key(appliance, tmp_path, chain_a, with_chain=True)
    page = ui.page
    ui.open_certificate("a.example.test")
    ui.assign([ADDRESS])
    wait_until_served(ADDRESS, appliance.port, fingerprint(chain_a.leaf))

    ui.certificates()
    ui.select_action(["a.example.test"], "Delete")
    expect(page.get_by_text(f"Secures {ADDRESS}.")).to_be_visible()
    confirmation = page.locator("form", has_text="Delete these certificates?")
    expect(confirmation).to_contain_text("clients that trust these addresses")
    expect(confirmation).to_contain_text("permanently lose connectivity to the clients")
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(".flash.error")).to_contain_text("Not deleted: the certificate secures")
    assert served_fingerprint(ADDRESS, appliance.port) == fingerprint(chain_a.leaf)

    ui.select_action(["a.example.test"], "Delete")
    page.get_by_label("Hand their IP addresses to the factory default certificate").check()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(".flash.ok")).to_contain_text("Deleted: a.example.test")
    eventually(
        lambda: served_fingerprint(ADDRESS, appliance.port) != fingerprint(chain_a.leaf),
        what="the factory certificate served",
    )
