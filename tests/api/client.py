"""An API client for the tests: httpx over real HTTPS to a running ``certgate serve``, and the
problem documents it answers with. What a listener presents: ``tests.support.served``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from certgate.service import auth
from certgate.service.appliance import Appliance
from certgate.web.security import SESSION_COOKIE
from tests.support.server import RunningAppliance

PROBLEM = "https://certgate.invalid/problems/"


@dataclass
class Server:
    """A running appliance and an administrator's API token for it."""

    running: RunningAppliance
    admin_token: str

    def log_text(self) -> str:
        return self.running.log_text()

    @property
    def base_url(self) -> str:
        return self.running.base_url

    @property
    def address(self) -> str:
        return self.running.address

    @property
    def port(self) -> int:
        return self.running.port

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        """A client with ``token`` (the admin's by default; "" for none)."""
        value = self.admin_token if token is None else token
        if value:
            headers = {"Authorization": f"Bearer {value}", **headers}
        return httpx.Client(
            base_url=self.base_url + "/api/v1", verify=False, headers=headers, timeout=60
        )

    def login(self, username: str = "admin", password: str | None = None) -> auth.NewSession:
        """A browser session (the administrator's by default), as the login page opens it."""
        app = self.service()
        try:
            return auth.login(
                app,
                username,
                self.running.admin_password if password is None else password,
                "tests",
                auth.LoginThrottle(),
            )
        finally:
            app.close()

    def browser(self, session: auth.NewSession) -> httpx.Client:
        """An API client authenticated by ``session``'s cookie and CSRF token, as the
        pages' scripts call the API."""
        return httpx.Client(
            base_url=self.base_url + "/api/v1",
            verify=False,
            cookies={SESSION_COOKIE: session.cookie_value},
            headers={"X-CSRF-Token": str(session.principal.csrf_token)},
            timeout=60,
        )

    def pages(self, session: auth.NewSession) -> httpx.Client:
        """A browser's requests to the /appliance pages with ``session``'s cookie (forms
        carry ``session.principal.csrf_token`` themselves); redirects are not followed."""
        return httpx.Client(
            base_url=self.base_url + "/appliance",
            verify=False,
            cookies={SESSION_COOKIE: session.cookie_value},
            timeout=60,
        )

    def service(self) -> Appliance:
        """The same data directory, opened in this process (to mint tokens and sessions the
        way the CLI and the login page do)."""
        return Appliance.open(self.running.data_dir, self.running.database_url)


def mint_token(data_dir: Path, name: str, role: str, database_url: str | None = None) -> str:
    """``certgate token create`` as the appliance's administrator runs it (in-process)."""
    app = Appliance.open(data_dir, database_url)
    try:
        value, _ = auth.create_token(app, name, role)
    finally:
        app.close()
    return value


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON of a successful response, or a failure that shows the problem."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem with the stable type ``code``."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM + code, body
    assert body["status"] == status and body["title"] and body["detail"]
    return body
