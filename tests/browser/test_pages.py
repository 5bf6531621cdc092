"""Each page's own promises: login and sessions, labels, errors beside their field, the
Certificates table at scale, users, tokens, and no private key ever rendered."""

from __future__ import annotations

import datetime as dt
import json
import platform
import re
import socket
import ssl
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import text

from certgate.service import nodes
from certgate.service.appliance import Appliance
from certgate.web.security import SESSION_COOKIE
from tests.browser.ui import UI
from tests.support.guide import APPLIANCE_STATISTICS
from tests.support.pki import issue, name, new_key
from tests.support.polling import eventually
from tests.support.served import served_fingerprint
from tests.support.server import RunningAppliance, run_cli

Shot = Callable[[Page, str], None]


def test_login_sets_a_strict_session_cookie_and_logout_ends_it(
    page: Page, appliance: RunningAppliance, screenshot: Shot
) -> None:
    ui = UI(page, appliance)
    ui.goto("/appliance/security/certificates")
    expect(page).to_have_url(re.compile(r"/appliance/login\?next="))
    expect(page.get_by_label("Username")).to_be_focused()
    screenshot(page, "login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")

    ui.login("admin", appliance.admin_password)
    session = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"
    # After login, the page first asked for (Security > Certificates) is where we land.
    ui.goto("/appliance/login?next=%2Fappliance%2Fsecurity%2Fcertificates")
    expect(page.get_by_role("heading", name="Security :: Certificates")).to_be_visible()
    ui.goto("/appliance/login?next=https%3A%2F%2Fevil.example%2F")
    assert page.url.startswith(ui.base + "/appliance")  # never redirected off the appliance

    ui.logout()
    expect(page.locator(".flash.ok")).to_have_text("You have logged out.")
    ui.goto("/appliance/status")
    expect(page).to_have_url(re.compile(r"/appliance/login"))


def test_repeated_failed_logins_are_throttled(page: Page, appliance: RunningAppliance) -> None:
    ui = UI(page, appliance)
    ui.goto("/appliance/login")
    for _ in range(5):
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("guess")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(appliance.admin_password)  # even the right one now
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed logins")


def test_status_basics_shows_the_appliance_statistics_and_the_listeners(
    ui: UI, appliance: RunningAppliance, screenshot: Shot
) -> None:
    page = ui.page
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Status").click()
    table = page.get_by_role("table", name="Appliance Statistics")
    for label in APPLIANCE_STATISTICS:
        expect(table.get_by_role("rowheader", name=label, exact=True)).to_be_visible()
    firmware = table.get_by_role("row", name=re.compile("^Firmware Version"))
    expect(firmware).to_contain_text(platform.release())
    expect(table.locator("#diagnostic-status")).to_have_text("Healthy")
    listener = page.locator("#listeners tr", has_text="127.0.0.2")  # not the node's Holds
    expect(listener).to_contain_text("listening")
    expect(listener).to_contain_text(str(appliance.port))
    expect(listener).to_contain_text("certgate Appliance")
    expect(page.get_by_text("Served by 1 worker process of certgate serve")).to_be_visible()
    screenshot(page, "status-basics")

    # An address whose port something else holds: Diagnostic Status names it, as an error.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.3", appliance.port))
        squatter.listen()
        run_cli(appliance.data_dir, "ip", "add", "127.0.0.3")
        try:
            expected = f"127.0.0.3 port {appliance.port} is not listening"
            eventually(lambda: expected in run_cli(appliance.data_dir, "status").stdout)
            page.reload()
            expect(table.locator("#diagnostic-status")).to_have_text("Needs attention: 1 error(s)")
            expect(table.locator("#diagnostics li")).to_contain_text(expected)
        finally:
            run_cli(appliance.data_dir, "ip", "remove", "127.0.0.3", "--confirm")


OTHER = "ab" * 32  # a fingerprint no certificate of the store has


