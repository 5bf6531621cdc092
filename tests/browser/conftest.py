"""Browser tests: Playwright for Python driving Debian's Chromium against a real
``certgate serve`` over HTTPS. A browser cannot be downloaded here: Playwright is pointed at
/usr/bin/chromium (``scripts/setup --test`` installs it). In CI (CI=true) a missing browser
fails the run instead of skipping it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    sync_playwright,
)

from tests.browser.ui import UI
from tests.support.ci import missing
from tests.support.openssl import OpensslCA, make_ca
from tests.support.server import RunningAppliance, running_appliance

CHROMIUM = os.environ.get("CERTGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the screenshots go: a temporary directory, unless ``scripts/screenshots`` names
#: docs/screenshots here. A test run never rewrites tracked files.
SCREENSHOTS_ENV = "CERTGATE_SCREENSHOTS"
VIEWPORT = {"width": 1280, "height": 800}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that take a README screenshot are marked ``screenshots`` (what
    ``scripts/screenshots`` runs)."""
    for item in items:
        if "screenshot" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.screenshots)


def _require_chromium() -> str:
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if found:
        return found
    missing(f"Chromium not found at {CHROMIUM}: run scripts/setup --test (apt install chromium)")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = _require_chromium()
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Fresh browser profiles (one per user in a test), closed afterwards. Script errors
    (htmx syntax, a Content-Security-Policy refusal) fail the test."""
    opened: list[BrowserContext] = []
    errors: list[str] = []

    def record(message: ConsoleMessage) -> None:
        text = message.text
        if text.startswith("htmx:"):  # htmx logs its events; aborts (hx-sync) are fine
            if "rror" in text.split(",")[0]:
                errors.append(text)
        elif message.type == "error" and not text.startswith("Failed to load resource"):
            errors.append(text)

    def make() -> BrowserContext:
        context = browser.new_context(
            ignore_https_errors=True,  # the factory certificate is self-signed
            viewport=VIEWPORT,  # type: ignore[arg-type]
            accept_downloads=True,
        )
        context.set_default_timeout(15_000)
        context.on("console", record)
        context.on("weberror", lambda error: errors.append(str(error.error)))
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()
    assert not errors, f"the pages reported script errors: {errors}"


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[RunningAppliance]:
    """``certgate init`` + ``ip add 127.0.0.2`` + ``certgate serve`` in a subprocess."""
    with running_appliance(tmp_path / "primary") as running:
        yield running


@pytest.fixture
def page(appliance: RunningAppliance, new_context: Callable[[], BrowserContext]) -> Page:
    return new_context().new_page()


@pytest.fixture
def ui(page: Page, appliance: RunningAppliance) -> UI:
    """The administrator, logged in."""
    driver = UI(page, appliance)
    driver.login("admin", appliance.admin_password)
    return driver


@pytest.fixture(scope="session")
def openssl_ca(tmp_path_factory: pytest.TempPathFactory) -> OpensslCA:
    """A root and an issuing CA made by the openssl CLI: the certificate authority."""
    return make_ca(tmp_path_factory.mktemp("browser-ca"), name="Browser Test")


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Page, str], None]:
    """Save the page (whole length) as NAME.png: in a temporary directory during a test run,
    in docs/screenshots (for the README) when ``scripts/screenshots`` runs the tests."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    directory = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> None:
        page.screenshot(path=directory / f"{name}.png", full_page=True, animations="disabled")

    return take
