"""Who may call what: no credentials, a revoked token, an auditor's token, the browser session
with its CSRF token; and the tokens' "last used"."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certgate.web.pages.login import LOGIN_CSRF_COOKIE
from certgate.web.pages.rendering import FLASH_COOKIE
from certgate.web.security import SESSION_COOKIE
from tests.api.client import Server, ok, problem
from tests.api.conftest import serve
from tests.api.workflows import self_signed, upload
from tests.support.login_page import browser, form_token, log_in
from tests.support.pki import make_chain

SAMPLE_BODY = {"friendly_name": "x", "subject": {"common_name": "x.example.test"}}


def operations(api: httpx.Client) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document, path parameters filled in."""
    document = ok(api.get("/openapi.json"))
    found = []
    for path, item in document["paths"].items():
        concrete = path.replace("/api/v1", "", 1)
        for name in ("reference", "address", "username", "token_id"):
            concrete = concrete.replace("{" + name + "}", "1")
        found += [(method.upper(), concrete) for method in item]
    return found


def test_every_operation_refuses_a_caller_without_credentials(primary: Server) -> None:
    with primary.client(token="") as api:
        for method, path in operations(api):
            response = api.request(method, path, json={} if method != "GET" else None)
            problem(response, 401, "unauthenticated")
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_token_is_refused(primary: Server) -> None:
    with primary.client() as admin:
        created = ok(admin.post("/tokens", json={"name": "ci job", "role": "admin"}), 201)
        assert created["token"].startswith("cgt_") and not created["revoked"]
        with primary.client(created["token"]) as job:
            assert ok(job.get("/me")) == {
                "username": "token:ci job",
                "role": "admin",
                "via": "token",
            }
            revoked = ok(admin.delete(f"/tokens/{created['id']}"))
            assert revoked["revoked"] is True and revoked["last_used_at"] is not None
            problem(job.get("/certificates"), 401, "unauthenticated")
            problem(job.post("/addresses", json={"address": "127.0.0.99"}), 401, "unauthenticated")
        listed = {token["id"]: token for token in ok(admin.get("/tokens"))}
        assert listed[created["id"]]["revoked"] is True
        assert "token" not in listed[created["id"]]  # the value is shown only once
    with primary.client("cgt_not-a-token") as stranger:
        problem(stranger.get("/me"), 401, "unauthenticated")


def _tokens_of_a_new_user(
    primary: Server, admin: httpx.Client, username: str, *names: str
) -> list[dict[str, Any]]:
    """A new administrator ``username``, and the admin tokens ``names`` they made."""
    password = f"{username}'s long password"
    body = {"username": username, "password": password, "role": "admin"}
    ok(admin.post("/users", json=body), 201)
    with primary.browser(primary.login(username, password)) as user:
        return [
            ok(user.post("/tokens", json={"name": name, "role": "admin"}), 201) for name in names
        ]


def test_removing_a_user_revokes_the_tokens_they_made(primary: Server) -> None:
    """A removed user's API tokens kept working: whoever was removed kept a way in."""
    with primary.client() as admin:
        [made] = _tokens_of_a_new_user(primary, admin, "leaver", "leaver's job")
        assert made["created_by"] == "leaver"
        kept = ok(admin.post("/tokens", json={"name": "someone else's", "role": "admin"}), 201)
        with primary.client(made["token"]) as job, primary.client(kept["token"]) as other:
            ok(job.get("/me"))
            ok(admin.delete("/users/leaver"), 204)
            problem(job.get("/me"), 401, "unauthenticated")
            ok(other.get("/me"))
        listed = {token["id"]: token for token in ok(admin.get("/tokens"))}
        assert listed[made["id"]]["revoked"] and not listed[kept["id"]]["revoked"]
        trail = ok(admin.get("/audit", params={"target": "leaver's job"}))["events"]
    assert [event["action"] for event in trail] == ["token.revoke", "token.create"]
    assert trail[0]["actor"] == "token:tests" and "removed user leaver" in trail[0]["detail"]


