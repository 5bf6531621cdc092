"""Steps of the guide's workflows through the API, shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.api.client import ok
from tests.support.openssl import OpensslCA, to_der


def codes(certificate: dict[str, Any]) -> set[str]:
    return {warning["code"] for warning in certificate["warnings"]}


def upload(
    api: httpx.Client, files: list[tuple[str, bytes]], password: str | None = None
) -> httpx.Response:
    """POST /imports: several files in one multipart request, the optional password."""
    return api.post(
        "/imports",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        data={"password": password} if password is not None else {},
    )


def import_ok(
    api: httpx.Client, files: list[tuple[str, bytes]], password: str | None = None
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = ok(upload(api, files, password))["entries"]
    assert all(entry["status"] != "error" for entry in entries), entries
    return entries


def self_signed(api: httpx.Client, name: str, host: str) -> dict[str, Any]:
    """The Create page's "Create Self-Signed Certificate"."""
    body = {
        "friendly_name": name,
        "key": "p256",
        "subject": {"common_name": host, "country": "US", "organization": "Business Company"},
        "subject_alternative_names": [host],
    }
    created = ok(api.post("/certificates", json=body), 201)
    certificate: dict[str, Any] = created["certificate"]
    return certificate


def request_csr(api: httpx.Client, host: str, directory: Path) -> tuple[dict[str, Any], Path]:
    """Create Certificate Request, then download its Request Data as a .csr file."""
    body = {
        "friendly_name": host,
        "key": "rsa2048",
        "subject": {
            "common_name": host,
            "country": "US",
            "state": "Mississippi",
            "city": "Ridgeland",
            "organization": "Business Company",
            "organizational_unit": "Support",
        },
        "subject_alternative_names": [host],
    }
    created = ok(api.post("/requests", json=body), 201)
    request: dict[str, Any] = created["request"]
    download = api.get(f"/requests/{request['id']}/csr")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/x-pem-file"
    assert download.headers["content-disposition"] == f'attachment; filename="{host}.csr"'
    assert download.text == request["pem"]
    path = directory / f"{host}.csr"
    path.write_bytes(download.content)
    return request, path


def ca_signed(
    api: httpx.Client, ca: OpensslCA, host: str, directory: Path
) -> tuple[dict[str, Any], Path]:
    """CSR -> signed by the openssl CA -> import leaf, intermediate (DER), root (PEM).
    Returns the leaf as the API shows it and the CSR (for a renewal)."""
    directory.mkdir(parents=True, exist_ok=True)
    request, csr = request_csr(api, host, directory)
    signed = ca.sign(csr, directory / f"{host}.pem")
    (entry,) = import_ok(api, [(signed.name, signed.read_bytes())])
    assert (entry["kind"], entry["status"]) == ("certificate", "linked"), entry
    intermediate = to_der(ca.intermediate, directory / "intermediate.cer")
    import_ok(api, [("intermediate.cer", intermediate.read_bytes())])
    import_ok(api, [("root.pem", ca.root.read_bytes())])
    leaf: dict[str, Any] = ok(api.get(f"/certificates/{entry['id']}"))
    assert leaf["friendly_name"] == request["friendly_name"]
    return leaf, csr