def test_status_cluster_shows_each_node_alive_and_the_drift_of_another(
    ui: UI, appliance: RunningAppliance
) -> None:
    page = ui.page
    this_node = socket.gethostname()  # serve's default node name
    eventually(lambda: this_node in run_cli(appliance.data_dir, "node", "list").stdout)
    # Another node whose listener on 127.0.0.2 presents another certificate, as its own
    # heartbeat would record it.
    app = Appliance.open(appliance.data_dir)
    try:
        other = [{"address": "127.0.0.2", "port": 8443, "state": "listening", "fingerprint": OTHER}]
        plain = [{"address": "127.0.0.2", "port": 8080, "state": "failed", "error": "taken"}]
        assert nodes.heartbeat(app, "node-b", app.now(), 60.0, other, plain)
        # node-c ran an earlier version, whose heartbeat listed no plain HTTP listener.
        nodes.stopped(app, "node-c", app.now(), 60.0)
        with app.store.transaction() as repository:
            repository.session.execute(
                text("UPDATE nodes SET http_listeners = NULL WHERE name = 'node-c'")
            )
    finally:
        app.close()
    ui.goto("/appliance/status")
    cluster = page.get_by_role("table", name=re.compile("^Nodes"))
    mine = cluster.get_by_role("row", name=re.compile(re.escape(this_node)))
    expect(mine).to_contain_text("alive")
    expect(mine.get_by_role("cell").last).to_have_text("none")
    drifting = cluster.get_by_role("row", name=re.compile("node-b"))
    expect(drifting).to_contain_text("alive")
    expect(drifting).to_contain_text(
        f"127.0.0.2: presents {OTHER[:16]}…, assigned certgate Appliance"
    )
    expect(drifting.get_by_role("cell").nth(5)).to_have_text("0")  # HTTP: none listening
    earlier = cluster.get_by_role("row", name=re.compile("node-c"))
    expect(earlier.get_by_role("cell").nth(5)).to_have_text("not reported")
    findings = page.locator("#diagnostics")
    expect(findings).to_contain_text(
        f"node 'node-b' presents another certificate ({OTHER[:16]}) on 127.0.0.2"
    )
    expect(findings).to_contain_text(
        "on node 'node-b', 127.0.0.2 port 8080 (plain HTTP: ACME http-01 challenges and the "
        "redirect to HTTPS) is not listening: taken"
    )


def test_create_page_labels_and_errors_beside_the_field(ui: UI, screenshot: Shot) -> None:
    page = ui.page
    ui.certificates()
    page.get_by_role("link", name="Create", exact=True).click()
    for label in (
        "Certificate Friendly Name",
        "Key",
        "Country",
        "State/Province",
        "City (Locality)",
        "Organization",
        "Organizational Unit",
        "Name (Common Name)",
        "Subject Alternative Names",
    ):
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    expect(page.get_by_label("Key", exact=True).locator("option")).to_contain_text(
        ["RSA 2048 bits", "RSA 4096 bits", "ECDSA P-256"]
    )
    expect(page.get_by_role("button", name="Create Self-Signed Certificate")).to_be_visible()
    expect(page.get_by_role("button", name="Create Certificate Request")).to_be_visible()
    screenshot(page, "create")

    page.get_by_label("Certificate Friendly Name").fill("typo")
    page.get_by_label("Name (Common Name)").fill("Typo Test")
    page.get_by_label("Subject Alternative Names").fill("bad..name")
    page.get_by_role("button", name="Add", exact=True).click()
    san = page.get_by_label("Subject Alternative Names")
    expect(san).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#subject_alternative_names-error")).to_contain_text("not a valid DNS name")

    san.fill("")
    page.get_by_label("Country").fill("XX")
    page.get_by_role("button", name="Create Self-Signed Certificate").click()
    country = page.get_by_label("Country")
    expect(country).to_have_attribute("aria-invalid", "true")
    expect(country).to_have_value("XX")  # what was typed stays
    expect(page.get_by_label("Certificate Friendly Name")).to_have_value("typo")
    error = page.locator("#country-error")
    expect(error).to_contain_text("not an ISO 3166 country code")
    # Beside the field: in the Country row, and named by the input's description.
    expect(page.locator("tr", has=country)).to_contain_text("not an ISO 3166 country code")
    assert "country-error" in (country.get_attribute("aria-describedby") or "")
    screenshot(page, "create-error")
    ui.certificates()
    expect(ui.row("typo")).to_have_count(0)