def test_removing_a_user_revokes_the_tokens_their_tokens_made(primary: Server) -> None:
    """A token can make tokens (its ``created_by`` is ``token:<name>``): the tokens a removed
    user's token had made kept working, down the line, even from a token of theirs that was
    revoked before."""
    with primary.client() as admin:
        first, spent = _tokens_of_a_new_user(primary, admin, "mover", "mover job", "mover spent")
        with primary.client(first["token"]) as job, primary.client(spent["token"]) as old:
            child = ok(job.post("/tokens", json={"name": "mover child", "role": "admin"}), 201)
            heir = ok(old.post("/tokens", json={"name": "mover heir", "role": "admin"}), 201)
        with primary.client(child["token"]) as job:
            grandchild = ok(
                job.post("/tokens", json={"name": "mover grandchild", "role": "auditor"}), 201
            )
        assert grandchild["created_by"] == "token:mover child"
        ok(admin.delete(f"/tokens/{spent['id']}"))
        ok(admin.delete("/users/mover"), 204)
        for made in (first, child, heir, grandchild):
            with primary.client(made["token"]) as removed:
                problem(removed.get("/me"), 401, "unauthenticated")
        trail = ok(admin.get("/audit", params={"target": "mover grandchild"}))["events"]
    assert trail[0]["action"] == "token.revoke" and "removed user mover" in trail[0]["detail"]


def test_token_last_used_is_shown(primary: Server) -> None:
    with primary.client() as admin:
        created = ok(admin.post("/tokens", json={"name": "monitoring", "role": "auditor"}), 201)
        assert created["last_used_at"] is None
        with primary.client(created["token"]) as monitor:
            ok(monitor.get("/status"))
        shown = next(t for t in ok(admin.get("/tokens")) if t["id"] == created["id"])
        assert shown["last_used_at"] is not None and shown["created_by"] == "token:tests"
        assert shown["last_used_at"] >= shown["created_at"]


@pytest.fixture(scope="module")
def auditor(primary: Server) -> str:
    with primary.client() as admin:
        token: str = ok(admin.post("/tokens", json={"name": "audit", "role": "auditor"}), 201)[
            "token"
        ]
    return token


def test_an_auditor_sees_everything(primary: Server, auditor: str) -> None:
    with primary.client(auditor) as api:
        for path in (
            "/certificates",
            "/requests",
            "/addresses",
            "/tls",
            "/email",
            "/status",
            "/users",
        ):
            ok(api.get(path))
        ok(api.get("/tokens"))
        factory = ok(api.get("/certificates", params={"q": "certgate Appliance"}))["items"][0]
        ok(api.get(f"/certificates/{factory['id']}"))
        assert api.get(f"/certificates/{factory['id']}/export").status_code == 200
        certificate_only = api.post(f"/certificates/{factory['id']}/export", json={"pem": True})
        assert certificate_only.headers["content-type"] == "application/x-pem-file"


def test_an_auditor_changes_nothing_and_exports_no_private_key(
    primary: Server, auditor: str
) -> None:
    with primary.client() as admin:
        target = self_signed(admin, "audited", "audited.example.test")
    ref = target["id"]
    chain = make_chain()
    pem = chain.leaf.public_bytes(Encoding.PEM)
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/certificates", SAMPLE_BODY),
        ("POST", "/requests", SAMPLE_BODY),
        ("PATCH", f"/certificates/{ref}", {"friendly_name": "renamed"}),
        ("DELETE", f"/certificates/{ref}", None),
        ("PUT", f"/certificates/{ref}/chain", {"mode": "automatic"}),
        ("PUT", f"/certificates/{ref}/addresses", {"addresses": []}),
        ("POST", f"/certificates/{ref}/export", {"include_private_key": True, "passphrase": "p"}),
        ("POST", "/addresses", {"address": "127.0.0.98"}),
        ("PUT", f"/addresses/{primary.address}", {"certificate": ref}),
        ("DELETE", f"/addresses/{primary.address}", None),
        ("PUT", "/tls", {"minimum_version": "1.3"}),
        ("PUT", "/email", {"host": "relay.example.com"}),
        ("POST", "/email/test", None),
        ("POST", "/users", {"username": "mallory", "password": "0123456789ab", "role": "admin"}),
        ("DELETE", "/users/admin", None),
        ("PUT", "/users/admin/password", {"password": "0123456789ab"}),
        ("POST", "/tokens", {"name": "escalate", "role": "admin"}),
        ("DELETE", "/tokens/1", None),
    ]
    with primary.client(auditor) as api:
        for method, path, body in attempts:
            body_problem = problem(api.request(method, path, json=body), 403, "forbidden")
            assert "administrator" in body_problem["detail"]
        problem(upload(api, [("leaf.pem", pem)]), 403, "forbidden")
    with primary.client() as admin:
        assert ok(admin.get(f"/certificates/{ref}"))["friendly_name"] == "audited"


