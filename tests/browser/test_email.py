"""Security > Email Configuration in Chromium: the relay configured on the page (STARTTLS,
AUTH, the relay's CA bundle), Send Test Email delivering at once, the relay's refusal shown
verbatim (and a refused expiry notice on Status > Diagnostic Status), the password never
shown back, and an auditor reading without changing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.ui import UI
from tests.support.pki import make_chain
from tests.support.server import RunningAppliance, import_with_key, run_cli
from tests.support.smtp import smtp_relay

Shot = Callable[[Page, str], None]
PASSWORD = "browser relay password 3"


def test_email_configuration_sends_a_test_email_and_shows_the_relays_answer(
    ui: UI,
    appliance: RunningAppliance,
    new_context: Callable[[], BrowserContext],
    screenshot: Shot,
    tmp_path: Path,
) -> None:
    page = ui.page
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Security").click()
    page.get_by_role("navigation", name="Security pages").get_by_role(
        "link", name="Email Configuration"
    ).click()
    expect(page.get_by_role("heading", name="Security :: Email Configuration")).to_be_visible()
    expect(page.get_by_text("Email is not configured")).to_be_visible()
    with smtp_relay("starttls", users={"mailer": PASSWORD}) as relay:
        page.get_by_label("SMTP Relay Host").fill("127.0.0.1")
        page.get_by_label("Connection Security").select_option("starttls")
        page.get_by_label("SMTP Relay Port").fill(str(relay.port))
        expect(page.get_by_label("Check Relay Certificate")).to_be_checked()
        page.get_by_label("CA Bundle").fill(relay.ca_pem.decode())
        page.get_by_label("SMTP Username").fill("mailer")
        page.get_by_label("SMTP Password").fill(PASSWORD)
        page.get_by_label("From Address").fill("appliance@example.com")
        page.get_by_label("Administrator Addresses").fill("ops@example.com\nsecurity@example.com")
        page.get_by_label("Expiry Notice Days").fill("30, 7, 0")
        page.get_by_role("button", name="Save Configuration").click()
        expect(page.locator(".flash.ok")).to_contain_text("Email configuration saved")
        expect(page.get_by_label("SMTP Password")).to_have_value("")  # never shown back
        expect(page.get_by_text("A password is stored (it is never shown)")).to_be_visible()
        assert PASSWORD not in page.content()
        expect(
            page.get_by_text("Notices are sent 30 and 7 days before a certificate")
        ).to_be_visible()
        screenshot(page, "email-configuration")

        page.get_by_role("button", name="Send Test Email").click()
        expect(page.locator(".flash.ok")).to_contain_text(
            f"Test email handed to 127.0.0.1:{relay.port} for ops@example.com, security@example.com"
        )
        [mail] = relay.messages
        assert mail["Subject"] == "certgate: test email" and relay.logins == ["mailer"]

    with smtp_relay("none", refuse=True) as refusing:  # the relay answers 550
        page.get_by_label("Connection Security").select_option("none")
        page.get_by_label("SMTP Relay Port").fill(str(refusing.port))
        page.get_by_label("SMTP Username").fill("")
        page.get_by_role("button", name="Save Configuration").click()
        expect(page.locator(".flash.ok")).to_contain_text("Email configuration saved")
        page.get_by_role("button", name="Send Test Email").click()
        expect(page.locator(".flash.error")).to_contain_text(
            "The test email was not sent: mail to the relay "
            f"127.0.0.1:{refusing.port} failed: the relay refused the recipients: "
            "ops@example.com: 550 5.1.1 <ops@example.com>: Recipient address rejected"
        )
        # A certificate expiring in 5 days: its notice is refused too, and Status says so.
        import_with_key(appliance, tmp_path, make_chain("soon.example.test", days=6))
        assert run_cli(appliance.data_dir, "notify", check=False).returncode == 1
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Status").click()
    expect(page.locator("#diagnostics li").filter(has_text="expiry notice")).to_contain_text(
        "the expiry notice for 'soon.example.test' (7 day(s) before expiry) could not be sent "
        "(1 attempt(s); retried at the next check)"
    )
    expect(page.locator("#diagnostics li").filter(has_text="expiry notice")).to_contain_text(
        "550 5.1.1"
    )
    page.go_back()

    page.get_by_label("Administrator Addresses").fill("ops@example.com\nnot an address")
    page.get_by_role("button", name="Save Configuration").click()
    expect(page.locator("#to_addresses-error")).to_contain_text("is not a mail address")
    expect(page.get_by_label("Administrator Addresses")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Administrator Addresses").fill("ops@example.com")
    page.get_by_label("Connection Security").select_option("tls")
    page.get_by_label("SMTP Relay Port").fill("")  # empty: implicit TLS's port
    page.get_by_role("button", name="Save Configuration").click()
    expect(page.locator(".flash.ok")).to_contain_text("Email configuration saved")
    expect(page.get_by_label("SMTP Relay Port")).to_have_value("465")

    auditor = UI.new_auditor(new_context().new_page(), appliance, "erin", "auditor password 12")
    auditor.goto("/appliance/security/email")
    expect(auditor.page.get_by_label("SMTP Relay Host")).to_be_disabled()
    expect(auditor.page.get_by_role("button", name="Send Test Email")).to_have_count(0)
