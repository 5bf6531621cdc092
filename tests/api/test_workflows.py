"""The guide's workflows through the API alone, against a running ``certgate serve`` over
HTTPS; after each, the listener on the address is checked with Python's ssl module."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.serialization import pkcs12

from tests.api.client import Server, ok, problem
from tests.api.workflows import ca_signed, codes, import_ok, self_signed, upload
from tests.support.openssl import OpensslCA, openssl
from tests.support.pki import fingerprint
from tests.support.served import (
    client_context,
    handshake,
    served_fingerprint,
    wait_until_served,
)


def test_create_self_signed_and_assign_ip_address(primary: Server) -> None:
    with primary.client() as api:
        certificate = self_signed(api, "Business Company Certificate", "selfsigned.example.test")
        assert certificate["role"] == "server" and certificate["has_private_key"]
        assert "self-signed" in codes(certificate)
        assert certificate["ip_addresses"] == []  # listed, not yet installed

        listed = ok(api.get("/certificates", params={"q": "selfsigned.example.test"}))
        assert [item["id"] for item in listed["items"]] == [certificate["id"]]

        # Update the appliance: export a copy without the private key.
        copy = api.get(f"/certificates/{certificate['id']}/export")
        assert copy.status_code == 200
        assert copy.headers["content-type"] == "application/pkix-cert"
        assert fingerprint(copy.content) == certificate["fingerprint_sha256"]

        # Assign IP Addresses (the Edit Certificate Configuration checkboxes).
        addresses = ok(
            api.put(
                f"/certificates/{certificate['id']}/addresses",
                json={"addresses": [primary.address], "confirm": True},
            )
        )
        mine = [a for a in addresses if a["address"] == primary.address]
        assert mine[0]["certificate_id"] == certificate["id"]
        wait_until_served(primary.address, primary.port, certificate["fingerprint_sha256"])
        shown = ok(api.get(f"/certificates/{certificate['id']}"))
        assert shown["ip_addresses"] == [primary.address]


def test_ca_signed_certificate_replaces_self_signed(
    primary: Server, ca: OpensslCA, tmp_path: Path
) -> None:
    host = "support.example.test"
    with primary.client() as api:
        old = self_signed(api, "temporary", "temporary.example.test")
        ok(
            api.put(
                f"/addresses/{primary.address}", json={"certificate": old["id"], "confirm": True}
            )
        )

        leaf, _ = ca_signed(api, ca, host, tmp_path)
        assert leaf["has_private_key"] and leaf["chain_mode"] == "automatic"
        assert not codes(leaf) & {"chain-incomplete", "self-signed", "private-key-missing"}
        assert len(leaf["chain"]) == 3
        assert [s.split("CN=")[1].split(",")[0] for s in leaf["chain_subjects"]] == [
            "API Issuing CA",
            "API Root CA",
        ]
        roles = ok(api.get("/certificates", params={"role": "intermediate", "q": "API"}))
        assert [item["issued_to"] for item in roles["items"]] == ["API Issuing CA"]
        keyless = ok(api.get("/certificates", params={"has_private_key": "false", "limit": 1000}))
        chain = {item["fingerprint_sha256"] for item in keyless["items"]}
        assert set(leaf["chain"][1:]) <= chain and leaf["fingerprint_sha256"] not in chain

        # Self-signed to CA-signed: another root, confirmed (clients were prepared).
        moved = {"certificate": leaf["id"], "confirm": True}
        ok(api.put(f"/addresses/{primary.address}", json=moved))
        wait_until_served(primary.address, primary.port, leaf["fingerprint_sha256"])
        # Verifying against the root alone: the listener sends the intermediate too.
        served = handshake(
            primary.address,
            primary.port,
            client_context(ca.root, check_hostname=True),
            server_name=host,
        )
        assert served.fingerprint == leaf["fingerprint_sha256"]

        # The old certificate secures nothing now: it can be deleted, with its key.
        deleted = ok(api.delete(f"/certificates/{old['id']}"))
        assert deleted == {
            "id": old["id"],
            "friendly_name": "temporary",
            "addresses_moved_to_factory": [],
            "private_key_deleted": True,
            "chains_incomplete": [],
        }
        problem(api.get(f"/certificates/{old['id']}"), 404, "not-found")


def test_failover_copy_through_pkcs12(
    primary: Server, backup: Server, ca: OpensslCA, tmp_path: Path
) -> None:
    host = "failover.example.test"
    passphrase = "a strong failover passphrase"
    with primary.client() as api:
        leaf, _ = ca_signed(api, ca, host, tmp_path)
        wanted = {"addresses": [primary.address], "confirm": True}
        ok(api.put(f"/certificates/{leaf['id']}/addresses", json=wanted))
        exported = api.post(
            f"/certificates/{leaf['id']}/export",
            json={"include_private_key": True, "include_chain": True, "passphrase": passphrase},
        )
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == "application/x-pkcs12"
    assert exported.headers["content-disposition"] == f'attachment; filename="{host}.p12"'
    key, certificate, chain = pkcs12.load_key_and_certificates(
        exported.content, passphrase.encode()
    )
    assert key is not None and certificate is not None and len(chain) == 2

    with backup.client() as api:
        refused = upload(api, [(f"{host}.p12", exported.content)], "not the passphrase")
        assert problem(refused, 422, "wrong-password")["entries"][0]["error_code"] == (
            "wrong-password"
        )
        entries = import_ok(api, [(f"{host}.p12", exported.content)], passphrase)
        kinds = sorted(entry["kind"] for entry in entries)
        assert kinds == ["certificate", "certificate", "certificate", "private-key"]
        copy = ok(api.get(f"/certificates/{leaf['fingerprint_sha256']}"))
        assert copy["has_private_key"] and len(copy["chain"]) == 3
        ok(
            api.put(
                f"/addresses/{backup.address}", json={"certificate": copy["id"], "confirm": True}
            )
        )

    wait_until_served(primary.address, primary.port, leaf["fingerprint_sha256"])
    wait_until_served(backup.address, backup.port, leaf["fingerprint_sha256"])
    served = handshake(
        backup.address, backup.port, client_context(ca.root, check_hostname=True), server_name=host
    )
    assert (
        served.fingerprint
        == served_fingerprint(primary.address, primary.port)
        == leaf["fingerprint_sha256"]
    )


def test_renew_with_the_same_key(primary: Server, ca: OpensslCA, tmp_path: Path) -> None:
    host = "renew.example.test"
    with primary.client() as api:
        old, csr = ca_signed(api, ca, host, tmp_path)
        ok(
            api.put(
                f"/addresses/{primary.address}", json={"certificate": old["id"], "confirm": True}
            )
        )
        wait_until_served(primary.address, primary.port, old["fingerprint_sha256"])

        # The CA renews from the original request: same key, later expiration.
        renewed = ca.sign(csr, tmp_path / "renewed.pem", days=400)
        (entry,) = import_ok(api, [("renewed.pem", renewed.read_bytes())])
        assert (entry["kind"], entry["status"]) == ("certificate", "linked")
        new = ok(api.get(f"/certificates/{entry['id']}"))
        assert new["has_private_key"] and new["friendly_name"] == old["friendly_name"]
        assert new["not_after"] > old["not_after"]
        assert new["public_key"] == old["public_key"]

        # Move the addresses from the old certificate, then delete it.
        ok(
            api.put(
                f"/certificates/{new['id']}/addresses",
                json={"addresses": ok(api.get(f"/certificates/{old['id']}"))["ip_addresses"]},
            )
        )
        assert ok(api.get(f"/certificates/{old['id']}"))["ip_addresses"] == []
        wait_until_served(primary.address, primary.port, new["fingerprint_sha256"])
        deleted = ok(api.delete(f"/certificates/{old['id']}"))
        assert deleted["private_key_deleted"] is False  # the renewed certificate uses it
        assert ok(api.get(f"/certificates/{new['id']}"))["has_private_key"]
        problem(api.get(f"/certificates/{old['id']}"), 404, "not-found")
    assert served_fingerprint(primary.address, primary.port) == new["fingerprint_sha256"]


def test_openssl_self_signed_with_key_is_a_server_certificate_on_api_and_page(
    primary: Server, tmp_path: Path
) -> None:
    """``openssl req -x509`` marks it CA:TRUE; with its key and DNS names it is what the
    administrator made it for: a server certificate with the "Assign IP" link."""
    certificate, key = tmp_path / "portal.pem", tmp_path / "portal.key"
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate,
        "-subj", "/CN=Lab Portal", "-days", "90",
        "-addext", "subjectAltName=DNS:lab-portal.example.test",
    )  # fmt: skip
    with primary.client() as api:
        entries = import_ok(
            api, [("portal.pem", certificate.read_bytes()), ("portal.key", key.read_bytes())]
        )
        (entry,) = [e for e in entries if e["kind"] == "certificate"]
        view = ok(api.get(f"/certificates/{entry['id']}"))
    assert (view["role"], view["has_private_key"]) == ("server", True)
    assert "self-signed" in codes(view)
    session = primary.login()
    with primary.pages(session) as pages:
        listing = pages.get("/security/certificates")
    assert listing.status_code == 200
    assert f'href="/appliance/security/certificates/{entry["id"]}#ip-addresses">Assign IP' in (
        listing.text
    )
