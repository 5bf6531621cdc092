"""Accounts are cluster-wide (issue 12, point 6): two `certgate serve` nodes on one PostgreSQL
store share sessions and the login throttle, because both live in the store. A user logged
in through node A's login page is logged in on node B; logging out on B ends the session on
A; failed logins through either node count against the same limit."""

from __future__ import annotations

from certgate.web.security import CSRF_FIELD, SESSION_COOKIE
from tests.support.login_page import browser, form_token, log_in
from tests.support.server import RunningAppliance


def test_a_session_opened_on_one_node_works_and_ends_on_every_node(
    nodes: tuple[RunningAppliance, RunningAppliance],
) -> None:
    a, b = nodes
    answer = log_in(a, a.admin_password)
    assert answer.status_code == 303, answer.text
    session = answer.cookies[SESSION_COOKIE]

    with browser(b, session) as on_b:
        me = on_b.get("/api/v1/me")
        assert me.status_code == 200 and me.json()["via"] == "session"
        page = on_b.get("/appliance/status")
        assert page.status_code == 200  # not the login page
        logout = on_b.post("/appliance/logout", data={CSRF_FIELD: form_token(page)})
        assert logout.status_code == 303 and logout.headers["location"] == "/appliance/login"
        assert on_b.get("/api/v1/me").status_code == 401

    with browser(a, session) as on_a:  # logged out on B: ended on A too
        assert on_a.get("/api/v1/me").status_code == 401
        page = on_a.get("/appliance/status")
        assert page.status_code == 303 and "/appliance/login" in page.headers["location"]


def test_failed_logins_through_either_node_count_against_one_limit(
    nodes: tuple[RunningAppliance, RunningAppliance],
) -> None:
    """The throttle refuses a client network after 5 failures in 15 minutes: 3 through A
    and 2 through B, then even the right password is refused on both."""
    a, b = nodes
    for node in (a, a, b, a, b):
        refused = log_in(node, "not the password at all")
        assert refused.status_code == 401
        assert "wrong username or password" in refused.text.lower(), refused.text
    for node in (a, b):
        throttled = log_in(node, a.admin_password)
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
        assert "too many failed logins" in throttled.text.lower(), throttled.text
        assert SESSION_COOKIE not in throttled.cookies