def test_the_browser_session_needs_its_csrf_token(primary: Server) -> None:
    session = primary.login()
    cookies = {SESSION_COOKIE: session.cookie_value}
    with httpx.Client(
        base_url=primary.base_url + "/api/v1", verify=False, cookies=cookies, timeout=30
    ) as browser:
        assert ok(browser.get("/me")) == {"username": "admin", "role": "admin", "via": "session"}
        body = {"address": "127.0.0.97"}
        problem(browser.post("/addresses", json=body), 403, "forbidden")
        problem(
            browser.post("/addresses", json=body, headers={"X-CSRF-Token": "forged"}),
            403,
            "forbidden",
        )
        headers = {"X-CSRF-Token": str(session.principal.csrf_token)}
        added = ok(browser.post("/addresses", json=body, headers=headers), 201)
        assert added["is_factory_certificate"] is True
        ok(browser.delete("/addresses/127.0.0.97", headers=headers), 204)


def test_a_csrf_token_that_is_not_ascii_is_refused_not_a_500(primary: Server) -> None:
    """``hmac.compare_digest`` refuses a str that is not ASCII: "é" as the CSRF token of the
    login form, of a page's form or in the API's header was answered 500."""
    with httpx.Client(base_url=primary.base_url, verify=False, timeout=60) as anonymous:
        anonymous.get("/appliance/login")  # its double-submit cookie
        form = {"csrf_token": "é", "username": "admin", "password": "not the password"}
        refused = anonymous.post("/appliance/login", data=form)
        assert refused.status_code == 403 and "had expired" in refused.text, refused.status_code
    session = primary.login()
    with primary.pages(session) as pages:
        page = pages.post("/users", data={"csrf_token": "é", "username": "x", "role": "admin"})
        assert page.status_code == 403, page.status_code
    with httpx.Client(
        base_url=primary.base_url + "/api/v1",
        verify=False,
        cookies={SESSION_COOKIE: session.cookie_value},
        timeout=60,
    ) as browser:
        forged = {"X-CSRF-Token": b"\xc3\xa9"}
        problem(
            browser.post("/addresses", json={"address": "127.0.0.96"}, headers=forged),
            403,
            "forbidden",
        )


def test_a_form_posted_after_the_session_ended_leads_back_to_its_page(primary: Server) -> None:
    """Not to its action, which answers a GET with 405 once logged in again; and the login
    page says why it is there (it appeared with no word)."""
    ended = {SESSION_COOKIE: "a session that has ended"}
    with httpx.Client(base_url=primary.base_url, verify=False, cookies=ended, timeout=60) as old:
        for action, page in (
            ("/appliance/security/tokens/3/revoke", "/appliance/security/tokens"),
            ("/appliance/users/bob/delete", "/appliance/users"),
            ("/appliance/users", "/appliance/users"),
            ("/appliance/logout", "/appliance"),
        ):
            answer = old.post(action, data={"csrf_token": "x"})
            assert answer.status_code == 303, (action, answer.status_code)
            assert answer.headers["location"] == "/appliance/login?next=" + quote(page, safe=""), (
                action
            )
        moved = old.get("/appliance/audit?action=key.")
        assert moved.headers["location"] == "/appliance/login?next=" + quote(
            "/appliance/audit?action=key.", safe=""
        )
        login = old.get(moved.headers["location"])
        assert "Your session has ended: log in again to continue." in login.text
        assert "session has ended" not in old.get("/appliance/login").text  # said once
    with httpx.Client(base_url=primary.base_url, verify=False, timeout=60) as first_visit:
        moved = first_visit.get("/appliance/audit")
        assert "session has ended" not in first_visit.get(moved.headers["location"]).text


def test_logging_in_again_ends_the_session_the_browser_held(primary: Server) -> None:
    """A login form opened before another tab logged in, then posted: the browser's earlier
    session ends (it stayed open beside the new one, usable by whoever had its cookie)."""
    first = log_in(primary.running, primary.running.admin_password)
    assert first.status_code == 303, first.text
    held = first.cookies[SESSION_COOKIE]
    again = log_in(primary.running, primary.running.admin_password, held=held)
    assert again.status_code == 303, again.text
    with (
        browser(primary.running, held) as before,
        browser(primary.running, again.cookies[SESSION_COOKIE]) as now,
    ):
        problem(before.get("/api/v1/me"), 401, "unauthenticated")
        assert ok(now.get("/api/v1/me"))["via"] == "session"


