"""The guide's workflows, walked in a browser against a real ``certgate serve``; after each
one the listener is checked as a client sees it (Python's ssl module, openssl s_client)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.ui import UI
from tests.support.openssl import OpensslCA, openssl, pem_subjects, served_chain
from tests.support.polling import eventually
from tests.support.served import (
    client_context,
    handshake,
    handshake_succeeds,
    wait_until_served,
)
from tests.support.server import RunningAppliance, run_cli, running_appliance

Shot = Callable[[Page, str], None]
HOST = "127.0.0.2"


def expiration(certificate: Path) -> str:
    """The Expiration column's text for a PEM certificate file."""
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    return cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S GMT")


def test_1_self_signed_certificate_assigned_to_an_address_is_served(
    ui: UI, appliance: RunningAppliance, screenshot: Shot
) -> None:
    page = ui.page
    ui.create(
        "Create Self-Signed Certificate",
        "access.example.test (May 2026)",
        "Example Access",
        ["access.example.test", "*.example.test"],
    )
    expect(page.locator(".flash.ok")).to_contain_text("Self-signed certificate")
    row = ui.row("access.example.test (May 2026)")
    expect(row).to_contain_text("dNSName - access.example.test")
    expect(row).to_contain_text("dNSName - *.example.test")
    expect(row.locator("td").nth(6)).to_have_text("N/A")  # not yet assigned to an address
    expect(row.locator("td").nth(7)).to_have_text("Yes")  # Private Key?
    # The factory row is there, marked, and says why it is not trusted.
    expect(ui.row("certgate Appliance")).to_contain_text("factory default")
    expect(ui.row("certgate Appliance")).to_contain_text("1 Warning(s)")

    row.get_by_role("link", name="Assign IP").click()
    expect(page.get_by_role("heading", name="Edit Certificate Configuration")).to_be_visible()
    expect(page.get_by_label(f"{HOST} (Currently assigned to Certificate: certgate Appliance)"))
    fingerprint = ui.fingerprint_on_edit_page()
    ui.assign([HOST])
    expect(
        page.get_by_label(f"{HOST} (Currently assigned to Certificate: This Certificate)")
    ).to_be_checked()

    wait_until_served(HOST, appliance.port, fingerprint)
    served = x509.load_der_x509_certificate(handshake(HOST, appliance.port).der)
    assert served.subject.rfc4514_string().startswith("CN=Example Access,OU=IT,O=Example Org")

    ui.certificates()
    expect(ui.row("access.example.test (May 2026)").locator("td").nth(6)).to_have_text(HOST)


def test_2_request_signed_by_a_ca_then_chain_imported_and_served(
    ui: UI,
    appliance: RunningAppliance,
    openssl_ca: OpensslCA,
    tmp_path: Path,
    screenshot: Shot,
) -> None:
    page = ui.page
    name = "shop.example.test 2026"
    ui.create(
        "Create Certificate Request",
        name,
        "shop.example.test",
        ["www.shop.example.test"],
        key="RSA 2048 bits",
    )
    expect(page.locator(".flash.ok")).to_contain_text("Certificate request")
    expect(page.get_by_role("heading", name="Request Data", exact=True)).to_be_visible()
    request_data = page.get_by_label("Request Data").input_value()
    assert request_data.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator(".copied")).not_to_be_empty()
    screenshot(page, "request-data")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download .csr").click()
    csr = tmp_path / "shop.csr"
    download.value.save_as(csr)
    assert download.value.suggested_filename.endswith(".csr")
    assert csr.read_text() == request_data

    # The request is listed; its subject opens the same Request Data.
    ui.certificates()
    requests = page.locator("section", has=page.get_by_role("heading", name="Certificate Requests"))
    expect(requests).to_contain_text("dNSName - shop.example.test")
    expect(requests).to_contain_text("dNSName - www.shop.example.test")
    requests.get_by_role("link", name="CN=shop.example.test", exact=False).click()
    expect(page.get_by_label("Request Data")).to_have_value(request_data)

    # The CA signs it; the certificate finds its key; the warnings go as the chain completes.
    signed = openssl_ca.sign(csr, tmp_path / "shop.crt")
    results = ui.import_files(signed)
    expect(results).to_contain_text("linked to its private key")
    screenshot(page, "import-results")
    assert "Browser Test Issuing CA" in ui.warnings_of(name)
    intermediate = ui.import_files(openssl_ca.intermediate)
    expect(intermediate).to_contain_text("Browser Test Issuing CA")
    remaining = ui.warnings_of(name)
    assert "incomplete" in remaining
    assert "Browser Test Root CA" in remaining
    ui.import_files(openssl_ca.root)
    assert ui.warnings_of(name) == ""
    expect(ui.row("Browser Test Root CA").locator("td").nth(7)).to_have_text("No")
    screenshot(page, "certificates")

    ui.open_certificate(name)
    chain = page.locator("ol.chain")
    expect(chain).to_contain_text("Browser Test Root CA")
    expect(chain).to_contain_text("Browser Test Issuing CA")
    fingerprint = ui.fingerprint_on_edit_page()
    ui.assign([HOST])
    screenshot(page, "edit-certificate-configuration")
    wait_until_served(HOST, appliance.port, fingerprint)

    sent = served_chain(HOST, appliance.port)
    names = pem_subjects(sent)
    assert "shop.example.test" in names[0]
    assert "Browser Test Issuing CA" in names[1]
    verified = openssl(
        "s_client", "-connect", f"{HOST}:{appliance.port}", "-CAfile", openssl_ca.root,
        "-verify_return_error", "-verify_hostname", "www.shop.example.test",
        stdin=b"",
    )  # fmt: skip
    assert "Verify return code: 0 (ok)" in verified


