"""Issue 10, point 3 through the API and the pages: POST /certificates/{id}/renewal-request
signs a new request with the certificate's key; the page's form is pre-filled; the
delete confirmation says which requests' keys stay (a certificate or another request still
uses them) and which go."""

from __future__ import annotations

import html
import re
from pathlib import Path

from tests.api.client import Server, ok, problem
from tests.api.workflows import ca_signed, import_ok, self_signed
from tests.support.openssl import OpensslCA, openssl


def pubkey(kind: str, data: bytes, form: str = "PEM") -> str:
    return openssl(kind, "-inform", form, "-noout", "-pubkey", stdin=data)


def test_a_renewal_request_has_the_key_and_the_names_of_its_certificate(
    primary: Server, ca: OpensslCA, tmp_path: Path
) -> None:
    with primary.client() as api:
        old, _ = ca_signed(api, ca, "renewal.example.test", tmp_path)
        path = f"/certificates/{old['id']}/renewal-request"
        # Unchanged fields and an RSA key make the very request the certificate came from.
        same = ok(api.post(path), 201)
        assert same["notices"] == ["this request is already stored as 'renewal.example.test'"]
        assert same["request"]["subject"] == old["subject"]
        assert same["request"]["sans"] == old["sans"]

        answer = api.post(path, json={"subject": {"organizational_unit": "Renewals"}})
        request = ok(answer, 201)["request"]
        assert answer.headers["location"] == f"/api/v1/requests/{request['id']}"
        assert ok(api.get(answer.url.join(answer.headers["location"])))["id"] == request["id"]
        assert request["subject"] == old["subject"].replace("OU=Support", "OU=Renewals")
        assert request["sans"] == old["sans"]
        assert request["friendly_name"] == old["friendly_name"] + " (renewal)"
        leaf = api.get(f"/certificates/{old['id']}/export").content  # DER
        assert pubkey("req", request["pem"].encode()) == pubkey("x509", leaf, "DER")

        # The CA signs it: the certificate finds the key, as one from the first request did.
        csr = tmp_path / "renewal.csr"
        csr.write_text(request["pem"])
        renewed = ca.sign(csr, tmp_path / "renewed.pem", days=400)
        (entry,) = import_ok(api, [("renewed.pem", renewed.read_bytes())])
        assert (entry["kind"], entry["status"]) == ("certificate", "linked")
        assert ok(api.get(f"/certificates/{entry['id']}"))["has_private_key"]

        events = ok(api.get("/audit", params={"action": "key.sign-request"}))["events"]
        assert events[0]["target"].startswith(old["friendly_name"])
        assert request["fingerprint_sha256"] in events[0]["detail"]


def test_the_body_changes_fields_and_mistakes_are_named(primary: Server, ca: OpensslCA) -> None:
    with primary.client() as api:
        old = self_signed(api, "editable", "editable.example.test")
        body = {
            "friendly_name": "editable 2027",
            "subject": {"organizational_unit": "Remote Support", "organization": ""},
            "subject_alternative_names": ["editable.example.test", "more.example.test"],
        }
        request = ok(api.post(f"/certificates/{old['id']}/renewal-request", json=body), 201)[
            "request"
        ]
        assert request["friendly_name"] == "editable 2027"
        assert request["subject"] == "CN=editable.example.test, OU=Remote Support, C=US"
        assert request["sans"] == [
            "dNSName - editable.example.test",
            "dNSName - more.example.test",
        ]
        wrong = {"subject": {"country": "XX"}}
        bad = problem(
            api.post(f"/certificates/{old['id']}/renewal-request", json=wrong), 422, "validation"
        )
        assert bad["field"] == "subject.country"
        problem(
            api.post(f"/certificates/{old['id']}/renewal-request", json={"key": "p256"}),
            422,
            "validation",
        )

        (root,) = import_ok(api, [("root.pem", ca.root.read_bytes())])
        root_id = root["id"] if root["kind"] == "certificate" else None
        assert root_id is not None
        missing = problem(api.post(f"/certificates/{root_id}/renewal-request"), 422, "key-missing")
        assert "cannot be renewed with its own key" in missing["detail"]
        problem(api.post("/certificates/9999999/renewal-request"), 404, "not-found")


def confirmation(primary: Server, request_ids: list[int]) -> list[str]:
    """The Delete confirmation's line for each chosen request (the pages, not the API)."""
    session = primary.login()
    form = {"csrf_token": session.principal.csrf_token, "action": "delete", "id": request_ids}
    with primary.pages(session) as pages:
        answer = pages.post("/security/requests/action", data=form)
    assert answer.status_code == 200, answer.text
    items = re.findall(r"<li>(.*?)</li>", answer.text, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", item)).split()) for item in items]


def test_the_delete_confirmation_knows_who_else_uses_a_key(primary: Server) -> None:
    with primary.client() as api:
        certificate = self_signed(api, "shared key", "shared.example.test")
        path = f"/certificates/{certificate['id']}/renewal-request"
        first = ok(api.post(path, json={"friendly_name": "first"}), 201)["request"]
        second = ok(api.post(path, json={"friendly_name": "second"}), 201)["request"]

        (line,) = confirmation(primary, [first["id"]])
        kept = "Its private key is kept: certificate 'shared key', request 'second' use it."
        assert kept in line

        deleted = ok(api.delete(f"/certificates/{certificate['id']}"))
        assert deleted["private_key_deleted"] is False  # the requests still use it
        (line,) = confirmation(primary, [first["id"]])
        assert "Its private key is kept: request 'second' uses it." in line
        both = confirmation(primary, [first["id"], second["id"]])
        assert all("deleted with it and cannot be recovered" in line for line in both), both

        gone = ok(api.delete(f"/requests/{first['id']}"))
        assert gone["private_key_deleted"] is False
        assert ok(api.get(f"/requests/{second['id']}"))["has_private_key"]
        gone = ok(api.delete(f"/requests/{second['id']}"))
        assert gone["private_key_deleted"] is True


def test_the_renewal_page_is_prefilled_and_creates_the_request(primary: Server) -> None:
    with primary.client() as api:
        certificate = self_signed(api, "from the page", "page.example.test")
    session = primary.login()
    csrf = session.principal.csrf_token
    page = f"/security/certificates/{certificate['id']}/renewal-request"
    with primary.pages(session) as pages:
        edit = pages.get(f"/security/certificates/{certificate['id']}")
        assert f'href="/appliance{page}">Create Renewal Request' in edit.text
        form = pages.get(page)
        assert form.status_code == 200
        assert 'value="from the page (renewal)"' in form.text
        assert 'value="page.example.test"' in form.text and 'value="Business Company"' in form.text
        assert "ECDSA" in form.text and 'name="key"' not in form.text
        data = {
            "csrf_token": csrf,
            "friendly_name": "from the page (renewal)",
            "country": "US",
            "organization": "Business Company",
            "common_name": "page.example.test",
            "sans": ["page.example.test"],
            "button": "request",
        }
        done = pages.post(page, data=data)
    assert done.status_code == 303
    request_id = int(done.headers["location"].rsplit("/", 1)[1])
    with primary.client() as api:
        request = ok(api.get(f"/requests/{request_id}"))
    assert (request["renews"], request["certificate_ids"]) == ([certificate["id"]], [])
    assert request["subject"] == "CN=page.example.test, O=Business Company, C=US"
