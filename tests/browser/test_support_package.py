"""Status > Basics in Chromium: the administrator and an auditor download the support package
of the guide's "Update the Appliance"; the zip holds every certificate and no secret."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from playwright.sync_api import BrowserContext

from tests.browser.ui import UI
from tests.support.pki import fingerprint
from tests.support.server import RunningAppliance, run_cli

AUDITOR_PASSWORD = "auditors read the package 7"


def _download(driver: UI, target: Path) -> dict[str, bytes]:
    driver.goto("/appliance/status")
    with driver.page.expect_download() as download:
        driver.page.get_by_role("button", name="Download Support Package").click()
    assert download.value.suggested_filename.startswith("certgate-support-")
    assert download.value.suggested_filename.endswith(".zip")
    download.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_admin_and_auditor_download_the_support_package_from_the_status_page(
    ui: UI,
    appliance: RunningAppliance,
    new_context: Callable[[], BrowserContext],
    tmp_path: Path,
) -> None:
    password_file = tmp_path / "auditor"
    password_file.write_text(AUDITOR_PASSWORD + "\n")
    run_cli(appliance.data_dir, "user", "add", "ada", "--role", "auditor",
            "--password-file", str(password_file))  # fmt: skip
    auditor = UI(new_context().new_page(), appliance)
    auditor.login("ada", AUDITOR_PASSWORD)
    listed = json.loads(run_cli(appliance.data_dir, "cert", "list", "--json").stdout)
    [factory] = [certificate["fingerprint_sha256"] for certificate in listed]

    for driver, name in ((ui, "admin.zip"), (auditor, "auditor.zip")):
        members = _download(driver, tmp_path / name)
        certificates = [
            x509.load_pem_x509_certificate(data)
            for member, data in members.items()
            if member.startswith("certificates/")
        ]
        assert [fingerprint(certificate) for certificate in certificates] == [factory]
        assert {"status.json", "status.txt", "settings.json", "addresses.json"} <= set(members)
        for member, data in members.items():
            assert b"PRIVATE KEY" not in data, member
            assert appliance.admin_password.encode() not in data, member
            assert AUDITOR_PASSWORD.encode() not in data, member
