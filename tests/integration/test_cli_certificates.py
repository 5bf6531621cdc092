"""``certgate init``, ``cert create/show/list/delete`` and ``request``: the guide's "Create the
Certificate" and "Create the Certificate Signing Request", as an administrator types them.

The fields are the guide's: Certificate Friendly Name, Key, Country, State/Province, City
(Locality), Organization, Organizational Unit, Name (Common Name), Subject Alternative Names.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Certgate
from tests.support.openssl import fingerprint, openssl

GUIDE_SUBJECT = [
    "--country", "US", "--state", "Tennessee", "--city", "Severville",
    "--org", "Bomgar", "--ou", "TechCom",
]  # fmt: skip
GUIDE_SUBJECT_TEXT = "OU=TechCom, O=Bomgar, L=Severville, ST=Tennessee, C=US"
SHOW_FIELDS = {
    "id", "fingerprint_sha256", "friendly_name", "subject", "issuer", "serial", "not_before",
    "not_after", "sans", "role", "has_private_key", "chain", "warnings",
}  # fmt: skip


def codes(view: dict[str, Any]) -> set[str]:
    return {warning["code"] for warning in view["warnings"]}


def export_der(certgate: Certgate, certificate_id: int, out: Path) -> Path:
    certgate("cert", "export", str(certificate_id), "-o", out)
    return out


# --- init and the factory certificate -----------------------------------------------------------


def test_init_is_idempotent_and_the_factory_certificate_cannot_be_deleted(tmp_path: Path) -> None:
    certgate = Certgate(tmp_path / "data", subprocess=True)

    first = certgate("init", "--json").json()
    again = certgate("init", "--json").json()
    text = certgate.reader("init")

    assert first["created"] is True
    assert again["created"] is False
    for same in ("factory_certificate_id", "serial_number", "guid"):
        assert again[same] == first[same]
    assert "already initialised" in text.stdout
    assert re.fullmatch(r"CG[0-9A-F]{12}", first["serial_number"])
    listed = certgate.reader.certificates()
    assert len(listed) == 1
    factory = listed[0]
    assert factory["id"] == first["factory_certificate_id"]
    assert factory["is_factory"] and factory["has_private_key"]
    assert factory["subject"] == factory["issuer"] == "CN=certgate Appliance"
    assert codes(factory) == {"self-signed"}  # the guide: "its warning should be ignored"

    by_id, by_fingerprint = str(factory["id"]), factory["fingerprint_sha256"][:12]
    for cli, reference in ((certgate, by_id), (certgate.reader, by_fingerprint)):
        refused = cli("cert", "delete", reference, expect=1)
        assert refused.stdout == ""
        assert refused.error_lines == ["error: the factory default certificate may not be removed"]
    assert certgate.reader.certificates() == listed


def test_deleting_a_certificate_says_whether_its_private_key_went_too(certgate: Certgate) -> None:
    made = certgate.json("cert", "create", "--name", "brief", "--cn", "brief.test")["certificate"]

    said = certgate("cert", "delete", str(made["id"])).stdout

    key = "and its private key (nothing else used it)"
    assert said == f"deleted certificate {made['id']} (brief) {key}\n"


# --- creating self-signed certificates ----------------------------------------------------------


def test_a_data_directory_whose_name_is_not_utf8_is_initialised(tmp_path: Path) -> None:
    """A directory name Linux allows (a byte that is not UTF-8): ``init`` said 'internal
    error (UnicodeEncodeError)' recording where the master key was made."""
    certgate = Certgate(tmp_path / "data-\udcff", subprocess=True)

    certgate("init", "--no-address")

    assert certgate("cert", "list", "--json").json()[0]["is_factory"] is True
    assert "master key generation 2" in certgate("key", "rotate").stdout