def test_3_pkcs12_export_copied_to_a_second_appliance_serves_the_same_certificate(
    ui: UI,
    appliance: RunningAppliance,
    openssl_ca: OpensslCA,
    new_context: Callable[[], BrowserContext],
    tmp_path: Path,
    screenshot: Shot,
) -> None:
    # The primary already serves a CA-signed certificate with its chain (set up as in 2).
    leaf, key = openssl_ca.issue("support.example.test", ["support.example.test"], tmp_path / "s")
    files = [str(path) for path in (leaf, key, openssl_ca.intermediate, openssl_ca.root)]
    run_cli(appliance.data_dir, "cert", "import", *files)
    ui.open_certificate("support.example.test")
    fingerprint = ui.fingerprint_on_edit_page()
    ui.assign([HOST])
    wait_until_served(HOST, appliance.port, fingerprint)

    # Export: certificate, private key with a passphrase, and the chain -> PKCS#12.
    ui.select_action(["support.example.test"], "Export")
    page = ui.page
    page.get_by_label("Include Private Key").check()
    page.get_by_label("Passphrase").fill("failover passphrase")
    page.get_by_label("Include Certificate Chain").check()
    expect(page.locator("#export-format")).to_have_text("PKCS#12 (.p12)")
    screenshot(page, "export")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export", exact=True).click()
    assert download.value.suggested_filename == "support.example.test.p12"
    exported = tmp_path / "support.p12"
    download.value.save_as(exported)
    listing = openssl("pkcs12", "-in", exported, "-passin", "pass:failover passphrase",
                      "-nokeys")  # fmt: skip
    assert listing.count("BEGIN CERTIFICATE") == 3

    # The backup appliance: its own data directory, process and address.
    with running_appliance(tmp_path / "backup", address="127.0.0.3") as backup:
        other = UI(new_context().new_page(), backup)
        other.login("admin", backup.admin_password)
        results = other.import_files(exported, password="failover passphrase")
        expect(results).to_contain_text("support.example.test")
        expect(results).not_to_contain_text("Error")
        other.open_certificate("support.example.test")
        assert other.fingerprint_on_edit_page() == fingerprint
        other.assign(["127.0.0.3"])
        wait_until_served("127.0.0.3", backup.port, fingerprint)
        assert handshake("127.0.0.3", backup.port).der == handshake(HOST, appliance.port).der
        assert served_chain("127.0.0.3", backup.port) == served_chain(HOST, appliance.port)


