"""``certgate support-package``: the zip of the guide's "Update the Appliance" holds every
certificate (found by fingerprint) and its chain, the status, settings, warnings and address
assignments, and never a private key, a password, a passphrase or a token value."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import zipfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import NameOID

from tests.integration.conftest import Certgate
from tests.support.openssl import OpensslCA
from tests.support.pki import issue, new_key, pem

ADMIN_PASSWORD = "Adm1n password for the support test"
AUDITOR_PASSWORD = "Aud1tor password for the support test"
EXPORT_PASSPHRASE = "Exp0rt passphrase for the support test"


def _secret(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    return path


def _fingerprints(pem: bytes) -> list[str]:
    return [
        hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()
        for certificate in x509.load_pem_x509_certificates(pem)
    ]


def _members(package: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(package) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_support_package_holds_every_certificate_and_no_secret(
    certgate: Certgate, openssl_ca: OpensslCA, tmp_path: Path
) -> None:
    certgate("user", "password", "admin", "--password-file",
             _secret(tmp_path, "admin", ADMIN_PASSWORD))  # fmt: skip
    certgate("user", "add", "watcher", "--role", "auditor", "--password-file",
             _secret(tmp_path, "auditor", AUDITOR_PASSWORD))  # fmt: skip
    token = certgate.json("token", "create", "--name", "support")["token"]
    leaf, key = openssl_ca.issue("support.example.test", ["support.example.test"], tmp_path / "l")
    certgate("cert", "import", leaf, key, openssl_ca.intermediate, openssl_ca.root)
    site = next(c for c in certgate.certificates() if c["has_private_key"] and not c["is_factory"])
    certgate("cert", "export", str(site["id"]), "-o", tmp_path / "site.p12", "--key", "--chain",
             "--passphrase-file", _secret(tmp_path, "export", EXPORT_PASSPHRASE))  # fmt: skip
    certgate("ip", "add", "127.0.0.5")
    certgate("ip", "assign", "127.0.0.5", "--cert", str(site["id"]))
    certificates = certgate.certificates()
    package = tmp_path / "support.zip"

    made = certgate.json("support-package", "-o", package)

    members = _members(package)
    assert made["certificates"] == len(certificates) == 4
    assert sorted(made["members"]) == sorted(members)
    # Every certificate, one file each, found by its fingerprint; its chain beside it.
    singles = {
        name: _fingerprints(data)
        for name, data in members.items()
        if name.startswith("certificates/")
    }
    assert sorted(f for found in singles.values() for f in found) == sorted(
        c["fingerprint_sha256"] for c in certificates
    )
    [site_file] = [name for name, found in singles.items() if found == [site["fingerprint_sha256"]]]
    assert site_file.startswith(f"certificates/{site['id']}-")
    chain_file = site_file.replace("certificates/", "chains/", 1)
    assert _fingerprints(members[chain_file]) == certgate.show(site["id"])["chain"]
    assert len(_fingerprints(members[chain_file])) == 3
    # Status > Basics, settings, addresses, warnings.
    status = json.loads(members["status.json"])
    assert status["guid"] and status["serial_number"] in members["status.txt"].decode()
    assert json.loads(members["settings.json"])["tls"]["minimum_version"]
    addresses = json.loads(members["addresses.json"])
    assert {"address": "127.0.0.5", "certificate_id": site["id"], "node": None}.items() <= next(
        a for a in addresses if a["address"] == "127.0.0.5"
    ).items()
    factory = next(c for c in certificates if c["is_factory"])
    assert "self-signed" in members["warnings.txt"].decode()
    listed = {c["fingerprint_sha256"]: c for c in json.loads(members["certificates.json"])}
    assert [w["code"] for w in listed[factory["fingerprint_sha256"]]["warnings"]] == [
        w["code"] for w in factory["warnings"]
    ]
    # Never a key, a password, a passphrase or a token value, in any member.
    key_der = load_pem_private_key(key.read_bytes(), None).private_bytes(
        Encoding.DER, PrivateFormat.PKCS8, NoEncryption()
    )
    secrets = [ADMIN_PASSWORD, AUDITOR_PASSWORD, EXPORT_PASSPHRASE, token]
    for name, data in members.items():
        assert b"PRIVATE KEY" not in data, name
        assert key_der[-64:] not in data, name
        for secret in secrets:
            assert secret.encode() not in data, (name, secret)
    assert b"PRIVATE KEY" not in package.read_bytes()
    # The download is in the audit trail.
    events = certgate.json("audit", "list", "--action", "appliance.support-package")["events"]
    assert len(events) == 1 and "4 certificate(s)" in events[0]["detail"]


def test_an_unwritable_output_is_one_clear_error(certgate: Certgate, tmp_path: Path) -> None:
    run = certgate("support-package", "-o", tmp_path / "missing" / "support.zip", expect=1)

    assert run.error_lines == [f"error: cannot write {tmp_path / 'missing' / 'support.zip'}: "
                               "No such file or directory"]  # fmt: skip
    # Nothing left the appliance: the audit trail does not say a package was taken.
    events = certgate.json("audit", "list", "--action", "appliance.support-package")["events"]
    assert events == []


def test_member_names_stay_inside_the_zip_whatever_the_friendly_name(
    certgate: Certgate, tmp_path: Path
) -> None:
    factory = certgate.certificates()[0]
    certgate("cert", "rename", str(factory["id"]), '../../etc/passwd "Zürich" \\ C:')
    package = tmp_path / "support.zip"

    certgate("support-package", "-o", package)

    names = sorted(_members(package))
    stem = f"{factory['id']}-etc-passwd-Z-rich-C"
    assert f"certificates/{stem}.pem" in names
    assert f"chains/{stem}.pem" in names
    for name in names:
        assert ".." not in name and "\\" not in name and not name.startswith("/"), name
    assert '../../etc/passwd \\"Zürich\\"' in _members(package)["certificates.json"].decode()


def _refuse(relay: socket.socket) -> None:
    connection, _ = relay.accept()
    with connection:
        connection.sendall(b"554 \x1b]0;PWNED\x07\x1b[2J go away\r\n")
        connection.recv(1024)


def test_no_member_holds_a_control_character_raw(certgate: Certgate, tmp_path: Path) -> None:
    """A certificate's subject and issuer are the CA's text: in a support package read with
    ``cat`` or ``less`` a C1 CSI or a right-to-left override must be shown as its escape, as
    the CLI's --json does, and the JSON still reads back as the certificate says."""
    key = new_key()
    hostile = "esc\x1b]0;PWNED\x07\x1b[2J"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostile)])
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "right\u202eleft\x9b")])
    path = tmp_path / "hostile.pem"
    path.write_bytes(pem(issue(subject, key.public_key(), issuer, key, ca=False, days=6)))
    certgate("cert", "import", path)
    with socket.socket() as relay:  # a relay whose refusal holds escape sequences
        relay.bind(("127.0.0.1", 0))
        relay.listen()
        answer = threading.Thread(target=_refuse, args=(relay,), daemon=True)
        answer.start()
        port = str(relay.getsockname()[1])
        certgate("email", "set", "--host", "127.0.0.1", "--port", port, "--security", "none",
                 "--from", "c@example.com", "--to", "ops@example.com")  # fmt: skip
        assert "PWNED" in certgate("notify", expect=1).stderr  # Diagnostic Status quotes it
        answer.join()
    package = tmp_path / "support.zip"

    certgate("support-package", "-o", package)
    assert "go away" in _members(package)["status.txt"].decode()

    for name, data in _members(package).items():
        text = data.decode()
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in text, (name, raw)
    listed = json.loads(_members(package)["certificates.json"])
    assert "O=right\u202eleft\x9b" in [c["issuer"] for c in listed]
