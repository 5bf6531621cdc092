"""Bad input is refused with a clear answer, never a 500: friendly names beyond Latin-1 in
download names, lone surrogates in JSON text, Unicode digits and 20-digit numbers as ids, ACME
identifiers that are neither DNS names nor IP addresses."""

from __future__ import annotations

import html
import re
from urllib.parse import unquote

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from certgate.text import visible
from tests.api.client import Server, ok, problem
from tests.api.workflows import import_ok, self_signed
from tests.support.pki import fingerprint, issue, new_key, pem
from tests.support.server import run_cli

NAME = "证书 Ωmega Zürich"  # none of it is Latin-1 but the ü


def _typed_name(disposition: str) -> str:
    """The name RFC 6266's ``filename*`` gives, decoded."""
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    return unquote(encoded)


def _ascii_name(disposition: str) -> str:
    return disposition.split('filename="', 1)[1].split('"', 1)[0]


def test_page_downloads_of_non_latin1_friendly_names_carry_both_file_names(
    primary: Server,
) -> None:
    with primary.client() as api:
        certificate = self_signed(api, NAME, "unicode-download.example.test")
        body = {"friendly_name": NAME, "key": "p256", "subject": {"common_name": "u.example"}}
        request = ok(api.post("/requests", json=body), 201)["request"]
    session = primary.login()
    with primary.pages(session) as pages:
        exported = pages.post(
            f"/security/certificates/{certificate['id']}/export",
            data={"csrf_token": session.principal.csrf_token, "include_certificate": "1"},
        )
        assert exported.status_code == 200, exported.text
        disposition = exported.headers["content-disposition"]
        assert _typed_name(disposition) == NAME + ".cer"
        assert _ascii_name(disposition).isascii() and _ascii_name(disposition).endswith(".cer")
        csr = pages.get(f"/security/requests/{request['id']}/csr")
        assert csr.status_code == 200, csr.text
        assert _typed_name(csr.headers["content-disposition"]) == NAME + ".csr"
        assert csr.text.startswith("-----BEGIN CERTIFICATE REQUEST-----")


LONE = "\\ud800" * 12  # JSON's escape for a lone UTF-16 surrogate (12 characters once decoded)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/users", f'{{"username":"s1","password":"{LONE}","role":"auditor"}}', "password"),
        ("PUT", "/users/admin/password", f'{{"password":"{LONE}"}}', "password"),
        (
            "PUT",
            "/me/password",
            f'{{"current_password":"{LONE}","password":"long enough new one"}}',
            "current_password",
        ),
        ("POST", "/addresses", f'{{"address":"{LONE}"}}', "address"),
    ],
    ids=["new-user", "set-password", "own-password", "address"],
)
def test_lone_surrogates_in_json_text_are_refused_as_invalid_text(
    primary: Server, method: str, path: str, body: str, field: str
) -> None:
    with primary.client() as api:
        refused = problem(
            api.request(method, path, content=body, headers={"Content-Type": "application/json"}),
            422,
            "validation",
        )
        assert refused["field"] == field


def test_lone_surrogates_in_an_export_passphrase_are_refused(primary: Server) -> None:
    with primary.client() as api:
        certificate = self_signed(api, "surrogate export", "surrogate.example.test")
        body = f'{{"include_private_key":true,"passphrase":"{LONE}"}}'
        refused = problem(
            api.post(
                f"/certificates/{certificate['id']}/export",
                content=body,
                headers={"Content-Type": "application/json"},
            ),
            422,
            "validation",
        )
        assert refused["field"] == "passphrase"


@pytest.mark.parametrize("value", ["²", "٣", "99999999999999999999", "-1", " 1e3"])
def test_page_actions_with_ids_that_are_not_ids_change_nothing_and_say_so(
    primary: Server, value: str
) -> None:
    session = primary.login()
    csrf = str(session.principal.csrf_token)
    with primary.pages(session) as pages, primary.client() as api:
        before = len(ok(api.get("/certificates")))
        for path in ("/security/certificates/action", "/security/requests/action"):
            answer = pages.post(path, data={"csrf_token": csrf, "action": "delete", "id": value})
            assert answer.status_code == 303, answer.text
        revoked = pages.post(f"/security/tokens/{value}/revoke", data={"csrf_token": csrf})
        assert revoked.status_code in (404, 422), revoked.text
        assert "text/html" in revoked.headers["content-type"]
        listed = pages.get("/security/certificates", params={"page": value, "per": value})
        assert listed.status_code == 200
        assert len(ok(api.get("/certificates"))) == before


def test_a_kept_alive_connection_survives_refusals(primary: Server) -> None:
    """Every answer above on one connection: none of them ends it."""
    session = primary.login()
    with primary.pages(session) as pages:
        for _ in range(3):
            answer = pages.post(
                "/security/tokens/99999999999999999999/revoke",
                data={"csrf_token": session.principal.csrf_token},
            )
            assert answer.status_code in (404, 422)
        assert pages.get("/security/certificates").status_code == 200
    assert isinstance(pages, httpx.Client)