def test_4_renewed_certificate_links_to_its_key_takes_the_addresses_old_one_deleted(
    ui: UI,
    appliance: RunningAppliance,
    openssl_ca: OpensslCA,
    tmp_path: Path,
    screenshot: Shot,
) -> None:
    page = ui.page
    # A second address, added on the Networking page: it presents the factory certificate.
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Networking").click()
    page.get_by_label("IP Address").fill("127.0.0.4")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".flash.ok")).to_contain_text("127.0.0.4 added")
    expect(page.locator("table.grid")).to_contain_text("127.0.0.4")
    screenshot(page, "networking")

    # The certificate in production: key and request made elsewhere, signed for 30 days.
    key, csr = tmp_path / "renew.key", tmp_path / "renew.csr"
    openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=renew.example.test", "-addext", "subjectAltName=DNS:renew.example.test",
    )  # fmt: skip
    old = openssl_ca.sign(csr, tmp_path / "old.crt", days=30)
    run_cli(appliance.data_dir, "cert", "import", str(old), str(key))
    run_cli(
        appliance.data_dir, "cert", "import", str(openssl_ca.intermediate), str(openssl_ca.root)
    )
    ui.open_certificate("renew.example.test")
    old_fingerprint = ui.fingerprint_on_edit_page()
    ui.assign([HOST, "127.0.0.4"])
    wait_until_served("127.0.0.4", appliance.port, old_fingerprint)

    # The CA re-issues the certificate for the same key: import it; it links to the key.
    renewed = openssl_ca.sign(csr, tmp_path / "renewed.crt", days=400)
    results = ui.import_files(renewed)
    expect(results).to_contain_text("added and linked to its private key")
    ui.certificates()
    rows = ui.row("renew.example.test")
    expect(rows).to_have_count(2)
    new_row = rows.filter(has_text=expiration(renewed))
    expect(new_row.locator("td").nth(7)).to_have_text("Yes")

    # Move the addresses: on the new certificate's page they say who has them now.
    ui.open_certificate("renew.example.test", expiration(renewed))
    for address in (HOST, "127.0.0.4"):
        expect(
            page.get_by_label(f"{address} (Currently assigned to Certificate: renew.example.test)")
        ).not_to_be_checked()
    new_fingerprint = ui.fingerprint_on_edit_page()
    ui.assign([HOST, "127.0.0.4"])
    for address in (HOST, "127.0.0.4"):
        wait_until_served(address, appliance.port, new_fingerprint)

    # The old certificate secures nothing now: it can be deleted; the key stays.
    ui.select_action(["renew.example.test"], "Delete", expiration(old))
    expect(page.get_by_role("heading", name="Security :: Certificates :: Delete")).to_be_visible()
    expect(page.locator("ul.chosen")).to_contain_text(expiration(old))
    screenshot(page, "delete")
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(".flash.ok")).to_contain_text("Deleted: renew.example.test")
    expect(ui.row("renew.example.test")).to_have_count(1)
    expect(ui.row("renew.example.test")).to_contain_text(expiration(renewed))
    expect(ui.row("renew.example.test").locator("td").nth(7)).to_have_text("Yes")
    wait_until_served(HOST, appliance.port, new_fingerprint)


