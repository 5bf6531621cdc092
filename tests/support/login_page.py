"""The login page as a browser uses it: its form filled and posted with the double-submit
cookie from the client's jar; redirects are not followed."""

from __future__ import annotations

import re

import httpx

from certgate.web.pages.login import LOGIN_CSRF_COOKIE
from certgate.web.security import CSRF_FIELD, SESSION_COOKIE
from tests.support.server import RunningAppliance


def browser(node: RunningAppliance, session: str | None = None) -> httpx.Client:
    """A browser's requests to one node (its own cookie jar); redirects are not followed."""
    cookies = {SESSION_COOKIE: session} if session else {}
    return httpx.Client(base_url=node.base_url, verify=False, cookies=cookies, timeout=60)


def form_token(page: httpx.Response) -> str:
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def log_in(
    node: RunningAppliance,
    password: str,
    username: str = "admin",
    held: str | None = None,
    next_url: str = "/appliance",
) -> httpx.Response:
    """The login page's form, filled and posted as a browser does. ``held``: the session
    cookie the browser holds by the time it posts (the form was opened before a login in
    another tab); ``next_url``: the page the form leads to (its ``next`` field)."""
    with browser(node) as client:
        form = client.get("/appliance/login")
        assert form.status_code == 200 and LOGIN_CSRF_COOKIE in client.cookies
        if held is not None:
            client.cookies.set(SESSION_COOKIE, held)
        return client.post(
            "/appliance/login",
            data={
                CSRF_FIELD: form_token(form),
                "next": next_url,
                "username": username,
                "password": password,
            },
        )
