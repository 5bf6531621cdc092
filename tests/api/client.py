"""An API client for the tests: httpx over real HTTPS to a running ``certgate serve``, plus
what the tests check on the wire (problems, the certificate a listener presents)."""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from certgate.service import auth
from certgate.service.appliance import Appliance
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
            cookies={"certgate_session": session.cookie_value},
            headers={"X-CSRF-Token": str(session.principal.csrf_token)},
            timeout=60,
        )

    def pages(self, session: auth.NewSession) -> httpx.Client:
        """A browser's requests to the /appliance pages with ``session``'s cookie (forms
        carry ``session.principal.csrf_token`` themselves); redirects are not followed."""
        return httpx.Client(
            base_url=self.base_url + "/appliance",
            verify=False,
            cookies={"certgate_session": session.cookie_value},
            timeout=60,
        )

    def service(self) -> Appliance:
        """The same data directory, opened in this process (to mint tokens and sessions the
        way the CLI and the login page do)."""
        return Appliance.open(self.running.data_dir)


def mint_token(data_dir: Path, name: str, role: str) -> str:
    """``certgate token create`` as the appliance's administrator runs it (in-process)."""
    app = Appliance.open(data_dir)
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


def sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def handshake(
    address: str, port: int, *, root: Path | None = None, hostname: str | None = None
) -> bytes:
    """The DER of the certificate the listener presents. With ``root``, the handshake must
    verify against that root alone: the listener has to send the whole chain below it."""
    if root is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=str(root))
    with (
        socket.create_connection((address, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=hostname or address) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """The listeners follow a commit within milliseconds; allow for a loaded machine."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def served_fingerprint(server: Server) -> str:
    return sha256(handshake(server.address, server.running.port))


def wait_served(server: Server, fingerprint: str) -> None:
    wait_until(
        lambda: served_fingerprint(server) == fingerprint,
        f"{server.address} presents {fingerprint[:16]}",
    )