@pytest.mark.parametrize(
    ("key", "public_key", "signature", "openssl_says"),
    [
        ("rsa2048", "RSA (2048 Bits)", "RSA-SHA256", "Public-Key: (2048 bit)"),
        ("rsa3072", "RSA (3072 Bits)", "RSA-SHA256", "Public-Key: (3072 bit)"),
        ("rsa4096", "RSA (4096 Bits)", "RSA-SHA256", "Public-Key: (4096 bit)"),
        ("p256", "ECDSA P-256 (256 Bits)", "ECDSA-SHA256", "NIST CURVE: P-256"),
        ("p384", "ECDSA P-384 (384 Bits)", "ECDSA-SHA384", "NIST CURVE: P-384"),
    ],
)
def test_create_self_signed_with_each_key_type(
    certgate: Certgate, tmp_path: Path, key: str, public_key: str, signature: str, openssl_says: str
) -> None:
    created = certgate.json(
        "cert", "create", "--name", f"Support {key}", "--key", key, "--cn", "Support Site",
        *GUIDE_SUBJECT, "--san", "support.example.com",
    )  # fmt: skip

    view = certgate.show(created["certificate"]["id"])
    assert "certificate" in created
    assert view["public_key"] == public_key
    assert view["signature_type"] == signature
    assert view["has_private_key"] is True
    assert view["subject"] == f"CN=Support Site, {GUIDE_SUBJECT_TEXT}"
    der = export_der(certgate, view["id"], tmp_path / "c.cer")
    described = openssl("x509", "-inform", "DER", "-in", der, "-noout", "-text")
    assert openssl_says in described
    assert "DNS:support.example.com" in described


def test_show_json_carries_what_scripts_need(certgate_exe: Certgate, tmp_path: Path) -> None:
    created = certgate_exe.json(
        "cert", "create", "--name", "Support Portal", "--key", "p256", "--cn", "Support Portal",
        *GUIDE_SUBJECT, "--san", "support.example.com", "--san", "remote.example.com",
        "--days", "200",
    )  # fmt: skip

    view = certgate_exe.show(created["certificate"]["id"])

    assert view.keys() >= SHOW_FIELDS
    assert view["id"] == created["certificate"]["id"]
    assert view["fingerprint_sha256"] == created["certificate"]["fingerprint_sha256"]
    der = export_der(certgate_exe.reader, view["id"], tmp_path / "portal.cer")
    assert view["fingerprint_sha256"] == fingerprint(der, der=True)
    serial_hex = openssl("x509", "-inform", "DER", "-in", der, "-noout", "-serial")
    assert int(view["serial"]) == int(serial_hex.strip().split("=")[1], 16)
    assert view["friendly_name"] == "Support Portal"
    assert view["subject"] == view["issuer"] == f"CN=Support Portal, {GUIDE_SUBJECT_TEXT}"
    validity = dt.datetime.fromisoformat(view["not_after"]) - dt.datetime.fromisoformat(
        view["not_before"]
    )
    assert validity == dt.timedelta(days=200)
    assert dt.datetime.fromisoformat(view["not_before"]) <= dt.datetime.now(dt.UTC)
    assert view["sans"] == ["dNSName - support.example.com", "dNSName - remote.example.com"]
    assert view["role"] == "server"
    assert view["has_private_key"] is True
    assert view["chain"] == [view["fingerprint_sha256"]]
    assert [set(w) for w in view["warnings"]] == [{"code", "message"}]
    assert codes(view) == {"self-signed"}
    assert view in certgate_exe.reader.certificates()

    text = certgate_exe("cert", "show", view["fingerprint_sha256"][:16]).stdout
    assert re.search(r"^Certificate Friendly Name\s+Support Portal$", text, re.M)
    assert re.search(r"^Private Key\s+Available$", text, re.M)
    assert re.search(r"^Subject Alternative Names\s+dNSName - support\.example\.com$", text, re.M)
    assert "[self-signed]" in text


# --- the form is checked before anything is made ------------------------------------------------

