"""Issue 15, point 1, in Chromium: removing the last address asks first, saying that it
locks the administrator out; Cancel keeps it, the confirmation removes it."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.ui import UI
from tests.support.polling import eventually
from tests.support.server import RunningAppliance, run_cli

HOST = "127.0.0.2"


def _addresses(appliance: RunningAppliance) -> list[str]:
    listed = run_cli(appliance.data_dir, "ip", "list", "--json").stdout
    return [entry["address"] for entry in json.loads(listed)]


def test_removing_the_last_address_asks_first_and_says_it_locks_the_administrator_out(
    ui: UI, appliance: RunningAppliance
) -> None:
    page = ui.page
    ui.goto("/appliance/networking")
    page.get_by_role("button", name=f"Remove {HOST}").click()
    dialog = page.get_by_role("alertdialog", name="Remove the last IP address?")
    expect(dialog).to_contain_text(f"{HOST} is the last IP address of the appliance")
    expect(dialog).to_contain_text("you are locked out until an address is added again")
    dialog.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    expect(page.locator("table.grid")).to_contain_text(HOST)
    assert _addresses(appliance) == [HOST]

    page.get_by_role("button", name=f"Remove {HOST}").click()
    page.get_by_role("button", name=f"Remove {HOST} and lock me out").click(no_wait_after=True)
    eventually(lambda: _addresses(appliance) == [], timeout=15)
