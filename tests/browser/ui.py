"""The administrator's hands: each method is one step of the guide, done the way a person
does it (links, labels, buttons), never by posting forms behind the page's back."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Download, Locator, Page, expect

from tests.support.server import RunningAppliance, run_cli


class UI:
    def __init__(self, page: Page, appliance: RunningAppliance) -> None:
        self.page = page
        self.appliance = appliance

    @property
    def base(self) -> str:
        return self.appliance.base_url

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    # --- login ---------------------------------------------------------------------------

    @classmethod
    def new_auditor(cls, page: Page, appliance: RunningAppliance, name: str, password: str) -> UI:
        """``certgate user add NAME --role auditor``, then NAME logged in on ``page``."""
        run_cli(
            appliance.data_dir,
            *("user", "add", name, "--role", "auditor"),
            CERTGATE_USER_PASSWORD=password,
        )
        driver = cls(page, appliance)
        driver.login(name, password)
        return driver

    def login(self, username: str, password: str) -> None:
        self.goto("/appliance/login")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.get_by_role("button", name="Log out")).to_be_visible()

    def logout(self) -> None:
        self.page.get_by_role("button", name="Log out").click()
        expect(self.page.get_by_role("heading", name="Log in to the appliance")).to_be_visible()

    # --- Security > Certificates ---------------------------------------------------------

    def certificates(self) -> None:
        """Security > Certificates, through the navigation."""
        self.page.get_by_role("navigation", name="Sections").get_by_role(
            "link", name="Security"
        ).click()
        expect(self.page.get_by_role("heading", name="Security :: Certificates")).to_be_visible()

    def row(self, friendly_name: str) -> Locator:
        """The Certificates table's row of that certificate (exactly one)."""
        table = self.page.locator("table.certificates")
        return table.locator("tbody tr").filter(
            has=self.page.get_by_role("link", name=friendly_name, exact=True)
        )

    def create(
        self,
        button: str,
        friendly_name: str,
        common_name: str,
        sans: list[str],
        *,
        key: str = "ECDSA P-256",
        organization: str = "Example Org",
    ) -> None:
        """Certificate Installation > Create, fill the guide's fields, click BUTTON."""
        self.certificates()
        self.page.get_by_role("link", name="Create", exact=True).click()
        page = self.page
        page.get_by_label("Certificate Friendly Name").fill(friendly_name)
        page.get_by_label("Key", exact=True).select_option(label=key)
        page.get_by_label("Country").fill("US")
        page.get_by_label("State/Province").fill("Tennessee")
        page.get_by_label("City").fill("Sevierville")
        page.get_by_label("Organization", exact=True).fill(organization)
        page.get_by_label("Organizational Unit").fill("IT")
        page.get_by_label("Name (Common Name)").fill(common_name)
        for san in sans:
            page.get_by_label("Subject Alternative Names").fill(san)
            page.get_by_role("button", name="Add", exact=True).click()
            expect(page.get_by_role("list", name="Added names")).to_contain_text(san)
        page.get_by_role("button", name=button).click()

    def import_files(self, *files: Path, password: str = "") -> Locator:
        """Certificate Installation > Import, choose the files, Upload; returns the results."""
        self.certificates()
        self.page.get_by_role("link", name="Import", exact=True).click()
        self.page.get_by_label("Certificate or Private Key").set_input_files(list(files))
        if password:
            self.page.get_by_label("(Optional) Password").fill(password)
        self.page.get_by_role("button", name="Upload").click()
        results = self.page.locator("table.results")
        expect(results).to_be_visible()
        return results

    def open_certificate(self, friendly_name: str, expiration: str | None = None) -> None:
        """Click the Friendly Name (of the row with that Expiration, when names repeat)."""
        self.certificates()
        rows = self.row(friendly_name)
        if expiration:
            rows = rows.filter(has_text=expiration)
        rows.get_by_role("link", name=friendly_name, exact=True).click()
        expect(
            self.page.get_by_role("heading", name="Edit Certificate Configuration")
        ).to_be_visible()

    def fingerprint_on_edit_page(self) -> str:
        row = self.page.locator("tr", has=self.page.get_by_text("SHA-256 Fingerprint"))
        return row.locator("code").inner_text().strip()

    def assign(
        self, addresses: list[str], *, keep_others: bool = False, confirm: bool = False
    ) -> None:
        """On the Edit Certificate Configuration page: tick the addresses, Save; ``confirm``:
        then Confirm on the confirmation step (another root, or a certificate clients
        refuse)."""
        boxes = self.page.locator("#ip-addresses input[type=checkbox]")
        for index in range(boxes.count()):
            box = boxes.nth(index)
            wanted = box.get_attribute("value") in addresses
            if wanted:
                box.check()
            elif not keep_others:
                box.uncheck()
        self.page.get_by_role("button", name="Save Configuration").click()
        if confirm:
            step = self.page.get_by_role("alertdialog", name="Confirm the change")
            step.get_by_role("button", name="Confirm").click()
        expect(self.page.locator(".flash.ok")).to_contain_text("Configuration saved")

    def select_action(
        self, friendly_names: list[str], action: str, expiration: str | None = None
    ) -> None:
        """Tick the rows (the one with that Expiration, when names repeat), choose in
        Select Action, Apply."""
        self.certificates()
        for name in friendly_names:
            rows = self.row(name).filter(has_text=expiration) if expiration else self.row(name)
            rows.get_by_label(f"Select {name}", exact=True).check()
        self.page.get_by_label("Select Action", exact=True).select_option(label=action)
        self.page.get_by_role("button", name="Apply", exact=True).first.click()

    def export(
        self,
        friendly_name: str,
        *,
        certificate: bool = True,
        private_key: bool = False,
        passphrase: str = "",
        chain: bool = False,
    ) -> Download:
        self.select_action([friendly_name], "Export")
        page = self.page
        expect(
            page.get_by_role("heading", name="Security :: Certificates :: Export")
        ).to_be_visible()
        page.get_by_label("Include Certificate", exact=True).set_checked(certificate)
        if private_key:
            page.get_by_label("Include Private Key").check()
            page.get_by_label("Passphrase").fill(passphrase)
        page.get_by_label("Include Certificate Chain").set_checked(chain)
        with page.expect_download() as download:
            page.get_by_role("button", name="Export", exact=True).click()
        return download.value

    def warnings_of(self, friendly_name: str) -> str:
        """The "N Warning(s)" of a row, opened (readable on click); "" when it has none."""
        self.certificates()
        details = self.row(friendly_name).locator("details.warnings")
        if details.count() == 0:
            return ""
        details.locator("summary").click()
        return details.inner_text()

    def csrf_token(self) -> str:
        value = self.page.locator("input[name=csrf_token]").first.get_attribute("value")
        assert value
        return value

    def flash(self) -> str:
        return self.page.locator(".flash").first.inner_text()


def text_of(locator: Locator) -> str:
    return re.sub(r"\s+", " ", locator.inner_text()).strip()
