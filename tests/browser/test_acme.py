"""Security > ACME in Chromium, against Pebble: the HTTP port turned on on SSL Configuration,
the account registered on the page, a certificate ordered with the form and assigned, the
order listed as valid with a link to the issued certificate, which the Certificates table
shows; an order by tls-alpn-01 the guard asks to confirm first (the address's hostname not
covered), confirmed; an order the CA cannot validate listed with the CA's problem document;
a renewal that fails said on the page and on its order's row."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.ui import UI
from tests.support.net import free_port
from tests.support.pebble import running_pebble
from tests.support.server import RunningAppliance, run_cli

Shot = Callable[[Page, str], None]


def test_acme_page_registers_orders_and_lists_the_issued_certificate(
    ui: UI, appliance: RunningAppliance, screenshot: Shot, tmp_path: Path
) -> None:
    page = ui.page
    http_port = free_port()
    security = page.get_by_role("navigation", name="Security pages")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Security").click()
    security.get_by_role("link", name="SSL Configuration").click()
    page.get_by_label("HTTP Port").fill(str(http_port))
    page.get_by_role("button", name="Save Configuration").click()
    expect(page.locator(".flash.ok")).to_contain_text("SSL configuration saved")

    with running_pebble(
        tmp_path / "pebble", appliance.address, http_port, tls_port=appliance.port
    ) as pebble:
        security.get_by_role("link", name="ACME").click()
        expect(page.get_by_role("heading", name="Security :: ACME")).to_be_visible()
        expect(page.get_by_text("No account yet.")).to_be_visible()
        page.get_by_label("Certificate Authority").select_option("custom")
        page.get_by_label("Directory URL").fill(pebble.directory_url)
        page.get_by_label("Contact Email").fill("ops@example.test")
        page.get_by_label("Terms of Service").check()
        page.get_by_label("CA Bundle").fill(pebble.ca_file.read_text())
        page.get_by_role("button", name="Save Account").click()
        expect(page.locator(".flash.ok")).to_contain_text("ACME account saved")
        expect(page.get_by_text(f"Registered at {pebble.directory_url}")).to_be_visible()

        page.get_by_label("Certificate Friendly Name").fill("browser-shop")
        page.get_by_label("Domains").fill("shop.example.test\nwww.shop.example.test")
        page.get_by_label("Key", exact=True).select_option("p256")
        page.get_by_role("checkbox", name=appliance.address).check()
        page.get_by_role("button", name="Order Certificate").click()
        expect(page.locator(".flash.ok")).to_contain_text(
            "Certificate 'browser-shop' issued (order 1) and imported", timeout=60_000
        )
        orders = page.locator("#acme-orders tbody tr")
        expect(orders.first).to_contain_text("valid")
        expect(orders.first).to_contain_text("shop.example.test, www.shop.example.test")
        orders.first.get_by_role("button", name="Renew Now").click()
        expect(page.locator(".flash.ok")).to_contain_text(
            "'browser-shop' renewed (order 2)", timeout=60_000
        )
        expect(orders.nth(1)).to_contain_text("renewed by order 2")

        run_cli(appliance.data_dir, "ip", "set", appliance.address, "--hostname", "gw.example.test")
        page.get_by_label("Certificate Friendly Name").fill("browser-alpn")
        page.get_by_label("Domains").fill("alpn.example.test")
        page.get_by_label("Challenge").select_option("tls-alpn-01")
        page.get_by_role("checkbox", name=appliance.address).check()
        page.get_by_role("button", name="Order Certificate").click()
        step = page.get_by_role("alertdialog", name="Confirm the change")
        expect(step).to_contain_text("do not cover gw.example.test")
        expect(orders).to_have_count(2)  # nothing was ordered yet
        step.get_by_role("button", name="Confirm").click()
        expect(page.locator(".flash.ok")).to_contain_text(
            "Certificate 'browser-alpn' issued (order 3) and imported", timeout=60_000
        )
        expect(orders.first).to_contain_text("alpn.example.test")

        page.get_by_label("Certificate Friendly Name").fill("nobody-home")
        page.get_by_label("Domains").fill("nobody.invalid.test")
        screenshot(page, "acme")

    # Pebble is gone: the CA cannot be reached, said beside the order form, which keeps
    # what was typed (it came back empty), and kept with the order.
    page.get_by_label("Key", exact=True).select_option("p256")
    page.get_by_label("Challenge").select_option("tls-alpn-01")
    page.get_by_role("button", name="Order Certificate").click()
    expect(page.locator("#order-form-error")).to_contain_text(
        "The certificate was not issued: ACME order 4 failed: cannot reach the ACME server"
    )
    expect(page.get_by_label("Certificate Friendly Name")).to_have_value("nobody-home")
    expect(page.get_by_label("Domains")).to_have_value("nobody.invalid.test")
    expect(page.get_by_label("Key", exact=True)).to_have_value("p256")
    expect(page.get_by_label("Challenge")).to_have_value("tls-alpn-01")
    expect(page.locator("#acme-orders tbody tr").first).to_contain_text("failed")
    # A renewal that fails is said on the page and, with its next try, on the order's row.
    alpn = page.locator("#acme-orders tbody tr").filter(
        has_text="alpn.example.test", has=page.get_by_role("button", name="Renew Now")
    )
    alpn.get_by_role("button", name="Renew Now").click()
    expect(page.locator(".flash.error")).to_contain_text(
        re.compile(r"^'browser-alpn' was not renewed: ACME order \d+ failed: cannot reach the")
    )
    expect(alpn.locator("p.warn")).to_contain_text(
        re.compile(
            r"^Renewal failed 1 time\(s\); next try \d{4}-\d\d-\d\d \d\d:\d\d UTC: "
            r"ACME order \d+ failed: cannot reach"
        )
    )

    page.locator("#acme-orders").get_by_role("link", name="browser-shop").first.click()
    expect(
        page.get_by_role(
            "heading", name="Security :: Certificates :: Edit Certificate Configuration"
        )
    ).to_be_visible()
    ui.certificates()
    # The renewed certificate secures the address; the one it renewed stays, on none.
    rows = page.locator("table.certificates tbody tr").filter(
        has=page.get_by_role("link", name="browser-shop", exact=True)
    )
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=appliance.address)).to_have_count(0)  # browser-alpn took it
