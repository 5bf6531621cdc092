"""The guard (issue 10, point 6) through the API: an assignment, a PUT of a certificate's
addresses or a replacement that changes the root an address's chain ends at answers 409
unconfirmed-change, each concern in ``concerns``, and changes nothing on the wire; the same
request with ``"confirm": true`` applies it. Leaving the factory certificate and a renewal
under the same root need no confirmation."""

from __future__ import annotations

from typing import Any

import httpx
from cryptography import x509

from tests.api.client import Server, ok, problem
from tests.api.workflows import import_ok
from tests.support.pki import TestCA, fingerprint, pem
from tests.support.served import served_fingerprint, wait_until_served

ADDRESS = "127.0.0.88"


def _issued(api: httpx.Client, ca: TestCA, host: str, days: int = 365) -> dict[str, Any]:
    """A leaf of ``ca`` imported with its chain and key: the leaf's document."""
    key, leaf = ca.leaf(host, days=days)
    import_ok(api, [(f"{host}.pem", pem(leaf, ca.intermediate, ca.root, key))])
    certificate: dict[str, Any] = ok(api.get(f"/certificates/{fingerprint(leaf)}"))
    return certificate


def _key_id(certificate: x509.Certificate) -> str:
    """The subject key identifier, in hex, as the API gives a root's."""
    extension = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return extension.value.digest.hex()


def test_a_change_of_root_is_409_until_confirmed(primary: Server) -> None:
    a = TestCA.make(root_name="Guard Root A", intermediate_name="Guard Issuing A")
    b = TestCA.make(root_name="Guard Root B", intermediate_name="Guard Issuing B")
    with primary.client() as api:
        added = api.post("/addresses", json={"address": ADDRESS})
        ok(added, 201)
        assert added.headers["location"] == f"/api/v1/addresses/{ADDRESS}"  # the new address
        assert ok(api.get(added.url.join(added.headers["location"])))["address"] == ADDRESS
        try:
            site_a = _issued(api, a, "a.api.example.test")
            site_b = _issued(api, b, "b.api.example.test")
            # Off the factory certificate: no confirmation.
            ok(api.put(f"/addresses/{ADDRESS}", json={"certificate": site_a["id"]}))
            wait_until_served(ADDRESS, primary.port, site_a["fingerprint_sha256"])

            refused = problem(
                api.put(f"/addresses/{ADDRESS}", json={"certificate": site_b["id"]}),
                409,
                "unconfirmed-change",
            )
            [concern] = refused["concerns"]
            assert concern == {
                "address": ADDRESS,
                "code": "root-change",
                "message": concern["message"],
                "current_certificate": "a.api.example.test",
                "new_certificate": "b.api.example.test",
                "current_root": {
                    "subject": "CN=Guard Root A",
                    "fingerprint_sha256": fingerprint(a.root),
                    "public_key_fingerprint": concern["current_root"]["public_key_fingerprint"],
                    "key_id": _key_id(a.root),
                },
                "new_root": {
                    "subject": "CN=Guard Root B",
                    "fingerprint_sha256": fingerprint(b.root),
                    "public_key_fingerprint": concern["new_root"]["public_key_fingerprint"],
                    "key_id": _key_id(b.root),
                },
                "hostnames": [],
            }
            assert (
                "'CN=Guard Root A'" in refused["detail"]
                and "'CN=Guard Root B'" in refused["detail"]
            )
            assert "permanently lose connectivity" in refused["detail"]
            # The same for the certificate's addresses and for a replacement; nothing moved.
            path = f"/certificates/{site_b['id']}/addresses"
            again = problem(api.put(path, json={"addresses": [ADDRESS]}), 409, "unconfirmed-change")
            assert again["concerns"] == refused["concerns"]
            replace = f"/certificates/{site_a['id']}/replace"
            problem(api.post(replace, json={"with": site_b["id"]}), 409, "unconfirmed-change")
            assert served_fingerprint(ADDRESS, primary.port) == site_a["fingerprint_sha256"]

            ok(
                api.put(
                    f"/addresses/{ADDRESS}", json={"certificate": site_b["id"], "confirm": True}
                )
            )
            wait_until_served(ADDRESS, primary.port, site_b["fingerprint_sha256"])
            [event] = ok(api.get("/audit", params={"action": "address.assign", "limit": 1}))[
                "events"
            ]
            assert event["detail"] == f"{ADDRESS}; confirmed despite: {ADDRESS} root-change"

            # A renewal under the same root replaces it without a question.
            renewed = _issued(api, b, "b.api.example.test", days=730)
            done = ok(
                api.post(f"/certificates/{site_b['id']}/replace", json={"with": renewed["id"]})
            )
            assert done["addresses"] == [ADDRESS]
            wait_until_served(ADDRESS, primary.port, renewed["fingerprint_sha256"])

            # Back under Root A through the addresses of site A, confirmed.
            wanted = {"addresses": [ADDRESS], "confirm": True}
            ok(api.put(f"/certificates/{site_a['id']}/addresses", json=wanted))
            wait_until_served(ADDRESS, primary.port, site_a["fingerprint_sha256"])
        finally:
            ok(api.delete(f"/addresses/{ADDRESS}"), 204)


def test_the_confirmation_step_carries_an_uploaded_chain(primary: Server) -> None:
    """Save Configuration with a new manual chain and an address: the guard judges the chain
    being saved (one transaction), the step carries it, and Confirm saves both."""
    a = TestCA.make(root_name="Carry Root A", intermediate_name="Carry Issuing A")
    b = TestCA.make(root_name="Carry Root B", intermediate_name="Carry Issuing B")
    address = "127.0.0.89"
    with primary.client() as api:
        ok(api.post("/addresses", json={"address": address}), 201)
        try:
            site_a = _issued(api, a, "a.carry.example.test")
            ok(api.put(f"/addresses/{address}", json={"certificate": site_a["id"]}))
            key, leaf = b.leaf("b.carry.example.test")
            import_ok(api, [("b.pem", pem(leaf, key))])  # without its chain
            site_b = ok(api.get(f"/certificates/{fingerprint(leaf)}"))
            session = primary.login()
            form = {
                "csrf_token": session.principal.csrf_token,
                "friendly_name": site_b["friendly_name"],
                "chain_mode": "manual",
                "addresses": address,
            }
            page = f"/security/certificates/{site_b['id']}"
            with primary.pages(session) as pages:
                chain = pem(b.intermediate, b.root)
                step = pages.post(page, data=form, files={"chain_file": ("chain.pem", chain)})
                assert step.status_code == 200
                panel = step.text.split('id="confirm-change"', 1)[1].split("</section>", 1)[0]
                assert "CN=Carry Root A" in panel and "CN=Carry Root B" in panel
                assert "chain is incomplete" not in panel  # the chain being saved counts
                assert 'name="chain_pem"' in panel
                assert ok(api.get(f"/certificates/{site_b['id']}"))["chain_mode"] == "automatic"
                assert ok(api.get(f"/addresses/{address}"))["certificate_id"] == site_a["id"]
                confirmed = pages.post(
                    page, data={**form, "chain_pem": chain.decode(), "confirm": "1"}
                )
                assert confirmed.status_code == 303, confirmed.text
            saved = ok(api.get(f"/certificates/{site_b['id']}"))
            assert saved["chain_mode"] == "manual" and saved["ip_addresses"] == [address]
        finally:
            ok(api.delete(f"/addresses/{address}"), 204)
