"""Issue 15, points 4, 5 and 11, in Chromium: what a click loses is said before it is lost,
the Edit page says what happens to an unchecked address (and never claims a save that
changed nothing), and shows pkilint's CA/Browser Forum findings with the warnings."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.ui import UI
from tests.support.openssl import OpensslCA
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
    ui.assign([], confirm=True)  # back to the factory's self-signed root: confirmed first
    assert _addresses(appliance) == {HOST: "certgate Appliance"}


def test_deleting_a_request_asks_first_naming_the_private_key_it_loses(
    ui: UI, appliance: RunningAppliance
) -> None:
    page = ui.page
    name = "pending.example.test"
    ui.create("Create Certificate Request", name, "pending.example.test", ["pending.example.test"])
    expect(page.locator(".flash.ok")).to_contain_text("Certificate request")

    def choose_delete() -> None:
        ui.certificates()
        page.get_by_label(f"Select request {name}").check()
        page.get_by_label("Select Action for requests").select_option(label="Delete")
        page.locator("form[action='/appliance/security/requests/action']").get_by_role(
            "button", name="Apply"
        ).click()
        expect(
            page.get_by_role("heading", name="Security :: Certificate Requests :: Delete")
        ).to_be_visible()

    choose_delete()
    chosen = page.locator("ul.chosen")
    expect(chosen).to_contain_text(name)
    expect(chosen).to_contain_text("Its private key is deleted with it and cannot be recovered")
    expect(chosen).to_contain_text(
        "If the private key is ever lost, the certificate the certificate authority issues for "
        "this request cannot be used and will have to be replaced"
    )
    page.get_by_role("link", name="Cancel").click()
    requests = page.locator("section", has=page.get_by_role("heading", name="Certificate Requests"))
    expect(requests).to_contain_text(name)  # Cancel lost nothing

    choose_delete()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(".flash.ok")).to_contain_text("deleted and its private key")
    expect(requests).not_to_contain_text(name)


def test_deleting_an_intermediate_names_the_chains_it_leaves_incomplete(
    ui: UI, appliance: RunningAppliance, openssl_ca: OpensslCA, tmp_path: Path
) -> None:
    page = ui.page
    leaf, key = openssl_ca.issue("chained.example.test", ["chained.example.test"], tmp_path / "l")
    ui.import_files(leaf, key, openssl_ca.intermediate, openssl_ca.root)
    intermediate_name = "Browser Test Issuing CA"  # issued_to: its Common Name
    leaf_name = "chained.example.test"
    ui.select_action([intermediate_name], "Delete")
    expect(page.locator("ul.chosen")).to_contain_text(
        "Issued under it, these certificates' chains become incomplete (no other issuer of "
        f"theirs is in the store): {leaf_name}."
    )
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(".flash.ok")).to_contain_text(f"Chain now incomplete: {leaf_name}.")


def test_the_edit_page_shows_what_a_public_ca_would_refuse_with_the_warnings(
    ui: UI, openssl_ca: OpensslCA, tmp_path: Path
) -> None:
    page = ui.page
    leaf, key = openssl_ca.issue("lint.example.com", ["lint.example.com"], tmp_path / "lint")
    ui.import_files(leaf, key, openssl_ca.intermediate, openssl_ca.root)
    ui.open_certificate("lint.example.com")
    findings = page.get_by_role("note").get_by_role(
        "region", name="CA/Browser Forum Baseline Requirements (pkilint)"
    )
    expect(findings).to_contain_text("error(s)")
    expect(findings.get_by_role("listitem").filter(has_text="Certificate policies")).to_have_text(
        "error Certificate policies extension absent "
        "cabf.serverauth.subscriber.certificate_policies_extension_absent"
    )