def test_a_hostile_certificate_subject_is_shown_as_text_on_every_page(primary: Server) -> None:
    """Markup in a subject is shown as text, and a bidirectional override as its escape, as
    the CLI prints it: "x\u202egnp.exe" read "xexe.png" on the Certificates list, the
    certificate's page, its issuer's, the Export page and the renewal request's form."""
    issuer_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org\u202e<b>bold</b>"),
            x509.NameAttribute(NameOID.COMMON_NAME, "<script>alert(1)</script>x\u202egnp.exe"),
        ]
    )
    issuer_key, leaf_key = new_key(), new_key()
    root = issue(issuer_name, issuer_key.public_key(), issuer_name, issuer_key, ca=True)
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf\u202e<i>x</i>")])
    leaf = issue(
        leaf_name, leaf_key.public_key(), issuer_name, issuer_key, ca=False, sans=["h.example"]
    )
    with primary.client() as api:
        import_ok(api, [("hostile.pem", pem(leaf, leaf_key, root))])
        found = {
            certificate["fingerprint_sha256"]: certificate["id"]
            for certificate in ok(api.get("/certificates", params={"limit": 1000}))["items"]
        }
    leaf_id, root_id = found[fingerprint(leaf)], found[fingerprint(root)]
    with primary.pages(primary.login()) as pages:
        for path in (
            "/security/certificates",
            f"/security/certificates/{leaf_id}",
            f"/security/certificates/{root_id}",
            f"/security/certificates/{leaf_id}/export",
            f"/security/certificates/{leaf_id}/renewal-request",
        ):
            page = pages.get(path)
            assert page.status_code == 200, path
            assert "\u202e" not in page.text and "\\u202e" in page.text, path
            for markup in ("<script>", "<b>", "<i>"):
                assert markup not in page.text, (path, markup)


@pytest.mark.parametrize("name", ["a\r\nb", "nul\x00", "esc\x1b[2J", "bidi\u202eevil"])
def test_the_edit_and_token_pages_refuse_control_characters_in_names_as_the_api_does(
    primary: Server, name: str
) -> None:
    with primary.client() as api:
        certificate = self_signed(api, "plain name", "names-rule.example.test")
        refused = problem(
            api.patch(f"/certificates/{certificate['id']}", json={"friendly_name": name}),
            422,
            "validation",
        )
        assert refused["field"] == "friendly_name"
    session = primary.login()
    csrf = str(session.principal.csrf_token)
    with primary.pages(session) as pages, primary.client() as api:
        edit = pages.post(
            f"/security/certificates/{certificate['id']}",
            data={"csrf_token": csrf, "friendly_name": name, "chain_mode": "automatic"},
        )
        assert edit.status_code == 422 and "control character" in edit.text
        assert ok(api.get(f"/certificates/{certificate['id']}"))["friendly_name"] == "plain name"
        token = pages.post(
            "/security/tokens", data={"csrf_token": csrf, "name": name, "role": "admin"}
        )
        assert token.status_code == 422 and "control character" in token.text
        # The form shows what was typed (its control character as its escape), role too.
        typed = re.search(r'<input id="token-name"[^>]*>', token.text)
        shown = html.escape(visible(name, keep="\t\n\r"))
        assert typed and f'value="{shown}"' in typed.group(0), token.text
        assert '<option value="admin" selected>' in token.text


@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        ("*.192.0.2.10", "is a wildcard"),
        ("192.0.2.*", "a wildcard is only allowed as the whole leftmost label"),
        ("192.0.2", "neither a DNS name (its last label is a number) nor an IP address"),
        ("2001:db8::1/64", "is not a valid DNS name"),
        ("shop_example.test", "is not a valid DNS name"),
    ],
)
def test_an_acme_identifier_neither_a_dns_name_nor_an_address_is_refused(
    primary: Server, identifier: str, reason: str
) -> None:
    """Refused before anything is asked (no account is needed to be told), naming the
    field: the API's ``domains[1]``, the CLI's Domains; no order is placed."""
    order = {"friendly_name": "bad", "domains": ["ok.example.test", identifier]}
    with primary.client() as api:
        placed = ok(api.get("/acme/orders"))
        refused = problem(api.post("/acme/orders", json=order), 422, "validation")
        assert refused["field"] == "domains[1]" and reason in refused["detail"], refused
        said = run_cli(
            primary.running.data_dir,
            *("acme", "order", "--name", "bad", "--domain", "ok.example.test"),
            *("--domain", identifier),
            check=False,
        )
        assert said.returncode == 1
        assert said.stderr.startswith(f"error: Domains: '{identifier}'") and reason in said.stderr
        assert ok(api.get("/acme/orders")) == placed
