"""GET /api/v1/support-package and the Status page's form: the zip of the guide's "Update the
Appliance" for administrators and auditors, with every certificate and no secret."""

from __future__ import annotations

import io
import zipfile

import httpx
from cryptography import x509

from tests.api.client import Server, mint_token, ok, problem
from tests.api.workflows import import_ok
from tests.support.pki import fingerprint, make_chain, pem


def _check_package(response: httpx.Response, server: Server, secrets: list[str]) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["cache-control"] == "no-store"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="certgate-support-')
    assert disposition.endswith('.zip"')
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with server.client() as api:
        listed = ok(api.get("/certificates", params={"limit": 1000}))
    certificates = listed["items"] if isinstance(listed, dict) else listed
    packaged = [
        fingerprint(certificate)
        for name, data in members.items()
        if name.startswith("certificates/")
        for certificate in x509.load_pem_x509_certificates(data)
    ]
    assert sorted(packaged) == sorted(c["fingerprint_sha256"] for c in certificates)
    assert {"status.json", "status.txt", "settings.json", "addresses.json"} <= set(members)
    for name, data in members.items():
        assert b"PRIVATE KEY" not in data, name
        for secret in secrets:
            assert secret.encode() not in data, name


def test_admin_and_auditor_download_the_support_package(primary: Server) -> None:
    chain = make_chain("support-package.example.test")
    with primary.client() as api:
        import_ok(api, [("chain.pem", pem(chain.leaf, chain.leaf_key, *chain.chain))])
    auditor = mint_token(primary.running.data_dir, "support-auditor", "auditor")
    secrets = [primary.admin_token, auditor, primary.running.admin_password]

    with primary.client(auditor) as api:
        _check_package(api.get("/support-package"), primary, secrets)
    with primary.client() as api:
        _check_package(api.get("/support-package"), primary, secrets)
        events = ok(api.get("/audit", params={"action": "appliance.support-package"}))["events"]
    assert {event["actor"] for event in events} >= {"token:support-auditor", "token:tests"}
    with primary.client("") as anonymous:
        problem(anonymous.get("/support-package"), 401, "unauthenticated")


def test_the_status_page_form_downloads_it_with_its_csrf_token(primary: Server) -> None:
    session = primary.login()
    secrets = [primary.admin_token, primary.running.admin_password, session.cookie_value]
    with primary.pages(session) as pages:
        status = pages.get("/status")
        assert "Download Support Package" in status.text
        forged = pages.post("/status/support-package", data={})
        assert forged.status_code == 403
        response = pages.post(
            "/status/support-package", data={"csrf_token": str(session.principal.csrf_token)}
        )
    _check_package(response, primary, secrets)