def test_a_refused_login_keeps_the_username_typed_never_the_password(primary: Server) -> None:
    """After a wrong password the login form came back empty: the username typed again."""
    refused = log_in(primary.running, "not the password at all", username="admin")
    assert refused.status_code == 401, refused.status_code
    username = re.search(r'<input id="username"[^>]*>', refused.text)
    assert username and 'value="admin"' in username.group(0), refused.text
    assert "not the password at all" not in refused.text


def test_the_login_form_takes_only_a_token_this_host_set(primary: Server) -> None:
    """A sibling subdomain is the same site (SameSite lets its posts through) and could set
    the login form's double-submit cookie for the parent domain, then post a login with its
    own account into a visitor's browser. The cookie is now ``__Host-`` (Secure, Path=/, no
    Domain: only this host sets it); a token under the name a sibling could set is refused."""
    with httpx.Client(base_url=primary.base_url, verify=False, timeout=60) as browser:
        form = browser.get("/appliance/login")
        cookies = [c for c in form.headers.get_list("set-cookie") if "login_csrf" in c]
        assert len(cookies) == 1 and cookies[0].startswith("__Host-certgate_login_csrf=")
        attributes = {part.split("=")[0].lower() for part in cookies[0].split("; ")[1:]}
        assert "path=/" in cookies[0].lower().split("; ") and "domain" not in attributes
        assert "secure" in attributes
    planted = {"certgate_login_csrf": "planted by a sibling"}
    with httpx.Client(base_url=primary.base_url, verify=False, cookies=planted, timeout=60) as c:
        form = {
            "csrf_token": "planted by a sibling",
            "username": "admin",
            "password": primary.running.admin_password,
        }
        refused = c.post("/appliance/login", data=form)
        assert refused.status_code == 403 and SESSION_COOKIE not in refused.cookies


def test_the_session_and_flash_cookies_are_this_hosts_only(primary: Server) -> None:
    """A sibling subdomain could set ``certgate_session`` (its own account's session: the
    visitor then works in the sibling's account) or a flash message for the parent domain.
    Both are ``__Host-`` cookies (Secure, Path=/, no Domain): only this host sets them; a
    cookie under the old name is ignored (a browser logs in once more after the upgrade)."""
    with httpx.Client(base_url=primary.base_url, verify=False, timeout=60) as client:
        client.get("/appliance/login")
        form = {
            "csrf_token": client.cookies[LOGIN_CSRF_COOKIE],
            "username": "admin",
            "password": primary.running.admin_password,
        }
        logged_in = client.post("/appliance/login", data=form)
        logged_out = client.post(
            "/appliance/logout",
            data={"csrf_token": form_token(client.get("/appliance/security/certificates"))},
        )
    for answer, name in ((logged_in, "certgate_session"), (logged_out, "certgate_flash")):
        [cookie] = [c for c in answer.headers.get_list("set-cookie") if name + "=" in c]
        assert cookie.startswith("__Host-" + name + "="), cookie
        attributes = [part.lower() for part in cookie.split("; ")[1:]]
        assert "path=/" in attributes and "secure" in attributes
        assert not any(part.startswith("domain") for part in attributes)
    session = primary.login()
    planted = {
        "certgate_session": session.cookie_value,
        "certgate_flash": base64.urlsafe_b64encode(b'["ok", "planted"]').decode(),
    }
    with httpx.Client(base_url=primary.base_url, verify=False, cookies=planted, timeout=60) as c:
        page = c.get("/appliance/security/certificates")
        assert page.status_code == 303 and "/appliance/login" in page.headers["location"]
        assert "planted" not in c.get("/appliance/login").text


def test_a_login_leads_only_to_a_page(primary: Server) -> None:
    """A link to the login page with ``next=/appliance/logout`` (or a form's action) led
    after the login to a 405 page: only a page that answers a GET is where a login leads;
    anything else leads to the default page."""
    password = primary.running.admin_password
    for target in ("/appliance/logout", "/appliance/security/tokens/3/revoke", "/appliance/x"):
        answer = log_in(primary.running, password, next_url=target)
        assert answer.status_code == 303 and answer.headers["location"] == "/appliance", target
        session = answer.cookies[SESSION_COOKIE]
        with browser(primary.running, session) as again:
            form = again.get("/appliance/login", params={"next": target})
            assert form.headers["location"] == "/appliance", target
    page = "/appliance/security/certificates?page=2"
    answer = log_in(primary.running, password, next_url=page)
    assert answer.status_code == 303 and answer.headers["location"] == page


