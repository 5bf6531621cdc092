"""Networking's Test button: the administrator sees what a browser will say of what an address
serves, from a real handshake with the running server."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.ui import UI
from tests.support.served import served_fingerprint
from tests.support.server import RunningAppliance

Shot = Callable[[Page, str], None]


def test_the_test_button_shows_the_served_chain_and_the_browser_verdict(
    ui: UI, appliance: RunningAppliance, screenshot: Shot
) -> None:
    page = ui.page
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Networking").click()
    page.get_by_role("button", name="Test 127.0.0.2").click()
    result = page.locator("#address-test")
    expect(result).to_contain_text(f"Test of 127.0.0.2 port {appliance.port}")
    # The factory certificate is self-signed: a browser warns that it is not trusted.
    expect(result.locator("[data-verdict]").first).to_have_attribute("data-verdict", "warns")
    expect(result).to_contain_text("not trusted")
    expect(result).to_contain_text("TLSv1.")
    expect(result).to_contain_text(served_fingerprint("127.0.0.2", appliance.port))
    screenshot(page, "networking-test")
