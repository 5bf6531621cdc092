"""Every failure is an RFC 9457 problem with a stable type, the field named for bad input;
bad input is never a 500."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from certgate.fields import LABELS, base_key
from certgate.limits import FRIENDLY_NAME_MAX, SANS_MAX
from certgate.pki.diagnostics import WarningCode
from certgate.pki.names import SUBJECT_MAX_LENGTHS
from tests.api.client import Server, ok, problem
from tests.api.conftest import serve
from tests.api.workflows import self_signed, upload
from tests.support.openssl import OpensslCA, pkcs12
from tests.support.server import run_cli


def test_not_found(primary: Server) -> None:
    with primary.client() as api:
        problem(api.get("/certificates/9999999"), 404, "not-found")
        problem(api.get("/certificates/abcdef0123456789"), 404, "not-found")
        problem(api.get("/requests/9999999/csr"), 404, "not-found")
        problem(api.delete("/addresses/192.0.2.200"), 404, "not-found")
        problem(api.delete("/users/nobody"), 404, "not-found")
        problem(api.delete("/tokens/999999"), 404, "not-found")
        problem(api.get("/no-such-resource"), 404, "not-found")
        assert problem(api.patch("/tokens"), 405, "method-not-allowed")


@pytest.mark.parametrize("number", ["-1", "0", "-12345678901", "99999999999999999999"])
def test_an_id_nothing_can_have_is_not_found_like_any_unknown_id(
    primary: Server, number: str
) -> None:
    """``/appliance/security/certificates/-1`` answered 422 'not understood' and
    ``/api/v1/tokens/0`` 422 'greater than or equal to 1': a number that no item has is
    not found, as the id no item has yet is, on the pages and in the API."""
    with primary.client() as api:
        for path in ("/certificates", "/requests", "/tokens", "/acme/orders"):
            problem(api.get(f"{path}/{number}"), 404, "not-found")
        problem(api.delete(f"/tokens/{number}"), 404, "not-found")
        problem(api.get(f"/requests/{number}/csr"), 404, "not-found")
    with primary.pages(primary.login()) as pages:
        for page in ("certificates/{}", "certificates/{}/export", "requests/{}"):
            answer = pages.get("/security/" + page.format(number))
            assert answer.status_code == 404, (page, answer.status_code)
            assert "Not Found" in answer.text


def test_a_method_the_path_does_not_take_is_answered_with_the_methods_it_takes(
    primary: Server,
) -> None:
    """405 names the path's methods in ``Allow`` (RFC 9110 requires it; docs/api.md says
    so), for the API's problems and the pages' error pages alike."""
    with primary.client() as api:
        for method, path, allowed in (
            ("PATCH", "/tokens", "GET, HEAD, POST"),
            ("PUT", "/tokens/1", "DELETE, GET, HEAD"),
            ("POST", "/me/password", "PUT"),
            ("PUT", "/certificates/1/export", "GET, HEAD, POST"),
        ):
            answer = api.request(method, path)
            problem(answer, 405, "method-not-allowed")
            assert answer.headers.get("allow") == allowed, (method, path)
    with primary.pages(primary.login()) as pages:
        for method, path, allowed in (
            ("GET", "/logout", "POST"),
            ("HEAD", "/logout", "POST"),
            ("PUT", "/login", "GET, HEAD, POST"),
        ):
            answer = pages.request(method, path)
            assert answer.status_code == 405, (method, path)
            assert answer.headers["content-type"].startswith("text/html")
            assert answer.headers.get("allow") == allowed, (method, path)


def test_a_username_that_is_a_dot_segment_is_refused(primary: Server) -> None:
    """A browser resolves "/users/../delete" to "/delete": a user named ".." or "." could
    be neither removed nor given a password from the pages (nor by curl, which does too)."""
    with primary.client() as api:
        for name in (".", ".."):
            body = {"username": name, "password": "0123456789ab", "role": "auditor"}
            refused = problem(api.post("/users", json=body), 422, "validation")
            assert refused["field"] == "username", refused
        assert not {".", ".."} & {user["username"] for user in ok(api.get("/users"))}


def test_head_is_answered_as_get_without_the_body(primary: Server) -> None:
    """``curl -I`` and monitors ask with HEAD: the GET's status and headers, no body."""
    with primary.client() as api:
        got, head = api.get("/status"), api.head("/status")
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-type"] == got.headers["content-type"] == "application/json"
        assert api.head("/no-such-resource").status_code == 404
    with httpx.Client(base_url=primary.base_url, verify=False, timeout=60) as browser:
        page = browser.head("/appliance/login")
        assert (page.status_code, page.content) == (200, b""), page.status_code
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-store"
        assert browser.head("/appliance/static/certgate.css").status_code == 200