VALID_FORM = {
    "--name": "Valid Name",
    "--cn": "Valid Site",
    "--key": "p256",
    "--san": "valid.example.test",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"--country": "XX"}, "Country"),
        ({"--country": "USA"}, "Country"),
        ({"--san": "www.*.example.com"}, "Subject Alternative Names"),
        ({"--san": "*"}, "Subject Alternative Names"),
        ({"--san": ""}, "Subject Alternative Names"),  # a label CN and no SAN
        ({"--cn": "c" * 65}, "Name (Common Name)"),
        ({"--name": "   "}, "Certificate Friendly Name"),
        ({"--ou": "line\nbreak"}, "Organizational Unit"),
        # a name browsers read as an IPv4 address never matches a dNSName
        ({"--san": "127.1"}, "Subject Alternative Names"),
        ({"--san": "DNS:192.0.2.10"}, "Subject Alternative Names"),
        ({"--san": "IP:fe80::1%eth0"}, "Subject Alternative Names"),  # a zone is not encoded
        # the rule of every typed name: no C1 or bidirectional control either
        ({"--org": "Example\u202eoC"}, "Organization"),
        ({"--cn": "Valid\x85Site"}, "Name (Common Name)"),
    ],
)
@pytest.mark.parametrize("kind", ["--self-signed", "--request"])
def test_invalid_field_is_named_and_nothing_is_created(
    certgate: Certgate, change: dict[str, str], field: str, kind: str
) -> None:
    before = (certgate.certificates(), certgate.json("request", "list"))
    form = {**VALID_FORM, **change}

    refused = certgate("cert", "create", kind, *(x for kv in form.items() for x in kv), expect=1)

    assert refused.stdout == ""
    assert len(refused.error_lines) == 1
    assert refused.error_lines[0].startswith(f"error: {field}: ")
    assert (certgate.certificates(), certgate.json("request", "list")) == before


