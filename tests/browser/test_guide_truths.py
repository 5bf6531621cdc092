"""Issue 15, points 4 and 5, in Chromium: what a click loses is said before it is lost, and
the Edit page says what happens to an unchecked address (and never claims a save that
changed nothing)."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.ui import UI
from tests.support.server import RunningAppliance, run_cli

HOST = "127.0.0.2"


def _addresses(appliance: RunningAppliance) -> dict[str, str]:
    listed = json.loads(run_cli(appliance.data_dir, "ip", "list", "--json").stdout)
    return {entry["address"]: entry["certificate_name"] for entry in listed}


def test_the_factory_certificate_page_says_what_unchecking_does_and_claims_no_save(
    ui: UI, appliance: RunningAppliance
) -> None:
    page = ui.page
    ui.open_certificate("certgate Appliance")
    addresses = page.locator("#ip-addresses")
    expect(addresses).to_contain_text(
        "An unchecked address goes back to the factory default certificate, and this is it"
    )
    page.get_by_label(f"{HOST} (Currently assigned to Certificate: This Certificate)").uncheck()
    page.get_by_role("button", name="Save Configuration").click()
    expect(addresses).to_contain_text(f"{HOST} cannot be unchecked on the factory certificate")
    expect(page.locator(".flash.ok")).to_have_count(0)
    assert _addresses(appliance) == {HOST: "certgate Appliance"}  # nothing changed


def test_another_certificate_page_says_an_unchecked_address_goes_back_to_the_factory(
    ui: UI, appliance: RunningAppliance
) -> None:
    page = ui.page
    ui.create("Create Self-Signed Certificate", "site", "site.example.test", ["site.example.test"])
    ui.open_certificate("site")
    expect(page.locator("#ip-addresses")).to_contain_text(
        "An unchecked address that presents this certificate goes back to the factory default "
        "certificate when you save"
    )
    ui.assign([HOST])
    assert _addresses(appliance) == {HOST: "site"}
    ui.assign([])
    assert _addresses(appliance) == {HOST: "certgate Appliance"}