def test_a_path_with_a_trailing_slash_leads_to_the_page_on_this_appliance(
    primary: Server,
) -> None:
    """The redirect to the path without (or with) the slash named the request's Host in its
    Location: a request with another Host was sent to that site. Now a relative Location."""
    forged = {"Host": "evil.example"}
    with httpx.Client(base_url=primary.base_url, verify=False, timeout=60) as browser:
        for path, location in (
            ("/appliance/login/", "/appliance/login"),
            (
                "/appliance/login/?next=%2Fappliance%2Fusers",
                "/appliance/login?next=%2Fappliance%2Fusers",
            ),
            ("/api/v1/status/", "/api/v1/status"),
        ):
            moved = browser.get(path, headers=forged)
            assert moved.status_code == 307, (path, moved.status_code)
            assert moved.headers["location"] == location, path
        assert browser.get("/appliance/login/").next_request is not None
        problem(browser.get("/api/v1/no-such-thing/", headers=forged), 404, "not-found")
        assert browser.get("/appliance/static/no-such.css/").status_code == 404


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "239.1.2.3", "fe80::1"])
def test_an_address_that_is_not_one_address_of_this_host_is_refused(
    primary: Server, address: str
) -> None:
    with primary.client() as api:
        found = problem(api.post("/addresses", json={"address": address}), 422, "validation")
        assert address in found["detail"], found
        assert all(entry["address"] != address for entry in ok(api.get("/addresses")))


def test_the_networking_page_refuses_an_address_that_is_not_one_address_of_this_host(
    primary: Server,
) -> None:
    session = primary.login()
    with primary.pages(session) as pages:
        page = pages.post(
            "/networking",
            data={"csrf_token": session.principal.csrf_token, "address": "::"},
        )
    assert page.status_code == 422, page.text
    assert "is the wildcard address (every interface)" in page.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"friendly_name": "x", "subject": {}}, "subject.common_name"),
        ({"friendly_name": "", "subject": {"common_name": "a"}}, "friendly_name"),
        (
            {"friendly_name": "x", "subject": {"common_name": "a", "country": "ZZ"}},
            "subject.country",
        ),
        ({"friendly_name": "x", "subject": {"common_name": "a"}}, "subject_alternative_names"),
        ({"friendly_name": "x", "subject": {"common_name": "a"}, "key": "dsa"}, "key"),
        ({"friendly_name": "x", "subject": {"common_name": "a"}, "days": 0}, "days"),
        ({"friendly_name": "x", "subject": {"common_name": "a"}, "days": "many"}, "days"),
        (
            {
                "friendly_name": "x",
                "subject": {"common_name": "a"},
                "subject_alternative_names": ["a.example", "b.example", "a..b"],
            },
            "subject_alternative_names[2]",
        ),
        (
            {"friendly_name": "x", "subject": {"common_name": "a"}, "friendlyName": "y"},
            "friendlyName",
        ),
        ([1, 2], "body"),
    ],
)
def test_validation_names_the_field(primary: Server, body: object, field: str) -> None:
    with primary.client() as api:
        found = problem(api.post("/certificates", json=body), 422, "validation")
    assert found["field"] == field, found
    assert found["label"] == LABELS.get(base_key(field), field), found
    for error in found.get("errors") or []:  # never the input: it may be a password
        assert set(error) == {"field", "location", "message"}


