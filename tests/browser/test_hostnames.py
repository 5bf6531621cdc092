"""Hostnames on the Networking page (issue 10, point 5): the administrator tells certgate
which DNS names clients use for an address, sees at once which ones the assigned certificate
does not cover, finds the same warning with the certificate, and sees it go when a
certificate that covers them is assigned; the Test button connects with each name."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.ui import UI
from tests.support.server import RunningAppliance

Shot = Callable[[Page, str], None]


def _networking(ui: UI) -> None:
    ui.page.get_by_role("navigation", name="Sections").get_by_role(
        "link", name="Networking"
    ).click()
    expect(ui.page.get_by_role("heading", name="Networking :: IP Addresses")).to_be_visible()


def test_hostnames_are_added_on_the_networking_page_and_warned_about_until_covered(
    ui: UI, appliance: RunningAppliance, screenshot: Shot
) -> None:
    page = ui.page
    _networking(ui)
    field = page.get_by_label("Hostnames of 127.0.0.2", exact=True)
    save = page.get_by_role("button", name="Save the hostnames of 127.0.0.2")

    # A wildcard is not a name a client connects with: refused beside the input, as typed.
    field.fill("shop.example.test, *.example.test")
    save.click()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#" + str(field.get_attribute("aria-describedby")))).to_contain_text(
        "'*.example.test' is a wildcard"
    )
    expect(field).to_have_value("shop.example.test, *.example.test")

    field.fill("shop.example.test www.example.test")
    save.click()
    flash = page.locator(".flash.warn")
    expect(flash).to_contain_text(
        "Hostnames of 127.0.0.2 saved: shop.example.test, www.example.test."
    )
    expect(flash).to_contain_text("does not cover shop.example.test, www.example.test")
    cell = page.locator('[data-hostnames="127.0.0.2"]')
    expect(cell.get_by_text("not covered")).to_have_count(2)
    screenshot(page, "networking-hostnames")

    # The certificate the address presents carries the warning, on the Certificates page.
    warnings = ui.warnings_of("certgate Appliance")
    assert "does not cover the hostname(s) clients use" in warnings, warnings
    assert "shop.example.test (127.0.0.2), www.example.test (127.0.0.2)" in warnings

    # A certificate whose SANs cover both (a wildcard covers one label) ends the warning.
    # Before assigning, the Edit page says which hostnames of each address it would cover.
    ui.open_certificate("certgate Appliance")
    expect(page.locator('#ip-addresses [data-hostnames="127.0.0.2"]')).to_contain_text(
        "this certificate does not cover shop.example.test, www.example.test"
    )
    ui.create("Create Self-Signed Certificate", "shop", "shop.example.test", ["*.example.test"])
    ui.open_certificate("shop")
    hint = page.locator('#ip-addresses [data-hostnames="127.0.0.2"]')
    expect(hint).to_have_text("Hostnames: shop.example.test, www.example.test.")
    expect(page.get_by_role("checkbox", name="127.0.0.2")).to_have_accessible_description(
        "Hostnames: shop.example.test, www.example.test."
    )
    ui.assign(["127.0.0.2"])
    assert "does not cover" not in ui.warnings_of("shop")
    assert "does not cover" not in ui.warnings_of("certgate Appliance")
    _networking(ui)
    expect(cell.get_by_text("not covered")).to_have_count(0)

    # The Test button connects with each hostname as the server name.
    page.get_by_role("button", name="Test 127.0.0.2").click()
    result = page.locator("#address-test")
    expect(result.get_by_role("heading", name="As shop.example.test")).to_be_visible()
    expect(result.get_by_role("heading", name="As www.example.test")).to_be_visible()

    # Two labels below the wildcard are not covered: the warning is back, naming that name.
    field.fill("shop.example.test, a.b.example.test")
    save.click()
    expect(page.locator(".flash.warn")).to_contain_text("does not cover a.b.example.test")
    warnings = ui.warnings_of("shop")
    assert "a.b.example.test (127.0.0.2)" in warnings and "shop.example.test (" not in warnings

    # A new address can be given its hostnames as it is added.
    _networking(ui)
    page.get_by_label("IP Address", exact=True).fill("127.0.0.3")
    page.get_by_label("Hostnames", exact=True).fill("Portal.Example.test")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".flash.warn")).to_contain_text("127.0.0.3 added")
    expect(page.locator('[data-hostnames="127.0.0.3"]').get_by_role("listitem")).to_have_text(
        "portal.example.test not covered"
    )
