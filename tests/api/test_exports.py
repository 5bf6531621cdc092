"""Export as a download in each of the guide's formats: media type, file name, and a file the
openssl CLI reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.client import Server, ok, problem
from tests.api.workflows import ca_signed
from tests.support.openssl import OpensslCA, openssl, subjects
from tests.support.pki import fingerprint

PASSPHRASE = "export passphrase 1"
HOST = "export.example.test"


@pytest.fixture(scope="module")
def leaf(primary: Server, ca: OpensslCA, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with primary.client() as api:
        certificate, _ = ca_signed(api, ca, HOST, tmp_path_factory.mktemp("export"))
    return certificate


# options -> (media type, extension, format, openssl command that must read the file)
CASES: list[tuple[dict[str, Any], str, str, str, list[str]]] = [
    ({}, "application/pkix-cert", ".cer", "der", ["x509", "-inform", "DER"]),
    ({"pem": True}, "application/x-pem-file", ".pem", "pem", ["x509"]),
    (
        {"include_chain": True},
        "application/x-pkcs7-certificates",
        ".p7b",
        "pkcs7",
        ["pkcs7", "-inform", "DER", "-print_certs"],
    ),
    (
        {"include_chain": True, "pem": True},
        "application/x-pem-file",
        ".p7b",
        "pkcs7-pem",
        ["pkcs7", "-print_certs"],
    ),
    (
        {"include_certificate": False, "include_private_key": True, "passphrase": PASSPHRASE},
        "application/pkcs8",
        ".p8",
        "pkcs8",
        ["pkcs8", "-inform", "DER", "-passin", f"pass:{PASSPHRASE}"],
    ),
    (
        {
            "include_certificate": False,
            "include_private_key": True,
            "passphrase": PASSPHRASE,
            "pem": True,
        },
        "application/x-pem-file",
        ".key",
        "pkcs8-pem",
        ["pkcs8", "-passin", f"pass:{PASSPHRASE}"],
    ),
    (
        {"include_private_key": True, "include_chain": True, "passphrase": PASSPHRASE},
        "application/x-pkcs12",
        ".p12",
        "pkcs12",
        ["pkcs12", "-passin", f"pass:{PASSPHRASE}", "-nokeys"],
    ),
    (
        {
            "include_private_key": True,
            "include_chain": True,
            "passphrase": PASSPHRASE,
            "legacy_pkcs12": True,
        },
        "application/x-pkcs12",
        ".p12",
        "pkcs12",
        ["pkcs12", "-passin", f"pass:{PASSPHRASE}", "-nokeys"],
    ),
    (
        {"include_private_key": True, "passphrase": PASSPHRASE, "pem": True},
        "application/x-pem-file",
        ".pem",
        "pem-bundle",
        ["x509"],
    ),
]


@pytest.mark.parametrize(
    ("options", "media_type", "extension", "export_format", "reader"),
    CASES,
    ids=[f"{case[3]}{'-legacy' if case[0].get('legacy_pkcs12') else ''}" for case in CASES],
)
def test_export_format(
    primary: Server,
    leaf: dict[str, Any],
    tmp_path: Path,
    options: dict[str, Any],
    media_type: str,
    extension: str,
    export_format: str,
    reader: list[str],
) -> None:
    with primary.client() as api:
        response = api.post(f"/certificates/{leaf['id']}/export", json=options)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"] == f'attachment; filename="{HOST}{extension}"'
    assert response.headers["x-certgate-export-format"] == export_format
    assert response.headers["cache-control"] == "no-store"
    path = tmp_path / f"export{extension}"
    path.write_bytes(response.content)
    output = openssl(*reader, "-in", path)
    if export_format in ("pkcs7", "pkcs7-pem", "pkcs12"):  # leaf, intermediate, root
        found = subjects(output)
        assert len(found) == 3 and any(HOST in subject for subject in found), output


def test_get_export_needs_no_secret(primary: Server, leaf: dict[str, Any]) -> None:
    with primary.client() as api:
        der = api.get(f"/certificates/{leaf['fingerprint_sha256']}/export")
        chain = api.get(f"/certificates/{leaf['id']}/export", params={"include_chain": "true"})
        nothing = api.get(
            f"/certificates/{leaf['id']}/export", params={"include_certificate": "false"}
        )
    assert der.headers["content-type"] == "application/pkix-cert"
    assert fingerprint(der.content) == leaf["fingerprint_sha256"]
    assert chain.headers["content-type"] == "application/x-pkcs7-certificates"
    problem(nothing, 400, "export")


def test_private_key_never_leaves_unencrypted_by_default(
    primary: Server, leaf: dict[str, Any]
) -> None:
    with primary.client() as api:
        refused = api.post(f"/certificates/{leaf['id']}/export", json={"include_private_key": True})
        plain = api.post(
            f"/certificates/{leaf['id']}/export",
            json={"include_private_key": True, "unencrypted_private_key": True, "pem": True},
        )
        root = ok(api.get("/certificates", params={"role": "root", "q": "API Root CA"}))
        keyless = api.post(
            f"/certificates/{root['items'][0]['id']}/export",
            json={"include_private_key": True, "passphrase": PASSPHRASE},
        )
    problem(refused, 400, "export")
    assert plain.status_code == 200 and b"-----BEGIN PRIVATE KEY-----" in plain.content
    problem(keyless, 422, "key-missing")


def test_a_short_passphrase_is_refused_on_the_api_and_the_page(
    primary: Server, leaf: dict[str, Any]
) -> None:
    with primary.client() as api:
        short = api.post(
            f"/certificates/{leaf['id']}/export",
            json={"include_private_key": True, "passphrase": "1234567"},
        )
    found = problem(short, 422, "validation")
    assert found["field"] == "passphrase" and "at least 8 characters" in found["detail"]
    session = primary.login()
    with primary.pages(session) as pages:
        page = pages.post(
            f"/security/certificates/{leaf['id']}/export",
            data={
                "csrf_token": session.principal.csrf_token,
                "include_certificate": "on",
                "include_private_key": "on",
                "passphrase": "1234567",
            },
        )
    assert page.status_code == 422
    assert "a passphrase needs at least 8 characters" in page.text
    assert "The passphrase has at least 8 characters." in page.text  # said before, too