def create_on_the_page(primary: Server, **fields: str | list[str]) -> httpx.Response:
    """Create Certificate Request on the Create page, as the administrator, with ``fields``."""
    session = primary.login()
    with primary.pages(session) as pages:
        return pages.post(
            "/security/certificates/create",
            data={
                "csrf_token": session.principal.csrf_token,
                "key": "p256",
                "button": "request",
                **fields,
            },
        )


def test_no_subject_alternative_name_is_refused_on_the_api_and_the_page(primary: Server) -> None:
    """The guide: a server certificate or request has "one or more subject alternative
    names"; a Common Name that is a label gives none, so nothing is made."""
    label_only = {"friendly_name": "no san", "subject": {"common_name": "Support Portal"}}
    with primary.client() as api:
        before = (ok(api.get("/certificates")), ok(api.get("/requests")))
        for path in ("/certificates", "/requests"):
            found = problem(api.post(path, json=label_only), 422, "validation")
            assert found["field"] == "subject_alternative_names", found
            assert "one or more subject alternative names" in found["detail"]
        page = create_on_the_page(primary, friendly_name="no san", common_name="Support Portal")
        assert page.status_code == 422, page.text
        assert "one or more subject alternative names" in page.text
        # The Common Name's help carries the guide's caveats.
        assert "simply a human-readable label" in page.text
        assert "Some certificate authorities require your fully qualified DNS name" in page.text
        assert (ok(api.get("/certificates")), ok(api.get("/requests"))) == before


def test_every_face_takes_at_most_the_same_number_of_sans(primary: Server) -> None:
    """One limit of subject alternative names for the API, the Create page and the CLI: the
    API refused the 101st while the page and ``cert create`` made a request of any number."""
    sans = [f"san-{number}.example.test" for number in range(SANS_MAX + 1)]
    with primary.client() as api:
        before = (ok(api.get("/certificates")), ok(api.get("/requests")))
        body = {
            "friendly_name": "too many sans",
            "subject": {"common_name": "Support Portal"},
            "subject_alternative_names": sans,
        }
        found = problem(api.post("/requests", json=body), 422, "validation")
        assert found["field"] == "subject_alternative_names", found
        page = create_on_the_page(
            primary, friendly_name="too many sans", common_name="Support Portal", sans=sans
        )
        assert page.status_code == 422, page.text
        assert f"at most {SANS_MAX}" in page.text
        args = [x for san in sans for x in ("--san", san)]
        refused = run_cli(
            primary.running.data_dir, "cert", "create", "--request", "--name", "too many sans",
            "--cn", "Support Portal", "--key", "p256", *args, check=False, **primary.running.env,
        )  # fmt: skip
        assert refused.returncode == 1, refused
        assert refused.stderr.startswith("error: Subject Alternative Names: "), refused.stderr
        assert f"at most {SANS_MAX}" in refused.stderr
        assert (ok(api.get("/certificates")), ok(api.get("/requests"))) == before


def test_every_face_trims_a_field_before_checking_its_length(primary: Server) -> None:
    """Spaces (or a line break) around a field are trimmed before its length is checked, on
    every face: the API counted them, refusing what the page and the CLI accept."""
    name, common_name = "n" * FRIENDLY_NAME_MAX, "c" * SUBJECT_MAX_LENGTHS["common_name"]
    padded = {"friendly_name": f" {name}\n", "common_name": f"  {common_name} "}
    san = " trimmed.example.test "
    with primary.client() as api:
        body = {
            "friendly_name": padded["friendly_name"],
            "subject": {"common_name": padded["common_name"]},
            "subject_alternative_names": [san],
        }
        by_api = ok(api.post("/requests", json=body), 201)["request"]
        page = create_on_the_page(primary, **padded, sans=[san])
        assert page.status_code == 303, page.text
        by_cli = run_cli(
            primary.running.data_dir, "cert", "create", "--request", "--json", "--key", "p256",
            "--name", padded["friendly_name"], "--cn", padded["common_name"], "--san", san,
            **primary.running.env,
        )  # fmt: skip
        made = [by_api, *(r for r in ok(api.get("/requests")) if r["id"] > by_api["id"])]
    assert json.loads(by_cli.stdout)["request"] in made
    assert len(made) == 3
    assert {(r["friendly_name"], r["subject"]) for r in made} == {(name, f"CN={common_name}")}