def test_two_letter_state_is_accepted_with_a_notice(certgate: Certgate) -> None:
    created = certgate(
        "cert", "create", "--name", "TN site", "--key", "p256", "--cn", "TN Site",
        "--country", "us", "--state", "TN", "--san", "tn.example.test",
    )  # fmt: skip

    notes = [line for line in created.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "State/Province 'TN'" in notes[0] and "full name" in notes[0]
    view = certgate.show(re.findall(r"created certificate (\d+)", created.stdout)[0])
    assert view["subject"] == "CN=TN Site, ST=TN, C=US"  # country upper-cased


def test_idna_san_is_stored_in_its_ascii_form(certgate: Certgate, tmp_path: Path) -> None:
    created = certgate.json(
        "cert", "create", "--name", "Bücher", "--key", "p256", "--cn", "Bücher Portal",
        "--san", "bücher.example", "--san", "*.Straße.example",
    )  # fmt: skip

    view = certgate.show(created["certificate"]["id"])
    assert view["sans"] == ["dNSName - xn--bcher-kva.example", "dNSName - *.xn--strae-oqa.example"]
    der = export_der(certgate, created["certificate"]["id"], tmp_path / "b.cer")
    text = openssl("x509", "-inform", "DER", "-in", der, "-noout", "-ext", "subjectAltName")
    assert "DNS:xn--bcher-kva.example, DNS:*.xn--strae-oqa.example" in text
    # a Common Name that is an IDN is added as its A-label: it is among the SANs
    idn = certgate.json("cert", "create", "--name", "IDN", "--cn", "bücher.example")
    assert any("was added as the first SAN" in notice for notice in idn["notices"])
    assert "cn-not-in-san" not in codes(certgate.show(idn["certificate"]["id"]))


@pytest.mark.parametrize(
    ("sans", "expected"),
    [
        ([], ["portal.example.com"]),
        (["b.example.com"], ["portal.example.com", "b.example.com"]),
        (["b.example.com", "PORTAL.example.com"], ["portal.example.com", "b.example.com"]),
    ],
)
def test_common_name_that_is_a_dns_name_becomes_the_first_san(
    certgate: Certgate, sans: list[str], expected: list[str]
) -> None:
    """The guide: a DNS name entered as the Common Name must be re-entered as the first SAN."""
    created = certgate.json(
        "cert", "create", "--name", "Portal", "--key", "p256", "--cn", "portal.example.com",
        *(x for san in sans for x in ("--san", san)),
    )  # fmt: skip

    view = certgate.show(created["certificate"]["id"])
    assert view["sans"] == [f"dNSName - {name}" for name in expected]
    assert "cn-not-in-san" not in codes(view)
    if "portal.example.com" not in [san.lower() for san in sans]:
        assert any("first SAN" in notice for notice in created["notices"])


@pytest.mark.parametrize("kind", ["--self-signed", "--request"])
def test_no_subject_alternative_name_is_refused_by_name(certgate: Certgate, kind: str) -> None:
    """The guide: a server certificate has "one or more subject alternative names"."""
    before = (certgate.certificates(), certgate.json("request", "list"))

    refused = certgate(
        "cert", "create", kind, "--name", "No SAN", "--key", "p256", "--cn", "Support Portal",
        expect=1,
    )  # fmt: skip

    assert refused.error_lines == [
        "error: Subject Alternative Names: enter one or more subject alternative names (or a "
        "DNS name as the Common Name, which becomes the first); browsers match only these names"
    ]
    assert (certgate.certificates(), certgate.json("request", "list")) == before


def test_cert_list_has_the_guides_alternative_names_column(certgate: Certgate) -> None:
    certgate(
        "cert", "create", "--name", "Listed", "--key", "p256", "--cn", "Support Portal",
        "--san", "support.example.com", "--san", "remote.example.com",
    )  # fmt: skip

    header, *rows = certgate("cert", "list").stdout.splitlines()

    columns = ("Expiration", "Alternative Name(s)", "IP Address(es)")  # the guide's order
    assert [header.index(column) for column in columns] == sorted(
        header.index(column) for column in columns
    )
    (listed,) = [row for row in rows if "Listed" in row]
    assert "dNSName - support.example.com, dNSName - remote.example.com" in listed


def test_a_self_signed_certificate_openssl_marks_ca_is_warned_about_once_assigned(
    certgate: Certgate, tmp_path: Path
) -> None:
    """``openssl req -x509`` without a SAN makes a CA:TRUE certificate: kept alone it may be
    a root, but one an address presents is a server certificate a browser refuses."""
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
        "cert.pem", "-subj", "/CN=portal.example.com", "-days", "90", cwd=tmp_path,
    )  # fmt: skip
    both = tmp_path / "both.pem"
    both.write_bytes((tmp_path / "cert.pem").read_bytes() + (tmp_path / "key.pem").read_bytes())
    entries = certgate.json("cert", "import", both)["entries"]
    [imported] = [entry for entry in entries if entry["kind"] == "certificate"]
    assert codes(certgate.show(imported["id"])) == set()  # a root, as far as anyone can tell
    certgate("ip", "add", "127.0.0.79")
    certgate("ip", "assign", "127.0.0.79", "--cert", str(imported["id"]), "--confirm")
    assert codes(certgate.show(imported["id"])) == {"self-signed", "no-san"}
    listed = [c for c in certgate.certificates() if c["id"] == imported["id"]]
    assert [codes(view) for view in listed] == [{"self-signed", "no-san"}]


def test_create_help_carries_the_guides_common_name_caveats(certgate: Certgate) -> None:
    shown = " ".join(certgate("cert", "create", "--help").stdout.split())
    assert "simply a human-readable label" in shown
    assert "Some certificate authorities require your fully qualified DNS name" in shown


def test_common_name_that_is_a_label_adds_no_san(certgate: Certgate) -> None:
    created = certgate.json(
        "cert", "create", "--name", "Label", "--key", "p256", "--cn", "Support Portal",
        "--san", "support.example.com",
    )  # fmt: skip
    assert certgate.show(created["certificate"]["id"])["sans"] == ["dNSName - support.example.com"]
    assert created["notices"] == []


