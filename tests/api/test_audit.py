"""GET /api/v1/audit: a change and a key export made with an API token are recorded with the
token's name and the client's address; auditors may read the trail; ``certgate audit list
--json`` prints the same document."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certgate.web.security import SESSION_COOKIE
from tests.api.client import Server, ok, problem
from tests.api.workflows import self_signed
from tests.integration.conftest import Certgate

CLIENT = "127.0.0.9"  # the address the API client connects from
PASSPHRASE = "api passphrase never in the trail"


def from_address(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url + "/api/v1",
        verify=False,
        headers={"Authorization": f"Bearer {token}"},
        transport=httpx.HTTPTransport(local_address=CLIENT, verify=False),
        timeout=60,
    )


def test_a_change_and_a_key_export_by_token_name_the_token_and_the_client(
    primary: Server,
) -> None:
    with primary.client() as admin:
        deployer = ok(admin.post("/tokens", json={"name": "deployer", "role": "admin"}), 201)
        reader = ok(admin.post("/tokens", json={"name": "reader", "role": "auditor"}), 201)
    with from_address(primary, deployer["token"]) as api:
        created = self_signed(api, "audited by token", "token.example.test")
        body = {"include_private_key": True, "passphrase": PASSPHRASE}
        exported = api.post(f"/certificates/{created['id']}/export", json=body)
        assert exported.status_code == 200

    with from_address(primary, reader["token"]) as auditor:
        trail = ok(auditor.get("/audit", params={"target": "audited by token"}))
    by_action = {event["action"]: event for event in trail["events"]}
    assert set(by_action) == {"certificate.create", "key.export"}
    for event in by_action.values():
        assert event["actor"] == "token:deployer"
        assert event["source"] == CLIENT
    assert created["fingerprint_sha256"] in by_action["certificate.create"]["target"]
    assert created["fingerprint_sha256"] in by_action["key.export"]["detail"]
    assert PASSPHRASE not in str(trail) and deployer["token"] not in str(trail)


def test_the_cli_prints_the_apis_document(primary: Server) -> None:
    with primary.client() as admin:
        self_signed(admin, "same document", "same.example.test")
        self_signed(admin, "same document 2", "same2.example.test")
        query = {"target": "same document", "action": "certificate.", "limit": 1}
        from_api = ok(admin.get("/audit", params=query))
    from_cli = Certgate(primary.running.data_dir, subprocess=False).json(
        "audit", "list", "--target", "same document", "--action", "certificate.", "--limit", "1"
    )
    assert from_cli == from_api
    assert from_api["older"] is not None and len(from_api["events"]) == 1


def test_reading_the_trail_needs_credentials_and_bad_filters_are_named(primary: Server) -> None:
    with primary.client("") as stranger:
        problem(stranger.get("/audit"), 401, "unauthenticated")
    with primary.client() as admin:
        bad = problem(admin.get("/audit", params={"since": "last tuesday"}), 422, "validation")
        assert bad["field"] == "since"
        problem(admin.get("/audit", params={"limit": 0}), 422, "validation")
        unknown = problem(admin.get("/audit", params={"action": "key.steal"}), 422, "validation")
        assert unknown["field"] == "action"


@pytest.fixture(scope="module")
def page_session(primary: Server) -> str:
    """The administrator's browser session (its cookie)."""
    return primary.login().cookie_value


_ANY_TEXT = st.text(max_size=80) | st.sampled_from(["key.", "7d", "2026-12-04T10:00", "0", "-1"])


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=st.dictionaries(st.sampled_from(["actor", "action", "target", "since", "until",
                                              "before"]), _ANY_TEXT))  # fmt: skip
def test_the_audit_log_page_answers_any_filter_without_a_fault(
    primary: Server, page_session: str, query: dict[str, str]
) -> None:
    session = page_session
    with httpx.Client(
        base_url=primary.base_url, verify=False, cookies={SESSION_COOKIE: session}
    ) as browser:
        answer = browser.get("/appliance/audit", params=query)
    assert answer.status_code in (200, 422), answer.text[:500]
    assert answer.headers["content-type"].startswith("text/html")
    assert "Status :: Audit Log" in answer.text


def test_a_head_of_a_download_records_nothing(primary: Server) -> None:
    """``curl -I`` (a monitor's HEAD) of an export or of the support package downloads
    nothing: the trail recorded it as a certificate exported, a support package taken."""
    with primary.client() as api:
        created = self_signed(api, "asked with HEAD", "head.example.test")
        newest = ok(api.get("/audit", params={"limit": 1}))["events"]
        for path in (f"/certificates/{created['id']}/export", "/support-package"):
            asked = api.head(path)
            assert asked.status_code == 200 and asked.content == b"", path
            assert asked.headers["content-disposition"].startswith("attachment"), path
        assert ok(api.get("/audit", params={"limit": 1}))["events"] == newest
        api.get(f"/certificates/{created['id']}/export")
        exported = ok(api.get("/audit", params={"limit": 1}))["events"]
    assert exported[0]["action"] == "certificate.export"
