"""The guide's fingerprints and the factory certificate's note: SHA-1 beside SHA-256 where a CA
portal shows SHA-1 (the Certificate Requests table's "Fingerprint"), checked against openssl."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.conftest import Certgate
from tests.support.openssl import openssl


def openssl_sha1(path: Path, kind: str) -> str:
    out = openssl(kind, "-in", path, "-outform", "DER", "-out", path.with_suffix(".der"))
    assert out == ""
    digest = openssl("dgst", "-sha1", "-r", path.with_suffix(".der"))
    return digest.split()[0]


def test_certificates_and_requests_show_the_sha1_fingerprint_a_ca_portal_shows(
    tmp_path: Path,
) -> None:
    certgate = Certgate(tmp_path / "data", subprocess=False)
    certgate("init")
    certgate("cert", "create", "--name", "Portal", "--cn", "portal.example.com")
    certgate(
        "cert", "create", "--request", "--name", "For the CA", "--cn", "ca.example.com"
    )  # fmt: skip
    portal = next(c for c in certgate.certificates() if c["friendly_name"] == "Portal")
    pem = tmp_path / "portal.pem"
    certgate("cert", "export", str(portal["id"]), "--pem", "-o", pem)

    shown = certgate.show(portal["id"])
    assert shown["fingerprint_sha1"] == openssl_sha1(pem, "x509")
    text = certgate("cert", "show", str(portal["id"])).stdout
    assert re.search(rf"^SHA-1 Fingerprint\s+{shown['fingerprint_sha1']}$", text, re.M), text

    request = certgate.json("request", "list")[0]
    csr = tmp_path / "request.csr"
    csr.write_text(certgate.json("request", "show", str(request["id"]))["pem"])
    assert request["fingerprint_sha1"] == openssl_sha1(csr, "req")
    text = certgate("request", "show", str(request["id"])).stdout
    assert re.search(rf"^SHA-1 Fingerprint\s+{request['fingerprint_sha1']}$", text, re.M), text


def test_the_factory_certificates_warning_says_it_may_be_ignored(tmp_path: Path) -> None:
    certgate = Certgate(tmp_path / "data", subprocess=False)
    certgate("init")
    certgate("cert", "create", "--name", "Mine", "--cn", "mine.example.com")
    by_name = {c["friendly_name"]: c for c in certgate.certificates()}
    factory = next(c for c in by_name.values() if c["is_factory"])

    assert factory["warnings"], "the factory certificate is self-signed: it has a warning"
    for warning in factory["warnings"]:
        assert "may be ignored" in warning["message"]
    assert by_name["Mine"]["warnings"]
    for warning in by_name["Mine"]["warnings"]:
        assert "may be ignored" not in warning["message"]