def test_every_face_trims_a_username_or_a_relay_host(primary: Server) -> None:
    """The API refused " dave " (its pattern saw the spaces) while ``user add`` and the
    Users page trim it, as the service does; the same for the relay's host and addresses,
    and an IP address."""
    user = {"username": " dave ", "password": "long enough password", "role": "auditor"}
    relay = {
        "host": " smtp.example.test ",
        "from_address": "certgate@example.test\n",
        "to_addresses": [" ops@example.test "],
    }
    with primary.client() as api:
        added = ok(api.post("/users", json=user), 201)
        ok(api.delete("/users/dave"), 204)
        saved = ok(api.put("/email", json=relay))
        padded = " " * 60 + "192.0.2.77 "  # as 'ip add' takes it: 71 characters, trimmed
        address = ok(api.post("/addresses", json={"address": padded}), 201)
        ok(api.delete("/addresses/192.0.2.77"), 204)
    assert address["address"] == "192.0.2.77"
    assert added["username"] == "dave"
    assert (saved["host"], saved["from_address"], saved["to_addresses"]) == (
        "smtp.example.test",
        "certgate@example.test",
        ["ops@example.test"],
    )


def test_malformed_requests(primary: Server) -> None:
    with primary.client() as api:
        broken = api.post(
            "/certificates",
            content=b'{"friendly_name": ',
            headers={"content-type": "application/json"},
        )
        assert problem(broken, 422, "validation")["field"] == "body"
        problem(api.post("/certificates", content=b"friendly_name=x"), 422, "validation")
        assert (
            problem(api.get("/certificates", params={"limit": 0}), 422, "validation")["field"]
            == "limit"
        )
        assert (
            problem(
                api.get("/certificates", params={"expiring_before": "soon"}), 422, "validation"
            )["field"]
            == "expiring_before"
        )
        # in UTC, a moment before year 1 (not a crash)
        early = {"expiring_before": "0001-01-01T00:00:00+01:00"}
        assert problem(api.get("/certificates", params=early), 422, "validation")["field"] == (
            "expiring_before"
        )
        problem(api.get("/certificates/not-a-reference"), 422, "validation")
        problem(api.get("/tokens/x"), 422, "validation")
        problem(api.get("/tokens/999999"), 404, "not-found")
        problem(api.get("/users/nobody"), 404, "not-found")
        problem(api.post("/addresses", json={"address": "999.1.1.1"}), 422, "validation")
        problem(api.put("/tls", json={"tls12_ciphers": "NOTHING-KNOWN"}), 422, "validation")
        problem(
            api.put("/tls", json={"minimum_version": "1.3", "maximum_version": "1.2"}),
            422,
            "validation",
        )
        problem(
            api.post("/users", json={"username": "x", "password": "short", "role": "admin"}),
            422,
            "validation",
        )
        naive = ok(api.get("/certificates", params={"expiring_before": "2000-01-01T00:00:00"}))
        assert naive["total"] == 0


def test_conflicts(primary: Server) -> None:
    with primary.client() as api:
        factory = ok(api.get("/certificates", params={"q": "certgate Appliance"}))["items"][0]
        assert factory["is_factory"]
        problem(api.delete(f"/certificates/{factory['id']}"), 409, "protected")
        problem(api.post("/addresses", json={"address": primary.address}), 409, "conflict")
        problem(api.delete("/users/admin"), 409, "conflict")

        # A certificate in use is refused unless its addresses go to the factory certificate.
        ok(api.post("/addresses", json={"address": "127.0.0.96"}), 201)
        in_use = self_signed(api, "in use", "in-use.example.test")
        ok(api.put("/addresses/127.0.0.96", json={"certificate": in_use["fingerprint_sha256"]}))
        problem(api.delete(f"/certificates/{in_use['id']}"), 409, "in-use")
        deleted = ok(
            api.delete(f"/certificates/{in_use['id']}", params={"reassign_to_factory": True})
        )
        assert deleted["addresses_moved_to_factory"] == ["127.0.0.96"]
        moved = next(a for a in ok(api.get("/addresses")) if a["address"] == "127.0.0.96")
        assert moved["is_factory_certificate"]
        ok(api.delete("/addresses/127.0.0.96"), 204)


