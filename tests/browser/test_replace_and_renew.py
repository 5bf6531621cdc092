"""Issue 10, points 3 and 4 in Chromium: a certificate's page offers "Replace with ...",
which moves every address it secures to the certificate chosen (live on the wire), and
"Create Renewal Request", the Create form pre-filled from the certificate, signed with its
key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.ui import UI
from tests.support.pki import TestCA, fingerprint, issued_chain, make_chain
from tests.support.served import wait_until_served
from tests.support.server import RunningAppliance, import_with_key, run_cli

Shot = Callable[[Page, str], None]
ADDRESSES = ("127.0.0.2", "127.0.0.3")


def test_replace_with_moves_every_address_of_the_certificate(
    ui: UI, appliance: RunningAppliance, tmp_path: Path, screenshot: Shot
) -> None:
    run_cli(appliance.data_dir, "ip", "add", ADDRESSES[1])
    ca = TestCA.make()  # one root: a replacement under it needs no confirmation
    old_chain = issued_chain(ca, "old.example.test")
    new_chain = issued_chain(ca, "new.example.test", days=730)
    old = import_with_key(appliance, tmp_path, old_chain, with_chain=True)
    new = import_with_key(appliance, tmp_path, new_chain, with_chain=True)
    run_cli(appliance.data_dir, "ip", "assign", *ADDRESSES, "--cert", str(old))
    for address in ADDRESSES:
        wait_until_served(address, appliance.port, fingerprint(old_chain.leaf))

    page = ui.page
    ui.open_certificate("old.example.test")
    panel = page.locator("#replace")
    expect(panel).to_contain_text("127.0.0.2, 127.0.0.3")
    expect(panel).to_contain_text("may then be removed and/or revoked")
    chooser = page.get_by_label("Replace with")
    options = chooser.locator("option")
    expect(options).to_have_count(2)  # the new one first, the factory certificate last
    expect(options.first).to_have_attribute("value", str(new))
    expect(options.last).to_contain_text("certgate Appliance")
    chooser.select_option(value=str(new))
    screenshot(page, "replace-with")
    page.get_by_role("button", name="Replace", exact=True).click()

    flash = page.locator(".flash.ok")
    expect(flash).to_contain_text(
        "127.0.0.2, 127.0.0.3 now present 'new.example.test' instead of 'old.example.test': "
        "live on the next handshake."
    )
    expect(flash).to_contain_text("may be removed and/or revoked as necessary")
    assert ui.fingerprint_on_edit_page() == fingerprint(new_chain.leaf)  # the new one's page
    for address in ADDRESSES:
        label = f"{address} (Currently assigned to Certificate: This Certificate)"
        expect(page.get_by_label(label)).to_be_checked()
        wait_until_served(address, appliance.port, fingerprint(new_chain.leaf))

    ui.open_certificate("old.example.test")  # it stays, securing nothing: nothing to replace
    expect(page.locator("#replace")).to_have_count(0)


def test_create_renewal_request_from_the_certificates_page(
    ui: UI, appliance: RunningAppliance, tmp_path: Path
) -> None:
    chain = make_chain("renew.example.test")
    import_with_key(appliance, tmp_path, chain)
    page = ui.page
    ui.open_certificate("renew.example.test")
    page.get_by_role("link", name="Create Renewal Request").click()
    expect(
        page.get_by_role("heading", name="Security :: Certificates :: Renewal Request")
    ).to_be_visible()
    expect(page.get_by_label("Certificate Friendly Name")).to_have_value(
        "renew.example.test (renewal)"
    )
    expect(page.get_by_label("Name (Common Name)")).to_have_value("renew.example.test")
    expect(page.get_by_role("list", name="Added names")).to_contain_text("renew.example.test")
    expect(page.get_by_label("Key", exact=True)).to_have_count(0)  # the certificate's key
    page.get_by_label("Organization", exact=True).fill("Business Company")
    page.get_by_role("button", name="Create Renewal Request").click()

    expect(page.get_by_role("heading", name="Request Data", exact=True)).to_be_visible()
    expect(page.locator(".flash.ok")).to_contain_text("Renewal request created")
    expect(page.locator("table.facts")).to_contain_text("CN=renew.example.test, O=Business Company")
