"""pkilint's CA/Browser Forum findings with a certificate's warnings (issue 15, point 11):
what a public CA would refuse to issue is said on the certificate's own document, page and
`cert show`; a certificate shaped as the Baseline Requirements want has none."""

from __future__ import annotations

from pathlib import Path

from tests.api.client import Server, ok
from tests.api.workflows import ca_signed, import_ok, self_signed
from tests.support.openssl import OpensslCA
from tests.support.pki import TestCA, baseline_leaf, pem
from tests.support.server import run_cli

RULES = "CA/Browser Forum Baseline Requirements (pkilint)"
NO_POLICIES = "cabf.serverauth.subscriber.certificate_policies_extension_absent"
NO_AIA = "cabf.serverauth.subscriber.authority_info_access_extension_absent"


def test_an_openssl_signed_server_certificate_shows_what_a_public_ca_would_refuse(
    primary: Server, ca: OpensslCA, tmp_path: Path
) -> None:
    with primary.client() as api:
        leaf, _ = ca_signed(api, ca, "lint.example.com", tmp_path)
        findings = {finding["code"]: finding for finding in leaf["lint"]}
        assert findings[NO_POLICIES]["severity"] == "error"
        assert findings[NO_POLICIES]["message"] == "Certificate policies extension absent"
        assert findings[NO_AIA]["where"] == "certificate.tbsCertificate.extensions"
        severities = [finding["severity"] for finding in leaf["lint"]]
        assert severities == sorted(severities)  # errors first
        # Lists leave it out (linting every certificate of a large store takes minutes).
        listed = ok(api.get("/certificates", params={"q": "lint.example.com"}))["items"]
        assert [item["lint"] for item in listed] == [None]

    shown = run_cli(primary.running.data_dir, "cert", "show", str(leaf["id"])).stdout
    assert RULES in shown
    assert f"error: Certificate policies extension absent [{NO_POLICIES}]" in shown


def test_a_certificate_shaped_as_the_baseline_requirements_want_has_no_finding(
    primary: Server,
) -> None:
    ca = TestCA.make(key_usage=True)
    key, leaf = baseline_leaf(ca, "www.example.com")
    with primary.client() as api:
        entries = import_ok(api, [("leaf.pem", pem(leaf, key))])
        [entry] = [entry for entry in entries if entry["kind"] == "certificate"]
        shown = ok(api.get(f"/certificates/{entry['id']}"))
        assert shown["role"] == "server" and shown["lint"] == []
    text = run_cli(primary.running.data_dir, "cert", "show", str(entry["id"])).stdout
    assert f"{RULES}" in text and "No error or warning" in text


def test_self_signed_certificates_are_outside_the_baseline_requirements(
    primary: Server,
) -> None:
    with primary.client() as api:
        created = self_signed(api, "lint self-signed", "self.lint.example.com")
        assert ok(api.get(f"/certificates/{created['id']}"))["lint"] is None
    assert RULES not in run_cli(primary.running.data_dir, "cert", "show", str(created["id"])).stdout
