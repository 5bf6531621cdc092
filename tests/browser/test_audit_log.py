"""Status > Audit Log in Chromium: a change made on a page and one made by the CLI, each with
its who, from where and what; the filters; the pages; no password in it."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from certgate.service.appliance import Appliance
from certgate.service.audit import Actor, AuditAction
from certgate.service.auth import cli_principal
from tests.browser.ui import UI
from tests.support.server import RunningAppliance, run_cli

Shot = Callable[[Page, str], None]
OS_USER = cli_principal().username.removeprefix("cli:")
PASSWORD = "audited but never shown 99"


def rows(page: Page) -> list[list[str]]:
    """The Audit Log table's cells: time, who, from, action, target, detail."""
    table = page.locator("#audit-events tbody tr")
    return [[cell.strip() for cell in row.locator("td").all_inner_texts()] for row in table.all()]


def filter_by(page: Page, **fields: str) -> None:
    labels = {"actor": "Who", "target": "Target", "since": "From (UTC)", "until": "Until (UTC)"}
    for name, value in fields.items():
        if name == "action":
            page.get_by_label("Action").select_option(value)
        else:
            page.get_by_label(labels[name]).fill(value)
    page.get_by_role("button", name="Filter").click()


def test_the_audit_log_shows_who_did_what_from_where_and_filters(
    ui: UI,
    appliance: RunningAppliance,
    new_context: Callable[[], BrowserContext],
    screenshot: Shot,
) -> None:
    page = ui.page
    ui.goto("/appliance/users")  # a change made on a page
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Role").select_option("auditor")
    page.get_by_role("button", name="Add User").click()
    expect(page.locator(".flash.ok")).to_contain_text("User erin (auditor) added")
    run_cli(appliance.data_dir, "ip", "add", "127.0.0.31")  # and one by the CLI

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Status").click()
    page.get_by_role("navigation", name="Status pages").get_by_role(
        "link", name="Audit Log"
    ).click()
    expect(page.get_by_role("heading", name="Status :: Audit Log")).to_be_visible()
    expect(page.get_by_role("link", name="Audit Log")).to_have_attribute("aria-current", "page")
    screenshot(page, "audit-log")

    filter_by(page, action="user.create", target="erin")
    [(_, who, source, action, target, detail)] = rows(page)
    assert (who, action, target, detail) == ("admin", "user.create", "erin", "role auditor")
    assert re.fullmatch(r"127\.\d+\.\d+\.\d+", source)
    expect(page).to_have_url(re.compile(r"action=user\.create"))

    ui.goto("/appliance/audit")
    filter_by(page, actor="cli:")
    cli_rows = rows(page)
    assert cli_rows and {row[1] for row in cli_rows} == {f"cli:{OS_USER}"}
    assert {row[2] for row in cli_rows} == {"cli"}
    assert ["address.add", "127.0.0.31"] in [row[3:5] for row in cli_rows]

    ui.goto("/appliance/audit")
    filter_by(page, action="session.")  # a family: the administrator's login
    assert {row[3] for row in rows(page)} == {"session.login"}
    filter_by(page, action="", until="2000-01-01")
    expect(page.locator("#audit-empty")).to_have_text("No events match.")
    filter_by(page, until="", since="1h")
    assert len(rows(page)) >= 4
    filter_by(page, since="last tuesday")
    expect(page.locator("#audit-since-error")).to_contain_text("is not a time")

    ui.goto("/appliance/audit")
    assert PASSWORD not in page.content()

    # An auditor reads it too.
    auditor = UI(new_context().new_page(), appliance)
    auditor.login("erin", PASSWORD)
    auditor.goto("/appliance/audit?action=user.create&target=erin")
    assert [row[4] for row in rows(auditor.page)] == ["erin"]


def test_the_audit_log_pages_through_older_events(ui: UI, appliance: RunningAppliance) -> None:
    app = Appliance.open(appliance.data_dir)
    try:
        with app.store.transaction(Actor("cli:pager", "cli")) as repository:
            for number in range(60):
                repository.audit(AuditAction.ADDRESS_ADD, f"192.0.2.{number}")
    finally:
        app.close()
    page = ui.page
    ui.goto("/appliance/audit?actor=pager")
    first = rows(page)
    assert len(first) == 50 and first[0][4] == "192.0.2.59"
    page.get_by_role("link", name="Older events").click()
    assert [row[4] for row in rows(page)] == [f"192.0.2.{n}" for n in range(9, -1, -1)]
    expect(page.get_by_role("link", name="Older events")).to_have_count(0)
    page.get_by_role("link", name="Newest").click()
    assert rows(page) == first