def _input(page: str, input_id: str) -> str:
    """The page's input of that id, as the HTML writes it."""
    found = re.search(rf'<input [^>]*id="{input_id}"[^>]*>', page)
    assert found, page
    return found.group(0)


def test_a_form_refused_by_a_conflict_or_an_unreadable_file_comes_back_as_typed(
    primary: Server,
) -> None:
    """A user name taken, an address already configured, a chain file that is no
    certificate: each answered with a bare error page ("use your browser's Back button")
    and what was typed gone. Now the form again, as typed, the reason beside its input."""
    with primary.client() as api:
        certificate = self_signed(api, "typed again", "typed-again.example.test")
    session = primary.login()
    csrf = str(session.principal.csrf_token)
    with primary.pages(session) as pages:
        typed = {"username": "admin", "password": "long enough password", "role": "auditor"}
        user = pages.post("/users", data={"csrf_token": csrf, **typed})
        assert user.status_code == 409, user.status_code
        assert 'value="admin"' in _input(user.text, "username")
        assert 'id="username-error">the user &#39;admin&#39; already exists' in user.text
        assert '<option value="auditor" selected>' in user.text

        form = {"csrf_token": csrf, "address": primary.address, "hostnames": "a.example.test"}
        address = pages.post("/networking", data=form)
        assert address.status_code == 409, address.status_code
        assert f'value="{primary.address}"' in _input(address.text, "address")
        assert 'value="a.example.test"' in _input(address.text, "hostnames")
        taken = f'id="address-error">the address {primary.address} is already configured'
        assert taken in address.text

        form = {"csrf_token": csrf, "friendly_name": "renamed as typed", "chain_mode": "manual"}
        chain = [("chain_file", ("chain.pem", b"not a certificate", "application/x-pem-file"))]
        edit = pages.post(f"/security/certificates/{certificate['id']}", data=form, files=chain)
        assert edit.status_code == 422, edit.status_code
        assert 'value="renamed as typed"' in _input(edit.text, "friendly_name")
        assert 'id="pem-error">' in edit.text and "certificate" in edit.text
    with primary.client() as api:
        assert ok(api.get(f"/certificates/{certificate['id']}"))["friendly_name"] == "typed again"


def test_key_missing(primary: Server, ca: OpensslCA) -> None:
    with primary.client() as api:
        (root,) = ok(upload(api, [("root.pem", ca.root.read_bytes())]))["entries"]
        found = problem(
            api.put(f"/addresses/{primary.address}", json={"certificate": root["id"]}),
            422,
            "key-missing",
        )
        assert "Private Key" in found["detail"]


def test_files_that_cannot_be_imported(primary: Server, ca: OpensslCA, tmp_path: Path) -> None:
    leaf, key = ca.issue("p12.example.test", ["p12.example.test"], tmp_path / "p12")
    bundle = pkcs12(tmp_path / "bundle.p12", leaf, key, password="right password")
    crl = ca.crl(tmp_path / "root.crl")
    with primary.client() as api:
        wrong = problem(
            upload(api, [("bundle.p12", bundle.read_bytes())], "wrong"), 422, "wrong-password"
        )
        assert wrong["entries"] == [
            {
                "file": "bundle.p12",
                "status": "error",
                "kind": "file",
                "id": None,
                "message": wrong["entries"][0]["message"],
                "fingerprint_sha256": None,
                "error_code": "wrong-password",
            }
        ]
        problem(upload(api, [("bundle.p12", bundle.read_bytes())]), 422, "password-required")
        problem(upload(api, [("root.crl", crl.read_bytes())]), 422, "not-a-certificate")
        problem(upload(api, [("noise.bin", os.urandom(300))]), 422, "import-format")
        mixed = problem(
            upload(api, [("root.crl", crl.read_bytes()), ("noise.bin", os.urandom(300))]),
            422,
            "import-format",
        )
        assert [entry["error_code"] for entry in mixed["entries"]] == [
            "not-a-certificate",
            "import-format",
        ]
        # One good file among bad ones: 200, an entry per object, errors included.
        partial = ok(upload(api, [("root.crl", crl.read_bytes()), ("leaf.pem", leaf.read_bytes())]))
        assert sorted(entry["status"] for entry in partial["entries"]) == ["added", "error"]
        problem(api.post("/imports", data={"password": "x"}), 422, "validation")