def _bundle(count: int, directory: Path) -> Path:
    """A PKCS#7 file with COUNT self-signed server certificates (their keys stay outside)."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    certificates = []
    for number in range(count):
        key = new_key()
        host = f"host-{number:04d}.bulk.example"
        subject = name(host)
        certificates.append(
            issue(
                subject,
                key.public_key(),
                subject,
                key,
                ca=False,
                sans=[host],
                not_before=start,
                days=400 + number,
                serial=number + 1,
            )
        )
    path = directory / "bulk.p7b"
    path.write_bytes(pkcs7.serialize_certificates(certificates, serialization.Encoding.DER))
    return path


def test_certificates_table_searches_sorts_and_pages(
    ui: UI, appliance: RunningAppliance, tmp_path: Path, screenshot: Shot
) -> None:
    run_cli(appliance.data_dir, "cert", "import", str(_bundle(260, tmp_path)))
    page = ui.page
    ui.certificates()
    count = page.locator("#certificates .count")
    expect(count).to_have_text("Showing 1 to 100 of 261")
    page.get_by_role("link", name="Next").click()
    expect(count).to_have_text("Showing 101 to 200 of 261")
    expect(page).to_have_url(re.compile(r"page=2"))

    page.get_by_label("Search").fill("host-0042")  # htmx: the table follows the typing
    expect(count).to_have_text("Showing 1 to 1 of 1")
    expect(page.locator("table.certificates tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=host-0042"))

    page.get_by_label("Search").fill("bulk.example")
    expect(count).to_have_text("Showing 1 to 100 of 260")
    header = page.get_by_role("columnheader", name="Expiration")
    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    header.get_by_role("link").click()
    first = page.locator("table.certificates tbody tr").first
    expect(first).to_contain_text("host-0259.bulk.example")
    expect(header).to_have_attribute("aria-sort", "descending")

    page.get_by_label("Private Key?").select_option(label="No")
    expect(count).to_have_text("Showing 1 to 100 of 260")
    expect(first).to_contain_text("host-0259.bulk.example")  # filtering keeps the sort
    page.get_by_label("Search").fill("")
    page.get_by_label("Private Key?").select_option(label="Yes")
    expect(count).to_have_text("Showing 1 to 1 of 1")  # only the factory certificate
    page.get_by_label("Private Key?").select_option(label="Either")
    page.get_by_label("Warnings").select_option(label="Self-signed")
    expect(count).to_have_text("Showing 1 to 100 of 261")

    # The warnings are readable on click.
    page.get_by_label("Warnings").select_option(label="Any or none")
    page.get_by_label("Search").fill("host-0007")
    row = ui.row("host-0007.bulk.example")
    expect(row.locator("details.warnings ul")).to_be_hidden()
    row.get_by_text(re.compile(r"\d Warning\(s\)")).click()
    expect(row.locator("details.warnings ul")).to_contain_text("self-signed")
    screenshot(page, "certificates-search")

    # The select-all box and a reload keep working on the filtered address.
    page.reload()
    expect(count).to_have_text("Showing 1 to 1 of 1")


def test_users_are_added_given_new_passwords_and_removed(
    ui: UI, appliance: RunningAppliance, new_context: Callable[[], BrowserContext]
) -> None:
    page = ui.page
    ui.goto("/appliance/users")
    page.get_by_label("Username").fill("second-admin")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Role").select_option(label="Administrator")
    page.locator("#password").evaluate("element => element.removeAttribute('minlength')")
    page.get_by_role("button", name="Add User").click()
    expect(page.locator("#password-error")).to_contain_text("at least 10 characters")
    page.get_by_label("Password", exact=True).fill("a long enough password")
    page.get_by_role("button", name="Add User").click()
    expect(page.locator(".flash.ok")).to_contain_text("User second-admin (admin) added")

    page.get_by_label("New password for second-admin").fill("another long password")
    page.locator("tr", has_text="second-admin").get_by_role("button", name="Change").click()
    expect(page.locator(".flash.ok")).to_contain_text("password of second-admin was changed")
    other = UI(new_context().new_page(), appliance)
    other.login("second-admin", "another long password")

    page.get_by_role("button", name="Remove second-admin").click()
    expect(page.locator(".flash.ok")).to_contain_text("User second-admin removed")
    other.goto("/appliance/status")  # the removed user's session ended with the account
    expect(other.page).to_have_url(re.compile(r"/appliance/login"))
    page.get_by_role("button", name="Remove admin").click()
    expect(page.locator(".flash.error")).to_have_text("The last administrator cannot be removed.")


def test_an_auditor_changes_their_own_password_with_the_current_one(
    appliance: RunningAppliance, new_context: Callable[[], BrowserContext]
) -> None:
    olga = UI.new_auditor(new_context().new_page(), appliance, "olga", "olga's first password")
    page = olga.page
    olga.goto("/appliance/users")
    expect(page.get_by_role("button", name="Change", exact=True)).to_have_count(0)
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password").fill("olga's second password")
    page.get_by_role("button", name="Change Password").click()
    expect(page.locator("#own-current_password-error")).to_contain_text(
        "is not your current password"
    )
    page.get_by_label("Current password").fill("olga's first password")
    page.get_by_label("New password").fill("olga's second password")
    page.get_by_role("button", name="Change Password").click()
    expect(page.locator(".flash.ok")).to_contain_text("Your password was changed: log in again.")
    olga.login("olga", "olga's second password")


def test_api_tokens_are_shown_once_record_their_last_use_and_can_be_revoked(
    ui: UI, appliance: RunningAppliance, screenshot: Shot
) -> None:
    page = ui.page
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Security").click()
    page.get_by_role("link", name="API Tokens").click()
    page.get_by_label("Name", exact=True).fill("deploy script")
    page.get_by_label("Role").select_option(label="Auditor (read-only)")
    page.get_by_role("button", name="Create Token").click()
    value = page.get_by_label("New API token").input_value()
    assert value.startswith("cgt_")
    row = page.locator("tr", has_text="deploy script")
    expect(row).to_contain_text("never")

    request = urllib.request.Request(
        appliance.base_url + "/api/v1/status", headers={"Authorization": f"Bearer {value}"}
    )
    with urllib.request.urlopen(request, context=_insecure()) as answer:
        assert answer.status == 200
        json.loads(answer.read())
    ui.goto("/appliance/security/tokens")
    expect(page.get_by_label("New API token")).to_have_count(0)  # shown once only
    expect(row).not_to_contain_text("never")
    screenshot(page, "api-tokens")
    page.get_by_role("button", name="Revoke deploy script").click()
    expect(page.locator(".flash.ok")).to_contain_text("API token deploy script revoked")
    expect(page.locator("tr", has_text="deploy script")).to_contain_text("revoked")


def test_no_page_ever_renders_a_private_key_or_unescaped_input(
    ui: UI, appliance: RunningAppliance
) -> None:
    page = ui.page
    ui.create("Create Certificate Request", "keyed request", "Keyed", ["keyed.example.test"])
    tricky = "keyed <img src=x onerror=alert(1)> cert"  # shown as text, never run
    ui.create("Create Self-Signed Certificate", tricky, "Keyed Cert", ["k.example.test"])
    expect(ui.row(tricky)).to_be_visible()
    expect(page.locator("table.certificates img")).to_have_count(0)
    paths = [
        "/appliance/status",
        "/appliance/users",
        "/appliance/networking",
        "/appliance/security/certificates",
        "/appliance/security/certificates/create",
        "/appliance/security/certificates/import",
        "/appliance/security/ssl",
        "/appliance/security/email",
        "/appliance/security/tokens",
    ]
    ui.certificates()
    for link in page.locator("table.certificates tbody a:not(.assign)").all():
        paths.append(link.get_attribute("href") or "")
    for link in page.locator("a[href^='/appliance/security/requests/']").all():
        paths.append(link.get_attribute("href") or "")
    paths += [path + "/export" for path in paths if re.fullmatch(r".*/certificates/\d+", path)]
    for path in paths:
        answer = page.request.get(ui.base + path)
        assert answer.status == 200, path
        assert "PRIVATE KEY" not in answer.text(), path


def test_import_page_lists_the_formats_and_reports_each_file(
    ui: UI, tmp_path: Path, screenshot: Shot
) -> None:
    page = ui.page
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    ui.certificates()
    page.get_by_role("link", name="Import", exact=True).click()
    formats = page.locator(".formats")
    for label in (
        "DER-encoded X.509 Certificate",
        "PEM-wrapped DER-encoded X.509 Certificate",
        "DER-encoded PKCS #7 certificates",
        "DER-encoded PKCS #8 private key",
        "DER-encoded PKCS #12 certificates and/or private key",
        "DER-encoded OpenSSL Legacy Private Key",
        "PEM-wrapped DER-encoded OpenSSL Legacy Private Key",
    ):
        expect(formats).to_contain_text(label)
    screenshot(page, "import")
    results = ui.import_files(broken)
    expect(results).to_contain_text("broken.pem")
    expect(results).to_contain_text("Error")


def test_served_certificate_is_the_factory_one_until_assigned(
    ui: UI, appliance: RunningAppliance
) -> None:
    ui.open_certificate("certgate Appliance")
    assert ui.fingerprint_on_edit_page() == served_fingerprint("127.0.0.2", appliance.port)


def _insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