def test_a_flash_cookie_the_appliance_did_not_write_is_ignored(primary: Server) -> None:
    """A cookie is the client's (or a sibling subdomain's) to send: a flash message that is
    JSON but no pair (5, null) made every page a 500, the login page included."""
    for value in (b"5", b"null", b"[1, 2, 3]", b"not json"):
        flash = {FLASH_COOKIE: base64.urlsafe_b64encode(value).decode()}
        with httpx.Client(base_url=primary.base_url, verify=False, cookies=flash, timeout=60) as c:
            page = c.get("/appliance/login")
            assert page.status_code == 200, (value, page.status_code)


def test_api_answers_are_neither_cached_nor_sniffed(primary: Server) -> None:
    with primary.client() as api, primary.client(token="") as stranger:
        for response in (
            api.get("/certificates"),
            api.get("/no-such-thing"),
            stranger.get("/certificates"),
            api.get("/openapi.json"),
        ):
            assert response.headers["cache-control"] == "no-store", response.url
            assert response.headers["x-content-type-options"] == "nosniff", response.url


def test_the_api_docs_page_is_for_logged_in_users_and_comes_from_the_appliance(
    primary: Server,
) -> None:
    with httpx.Client(base_url=primary.base_url, verify=False, timeout=60) as anonymous:
        moved = anonymous.get("/api/v1/docs")
        assert moved.status_code == 303 and moved.headers["location"] == "/appliance/api"
        page = anonymous.get("/appliance/api")
        assert page.status_code == 303 and "/appliance/login" in page.headers["location"]
    session = primary.login()
    with primary.pages(session) as pages:
        page = pages.get("/api")
    assert page.status_code == 200
    assert "POST /api/v1/imports" in page.text and "/api/v1/openapi.json" in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith(("/", "#", "data:")) for source in sources), sources
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_the_current_password_is_guessed_no_faster_than_at_the_login_page(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Its own appliance: the throttle then refuses this whole network for 15 minutes, and
    the API and the login page both say so (429, and when to try again in Retry-After; the
    login page answered 401, as for a wrong password)."""
    with serve(tmp_path_factory.mktemp("throttle") / "data", "127.0.0.85") as server:
        session = server.login()
        with server.browser(session) as me:
            wrong = {"current_password": "not it at all", "password": "a new long password"}
            for _ in range(5):
                problem(me.put("/me/password", json=wrong), 422, "validation")
            right = {**wrong, "current_password": server.running.admin_password}
            throttled = me.put("/me/password", json=right)
            problem(throttled, 429, "throttled")
            assert 14 * 60 < int(throttled.headers["retry-after"]) <= 15 * 60
        page = log_in(server.running, server.running.admin_password)
        assert page.status_code == 429, page.status_code
        assert 14 * 60 < int(page.headers["retry-after"]) <= 15 * 60
        assert "Too many failed logins: try again in 15 minute(s)." in page.text
        assert SESSION_COOKIE not in page.cookies
        # The Users page's own form says so beside the current password (not an error page).
        with server.pages(session) as pages:
            form = {"csrf_token": session.principal.csrf_token, **right}
            own = pages.post("/users/password", data=form)
        assert own.status_code == 429 and int(own.headers["retry-after"]) > 0
        assert re.search(
            r'id="own-current_password-error">Too many failed logins: try again in 1[45] ', own.text
        ), own.text


def test_a_new_user_and_token_are_where_location_says(primary: Server) -> None:
    """The Location of a 201 is the new item's place: a GET there shows it (the token
    without its value, which is shown once)."""
    with primary.client() as admin:
        body = {"username": "located", "password": "correct horse battery", "role": "auditor"}
        made = admin.post("/users", json=body)
        user = ok(made, 201)
        assert made.headers["location"] == "/api/v1/users/located"
        assert ok(admin.get(made.url.join(made.headers["location"]))) == user
        made = admin.post("/tokens", json={"name": "located", "role": "auditor"})
        token = ok(made, 201)
        assert made.headers["location"] == f"/api/v1/tokens/{token['id']}"
        shown = ok(admin.get(made.url.join(made.headers["location"])))
        assert shown == {key: value for key, value in token.items() if key != "token"}
        ok(admin.delete(f"/tokens/{token['id']}"))
        ok(admin.delete("/users/located"), 204)
