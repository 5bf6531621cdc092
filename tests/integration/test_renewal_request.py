"""Issue 10, point 3: ``request create --from-cert``: a renewal request signed with the key of
a certificate (one that arrived as PKCS#12, with no request stored), checked by the openssl
CLI; the certificate the CA signs from it finds the key on import; deleting the request
keeps the key the certificate still uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.conftest import Certgate
from tests.support.openssl import OpensslCA, openssl, pkcs12, request_sans
from tests.support.pki import TestCA, baseline_leaf, pem

PASSWORD = "Corr3ct horse!"


def import_pkcs12(certgate: Certgate, openssl_ca: OpensslCA, tmp_path: Path) -> dict[str, Any]:
    """A certificate and key made outside certgate (moved from another server) as PKCS#12."""
    leaf, key = openssl_ca.issue("portal.example.test", ["portal.example.test"], tmp_path / "p")
    bundle = pkcs12(
        tmp_path / "portal.p12", leaf, key, [openssl_ca.intermediate], password=PASSWORD
    )
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n")
    entries = certgate.json("cert", "import", bundle, "--password-file", secret)["entries"]
    (entry,) = [e for e in entries if e["kind"] == "certificate" and "portal" in e["message"]]
    assert certgate.json("request", "list") == []  # no request was ever stored for it
    return certgate.show(entry["id"])


def public_key(*args: str | Path) -> str:
    return openssl(*args, "-noout", "-pubkey")


def test_renewal_request_has_the_certificates_key_and_its_names(
    certgate: Certgate, openssl_ca: OpensslCA, tmp_path: Path
) -> None:
    certificate = import_pkcs12(certgate, openssl_ca, tmp_path)
    created = certgate.json("request", "create", "--from-cert", str(certificate["id"]))
    request = created["request"]
    assert request["friendly_name"] == certificate["friendly_name"] + " (renewal)"
    assert request["subject"] == certificate["subject"] == "CN=portal.example.test"
    assert request["sans"] == certificate["sans"]
    assert request["has_private_key"] and request["renews"] == [certificate["id"]]
    assert request["certificate_ids"] == []  # none issued for it yet
    csr = tmp_path / "renewal.csr"
    csr.write_text(request["pem"])
    leaf = tmp_path / "p.pem"
    assert public_key("req", "-in", csr) == public_key("x509", "-in", leaf)
    assert "verify OK" in openssl("req", "-in", csr, "-noout", "-verify", stderr=True)
    assert request_sans(csr) == ["DNS:portal.example.test"]

    # The CA renews: the certificate it returns finds the key on import.
    renewed = openssl_ca.sign(csr, tmp_path / "renewed.pem", days=400)
    (entry,) = certgate.json("cert", "import", renewed)["entries"]
    assert (entry["kind"], entry["status"]) == ("certificate", "linked")
    new = certgate.show(entry["id"])
    assert new["has_private_key"] and new["not_after"] > certificate["not_after"]
    assert public_key("x509", "-in", renewed) == public_key("x509", "-in", leaf)
    shown = certgate.json("request", "show", str(request["id"]))
    assert (shown["renews"], shown["certificate_ids"]) == ([certificate["id"]], [new["id"]])


def test_fields_given_change_the_prefilled_ones(
    certgate: Certgate, openssl_ca: OpensslCA, tmp_path: Path
) -> None:
    certificate = certgate.json(
        "cert", "create", "--name", "shop", "--cn", "shop.example.test", "--org", "Business",
        "--ou", "Support", "--country", "US", "--san", "www.example.test",
    )["certificate"]  # fmt: skip
    request = certgate.json(
        "request", "create", "--from-cert", certificate["fingerprint_sha256"], "--name",
        "shop 2027", "--ou", "", "--city", "Ridgeland", "--san", "shop.example.test",
        "--san", "api.example.test",
    )["request"]  # fmt: skip
    assert request["friendly_name"] == "shop 2027"
    assert request["subject"] == "CN=shop.example.test, O=Business, L=Ridgeland, C=US"
    assert request["sans"] == ["dNSName - shop.example.test", "dNSName - api.example.test"]
    csr = tmp_path / "shop.csr"
    csr.write_text(request["pem"])
    shown = tmp_path / "shop.pem"
    certgate("cert", "export", str(certificate["id"]), "-o", shown, "--pem")
    assert public_key("req", "-in", csr) == public_key("x509", "-in", shown)


def test_the_same_request_twice_is_the_one_stored(certgate: Certgate) -> None:
    """RSA signatures are deterministic: the same fields make the same request."""
    certificate = certgate.json(
        "cert", "create", "--name", "rsa", "--cn", "rsa.example.test", "--key", "rsa2048"
    )["certificate"]
    first = certgate.json("request", "create", "--from-cert", str(certificate["id"]))
    again = certgate.json("request", "create", "--from-cert", str(certificate["id"]))
    assert again["request"]["id"] == first["request"]["id"]
    assert any("already stored" in notice for notice in again["notices"])
    assert len(certgate.json("request", "list")) == 1


def test_deleting_the_renewal_request_keeps_the_certificates_key(
    certgate: Certgate, openssl_ca: OpensslCA, tmp_path: Path
) -> None:
    certificate = import_pkcs12(certgate, openssl_ca, tmp_path)
    request = certgate.json("request", "create", "--from-cert", str(certificate["id"]))["request"]
    deleted = certgate.json("request", "delete", str(request["id"]))
    assert deleted == {"id": request["id"], "private_key_deleted": False}
    assert certgate.show(certificate["id"])["has_private_key"]
    out = tmp_path / "still.p12"
    secret = tmp_path / "passphrase.txt"
    secret.write_text(PASSWORD + "\n")
    certgate(
        "cert", "export", str(certificate["id"]), "--key", "-o", out, "--passphrase-file", secret
    )  # the key is still there, whole
    assert "BEGIN PRIVATE KEY" in openssl(
        "pkcs12", "-in", out, "-nocerts", "-nodes", "-passin", f"pass:{PASSWORD}"
    )


def test_refused_without_a_key_or_with_a_key_choice(
    certgate: Certgate, openssl_ca: OpensslCA
) -> None:
    (root,) = certgate.json("cert", "import", openssl_ca.root)["entries"]
    refused = certgate("request", "create", "--from-cert", str(root["id"]), expect=1)
    assert refused.error_lines == [
        "error: certificate 'Interop Root CA' cannot be renewed with its own key: its Private "
        "Key is not Available. Import the private key (or the PKCS#12 file that holds it), "
        "or create a request with a new key"
    ]
    factory = next(c for c in certgate.certificates() if c["is_factory"])
    wrong = certgate(
        "request", "create", "--from-cert", str(factory["id"]), "--key", "p256", expect=2
    )
    assert "--key cannot be used with --from-cert" in wrong.stderr
    assert certgate.json("request", "list") == []


def test_a_certificate_without_a_subject_renews_under_its_first_name(
    certgate: Certgate, tmp_path: Path
) -> None:
    """Public CAs now issue leaves with an empty subject: the first DNS name stands in as the
    Common Name the form requires (and is the first SAN, as before)."""
    key, leaf = baseline_leaf(TestCA.make(), "bare.example.test")
    bundle = tmp_path / "bare.pem"
    bundle.write_bytes(pem(leaf, key))
    entries = certgate.json("cert", "import", bundle)["entries"]
    (entry,) = [e for e in entries if e["kind"] == "certificate"]
    request = certgate.json("request", "create", "--from-cert", str(entry["id"]))["request"]
    assert request["subject"] == "CN=bare.example.test"
    assert request["sans"] == ["dNSName - bare.example.test"]