def test_5_auditor_changes_nothing_and_exports_no_key_and_forms_need_their_csrf_token(
    ui: UI,
    appliance: RunningAppliance,
    new_context: Callable[[], BrowserContext],
    screenshot: Shot,
) -> None:
    page = ui.page
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Users").click()
    page.get_by_label("Username").fill("audrey")
    page.get_by_label("Password", exact=True).fill("audit every thing")
    page.get_by_label("Role").select_option(label="Auditor (read-only)")
    page.get_by_role("button", name="Add User").click()
    expect(page.locator(".flash.ok")).to_contain_text("User audrey (auditor) added")
    screenshot(page, "users")

    auditor = UI(new_context().new_page(), appliance)
    auditor.login("audrey", "audit every thing")
    view = auditor.page
    auditor.certificates()
    expect(view.get_by_role("link", name="Create", exact=True)).to_have_count(0)
    expect(view.get_by_role("link", name="Import", exact=True)).to_have_count(0)
    expect(view.get_by_label("Select Action", exact=True).locator("option")).to_have_text(
        ["-- Select Action --", "Export"]
    )
    auditor.goto("/appliance/security/certificates/create")
    expect(view.locator("h1")).to_contain_text("403")

    # Edit page: read-only; a forged save is refused.
    auditor.open_certificate("certgate Appliance")
    expect(view.get_by_role("button", name="Save Configuration")).to_have_count(0)
    expect(view.get_by_label("Certificate Friendly Name")).to_have_attribute("readonly", "")
    token = auditor.csrf_token()
    edit_url = view.url
    refused = view.request.post(
        edit_url, multipart={"csrf_token": token, "friendly_name": "renamed by auditor"}
    )
    assert refused.status == 403
    assert "administrator" in refused.text()

    # Export: the certificate alone is fine; the private key is not offered, nor accepted.
    auditor.select_action(["certgate Appliance"], "Export")
    expect(view.get_by_label("Include Private Key")).to_be_disabled()
    export_url = view.url
    with view.expect_download() as download:
        view.get_by_role("button", name="Export", exact=True).click()
    assert download.value.suggested_filename == "certgate Appliance.cer"
    forged = view.request.post(
        export_url,
        form={
            "csrf_token": token,
            "include_certificate": "1",
            "include_private_key": "1",
            "passphrase": "stolen key please",
        },
    )
    assert forged.status == 403
    assert "PRIVATE KEY" not in forged.text() and forged.headers["content-type"].startswith(
        "text/html"
    )
    auditor.certificates()
    expect(auditor.row("certgate Appliance")).to_be_visible()  # nothing was renamed

    # CSRF: the administrator's own form, posted without its token, is refused.
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Networking").click()
    page.locator("form[action='/appliance/networking'] input[name=csrf_token]").evaluate(
        "element => element.remove()"
    )
    page.get_by_label("IP Address").fill("127.0.0.9")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("h1")).to_contain_text("403")
    expect(page.locator("main")).to_contain_text("CSRF token")
    ui.goto("/appliance/networking")
    expect(page.locator("table.grid")).not_to_contain_text("127.0.0.9")
    wrong = page.request.post(
        ui.base + "/appliance/networking", form={"csrf_token": "guess", "address": "127.0.0.9"}
    )
    assert wrong.status == 403


def test_listener_policy_follows_the_ssl_configuration_page(
    ui: UI, appliance: RunningAppliance, screenshot: Shot
) -> None:
    page = ui.page
    ui.goto("/appliance/security/ssl")
    tls12 = client_context(version=ssl.TLSVersion.TLSv1_2)
    assert handshake_succeeds(HOST, appliance.port, tls12)  # accepted by default
    page.get_by_label("Minimum TLS Version").select_option(label="TLS 1.3")
    page.get_by_role("button", name="Save Configuration").click()
    expect(page.locator(".flash.ok")).to_contain_text("SSL configuration saved")
    expect(page.get_by_label("Minimum TLS Version")).to_have_value("1.3")
    screenshot(page, "ssl-configuration")
    eventually(
        lambda: not handshake_succeeds(HOST, appliance.port, tls12),
        what="the listener refuses TLS 1.2 once the minimum is 1.3",
    )
    tls13 = client_context(version=ssl.TLSVersion.TLSv1_3)
    assert handshake_succeeds(HOST, appliance.port, tls13)


def test_connection_deadlines_are_set_on_the_ssl_configuration_page(
    ui: UI, appliance: RunningAppliance
) -> None:
    page = ui.page
    ui.goto("/appliance/security/ssl")
    header = page.get_by_label("Header timeout")
    expect(header).to_have_value("60")
    expect(page.get_by_label("Keep-alive timeout")).to_have_value("75")
    header.fill("soon")
    page.get_by_role("button", name="Save Configuration").click()
    expect(page.locator("#header_timeout-error")).to_contain_text("is not a number of seconds")
    expect(header).to_have_attribute("aria-invalid", "true")
    header.fill("0.01")
    page.get_by_role("button", name="Save Configuration").click()
    expect(page.locator("#header_timeout-error")).to_contain_text("between 0.1 and 3600")
    header.fill("30")
    page.get_by_label("Shutdown grace").fill("2.5")
    page.get_by_role("button", name="Save Configuration").click()
    expect(page.locator(".flash.ok")).to_contain_text("SSL configuration saved")
    expect(header).to_have_value("30")
    saved = json.loads(run_cli(appliance.data_dir, "tls", "show", "--json").stdout)
    assert (saved["header_timeout"], saved["shutdown_grace"], saved["send_timeout"]) == (
        30,
        2.5,
        60,
    )
