"""Key generation (RSA 4096 takes a while) runs beside the event loop: other requests keep
being answered while the Create page works."""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from urllib.parse import urlencode

from playwright.sync_api import expect

from certgate.web.security import SESSION_COOKIE
from tests.browser.ui import UI
from tests.support.server import RunningAppliance


def _connection(appliance: RunningAppliance) -> http.client.HTTPSConnection:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection(
        appliance.address, appliance.port, context=context, timeout=60
    )


def test_rsa_4096_key_generation_does_not_block_other_pages(
    ui: UI, appliance: RunningAppliance
) -> None:
    ui.goto("/appliance/security/certificates/create")
    token = ui.csrf_token()
    session = next(c for c in ui.page.context.cookies() if c["name"] == SESSION_COOKIE)
    cookie = f"{SESSION_COOKIE}={session['value']}"
    created: list[int] = []

    def create_three() -> None:
        connection = _connection(appliance)
        for number in range(3):
            body = urlencode(
                {
                    "csrf_token": token,
                    "friendly_name": f"big key {number}",
                    "key": "rsa4096",
                    "common_name": f"Big Key {number}",
                    "subject_alternative_names": f"big-key-{number}.example.test",
                    "button": "self-signed",
                }
            )
            connection.request(
                "POST",
                "/appliance/security/certificates/create",
                body,
                {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
            )
            answer = connection.getresponse()
            answer.read()
            created.append(answer.status)

    worker = threading.Thread(target=create_three)
    reader = _connection(appliance)
    latencies: list[float] = []
    worker.start()
    while worker.is_alive():
        started = time.perf_counter()
        reader.request("GET", "/appliance/status", headers={"Cookie": cookie})
        answer = reader.getresponse()
        answer.read()
        assert answer.status == 200
        latencies.append(time.perf_counter() - started)
    worker.join()

    assert created == [303, 303, 303]  # each one made, then redirected to the table
    assert len(latencies) >= 5, latencies  # pages were served while the keys were made
    assert max(latencies) < 1.0, latencies
    ui.open_certificate("big key 2")
    expect(ui.page.locator("tr", has_text="Public Key")).to_contain_text("RSA (4096 Bits)")