def test_a_fault_of_the_server_is_a_5xx(primary: Server) -> None:
    """A sealed key the master key cannot open is the appliance's fault, not the caller's."""
    with primary.client() as api:
        created = self_signed(api, "damaged key", "damaged-key.example.test")
        service = primary.service()
        with service.store.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE private_keys SET sealed = :junk WHERE public_key_fingerprint = "
                    "(SELECT public_key_fingerprint FROM certificates WHERE id = :id)"
                ),
                {"junk": b"\x01" + os.urandom(60), "id": created["id"]},
            )
        body = {"include_private_key": True, "passphrase": "a passphrase", "pem": True}
        found = problem(
            api.post(f"/certificates/{created['id']}/export", json=body), 500, "sealing"
        )
        assert found["title"] == "Internal Server Error"
        ok(api.delete(f"/certificates/{created['id']}"))


def test_closed_sets_are_checked_where_they_enter(primary: Server) -> None:
    """The warning filter takes every code certgate derives and nothing else; a subject field
    is held to its RFC 5280 bound by the API's schema as by the pages."""
    with primary.client() as api:
        for code in WarningCode:
            ok(api.get("/certificates", params={"warning": code.value}))
        ok(api.get("/certificates", params={"warning": "any"}))
        found = problem(api.get("/certificates", params={"warning": "nonsense"}), 422, "validation")
        assert found["field"] == "warning"
        long_name = {"friendly_name": "x", "subject": {"common_name": "a" * 65}}
        found = problem(api.post("/certificates", json=long_name), 422, "validation")
        assert found["field"] == "subject.common_name"
        document = ok(api.get("/openapi.json"))
    warning_codes = json.dumps(document["components"]["schemas"]["WarningCode"])
    assert all(f'"{code.value}"' in warning_codes for code in WarningCode)


def test_a_body_that_is_not_json_is_415(primary: Server) -> None:
    with primary.client() as api:
        found = problem(
            api.post(
                "/certificates",
                content=b"friendly_name=x",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            415,
            "unsupported-media-type",
        )
        assert "application/json" in found["detail"]
        problem(api.post("/imports", json={"files": []}), 422, "validation")  # a form: exempt
        document = ok(api.get("/openapi.json"))
    operations = document["paths"]
    assert "415" in operations["/api/v1/certificates"]["post"]["responses"]
    assert "415" not in operations["/api/v1/imports"]["post"]["responses"]
    listener = document["components"]["schemas"]["Listener"]["properties"]["state"]
    assert set(listener["enum"]) == {"listening", "failed"}


def test_the_last_address_is_removed_only_when_the_lockout_is_confirmed(tmp_path: Path) -> None:
    with serve(tmp_path / "data", "127.0.0.44") as server, server.client() as api:
        found = problem(api.delete("/addresses/127.0.0.44"), 409, "confirmation-required")
        assert "127.0.0.44 is the last IP address" in found["detail"], found
        assert "locks the administrator out" in found["detail"], found
        assert "?confirm=true" in found["detail"], found
        assert [entry["address"] for entry in ok(api.get("/addresses"))] == ["127.0.0.44"]
        ok(api.delete("/addresses/127.0.0.44", params={"confirm": "true"}), 204)
        listed = run_cli(server.running.data_dir, "ip", "list", "--json")
        assert json.loads(listed.stdout) == []