def test_common_name_that_is_a_numbered_label_adds_no_san(
    certgate: Certgate, tmp_path: Path
) -> None:
    """A label such as 'Release.2026' is no host name (browsers read a last label that is a
    number as an IPv4 address): it stays the Common Name and is not made a dNSName."""
    created = certgate.json(
        "cert", "create", "--name", "Numbered", "--key", "p256", "--cn", "Release.2026",
        "--san", "support.example.com",
    )  # fmt: skip

    der = export_der(certgate, created["certificate"]["id"], tmp_path / "n.cer")
    text = openssl("x509", "-inform", "DER", "-in", der, "-noout", "-ext", "subjectAltName")
    assert text.split("\n")[1].strip() == "DNS:support.example.com"
    assert created["notices"] == []


# --- certificate signing requests ---------------------------------------------------------------


def test_request_data_is_a_pem_request_openssl_verifies(
    certgate_exe: Certgate, tmp_path: Path
) -> None:
    certificates_before = certgate_exe.reader.certificates()

    created = certgate_exe(
        "cert", "create", "--request", "--name", "Support 2026", "--key", "rsa2048",
        "--cn", "Support Portal", *GUIDE_SUBJECT,
        "--san", "support.example.com", "--san", "www.support.example.com",
    )  # fmt: skip

    request_id = re.findall(r"^created request (\d+) \(([0-9a-f]{64})\)$", created.stdout, re.M)
    assert len(request_id) == 1
    listing = certgate_exe("request", "list").stdout
    assert re.search(
        r"Support 2026\s+CN=Support Portal, OU=TechCom.*dNSName - support\.example\.com, "
        r"dNSName - www\.support\.example\.com\s+" + request_id[0][1],
        listing,
    ), listing
    shown = certgate_exe("request", "show", request_id[0][0]).stdout
    assert re.search(r"^Private Key\s+Available$", shown, re.M)
    request_data = shown.split("Request Data:\n", 1)[1]
    assert request_data.startswith("-----BEGIN CERTIFICATE REQUEST-----\n")
    assert request_data.endswith("-----END CERTIFICATE REQUEST-----\n")
    csr = tmp_path / "support.csr"
    csr.write_text(request_data)
    openssl("req", "-verify", "-noout", "-in", csr)  # fails the test unless the signature holds
    subject = openssl("req", "-in", csr, "-noout", "-subject", "-nameopt", "RFC2253")
    assert subject.strip() == (
        "subject=CN=Support Portal,OU=TechCom,O=Bomgar,L=Severville,ST=Tennessee,C=US"
    )
    assert "DNS:support.example.com, DNS:www.support.example.com" in openssl(
        "req", "-in", csr, "-noout", "-text"
    )
    assert (
        certgate_exe.reader.certificates() == certificates_before
    )  # a request is not a certificate
    (listed,) = certgate_exe.reader.json("request", "list")
    assert listed["pem"] == request_data
    assert listed["has_private_key"] is True and listed["certificate_ids"] == []


def test_a_request_with_a_validity_is_refused_as_the_api_refuses_days(certgate: Certgate) -> None:
    """A request has no validity (its CA sets one): ``--days`` with ``--request`` was dropped
    without a word; POST /requests refuses ``days`` (422) and the page has no such input."""
    before = certgate.json("request", "list")

    refused = certgate(
        "cert", "create", "--request", "--name", "CSR", "--cn", "csr.example.test",
        "--key", "p256", "--days", "30", expect=2,
    )  # fmt: skip

    assert refused.stdout == ""
    assert "--days" in refused.error_lines[-1] and "request" in refused.error_lines[-1]
    assert certgate.json("request", "list") == before


def test_rename_says_what_it_did(certgate: Certgate) -> None:
    """Every change says what it did; ``cert rename`` printed nothing."""
    renamed = certgate("cert", "rename", "1", "  Factory, renamed ")

    assert renamed.stdout == "renamed certificate 1 to 'Factory, renamed'\n"
    assert certgate.show(1)["friendly_name"] == "Factory, renamed"
