"""The Edit Certificate Configuration page through the API: rename, Certificate Chain
(Automatic / Manually Specified), and the requests it keeps."""

from __future__ import annotations

from pathlib import Path

from tests.api.client import Server, ok, problem
from tests.api.conftest import serve
from tests.api.workflows import ca_signed, import_ok, self_signed
from tests.support.openssl import OpensslCA
from tests.support.server import run_cli


def test_rename(primary: Server) -> None:
    with primary.client() as api:
        certificate = self_signed(api, "before", "rename.example.test")
        renamed = ok(
            api.patch(f"/certificates/{certificate['id']}", json={"friendly_name": "after"})
        )
        assert renamed["friendly_name"] == "after"
        found = problem(
            api.patch(f"/certificates/{certificate['id']}", json={"friendly_name": "   "}),
            422,
            "validation",
        )
        assert found["field"] == "friendly_name"


def test_manual_and_automatic_chain(primary: Server, ca: OpensslCA, tmp_path: Path) -> None:
    with primary.client() as api:
        leaf, _ = ca_signed(api, ca, "manual-chain.example.test", tmp_path)
        pem = ca.intermediate.read_text() + ca.root.read_text()
        manual = ok(
            api.put(f"/certificates/{leaf['id']}/chain", json={"mode": "manual", "pem": pem})
        )
        assert manual["chain_mode"] == "manual" and manual["chain"] == leaf["chain"]

        # A certificate of a manual chain is in use.
        intermediate = manual["chain"][1]
        problem(api.delete(f"/certificates/{intermediate}"), 409, "in-use")

        wrong = problem(
            api.put(
                f"/certificates/{leaf['id']}/chain",
                json={"mode": "manual", "pem": ca.root.read_text()},
            ),
            422,
            "validation",
        )
        assert wrong["field"] == "pem" and wrong["label"] == "Manually Specified"
        missing = problem(
            api.put(f"/certificates/{leaf['id']}/chain", json={"mode": "manual"}), 422, "validation"
        )
        assert missing["field"] == "pem"

        automatic = ok(api.put(f"/certificates/{leaf['id']}/chain", json={"mode": "automatic"}))
        assert automatic["chain_mode"] == "automatic" and automatic["chain"] == leaf["chain"]
        assert automatic["notices"] == [] and manual["notices"] == []

        # The guide's screenshots list the chain root first: put in order, and said.
        root_first = ca.root.read_text() + ca.intermediate.read_text()
        reordered = ok(
            api.put(f"/certificates/{leaf['id']}/chain", json={"mode": "manual", "pem": root_first})
        )
        assert reordered["chain_mode"] == "manual" and reordered["chain"] == leaf["chain"]
        assert len(reordered["notices"]) == 1
        assert reordered["notices"][0].startswith("the chain was put in order")

    # The Edit page's Save Configuration says it too.
    session = primary.login()
    with primary.pages(session) as pages:
        saved = pages.post(
            f"/security/certificates/{leaf['id']}",
            data={
                "csrf_token": session.principal.csrf_token,
                "friendly_name": leaf["friendly_name"],
                "chain_mode": "manual",
            },
            files={"chain_file": ("chain.pem", root_first.encode(), "application/x-pem-file")},
        )
        assert saved.status_code == 303, saved.text
        shown = pages.get(saved.headers["location"].removeprefix("/appliance"))
    assert "Note: the chain was put in order, nearest issuer first" in shown.text


def test_requests_list_show_delete(primary: Server) -> None:
    body = {
        "friendly_name": "delete me",
        "key": "p256",
        "subject": {"common_name": "delete-me.example.test"},
        "subject_alternative_names": ["delete-me.example.test", "IP:192.0.2.7"],
    }
    with primary.client() as api:
        created = ok(api.post("/requests", json=body), 201)
        request = created["request"]
        assert request["sans"] == ["dNSName - delete-me.example.test", "iPAddress - 192.0.2.7"]
        assert any("IP" in notice for notice in created["notices"])
        assert request["id"] in [item["id"] for item in ok(api.get("/requests"))]
        shown = ok(api.get(f"/requests/{request['fingerprint_sha256'][:12]}"))
        assert shown["pem"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
        der = api.get(f"/requests/{request['id']}/csr", params={"format": "der"})
        assert der.headers["content-type"] == "application/pkcs10"
        assert der.content[:1] == b"\x30"
        deleted = ok(api.delete(f"/requests/{request['id']}"))
        assert deleted == {"id": request["id"], "private_key_deleted": True}
        problem(api.get(f"/requests/{request['id']}"), 404, "not-found")


def test_the_factory_certificate_refuses_an_unchecked_address_and_says_why(
    tmp_path: Path,
) -> None:
    """An unchecked address goes back to the factory certificate: on the factory certificate
    itself that changes nothing, so it is refused (never "saved")."""
    with serve(tmp_path / "data", "127.0.0.46") as server, server.client() as api:
        factory = ok(api.get("/certificates", params={"q": "certgate Appliance"}))["items"][0]
        assert factory["is_factory"]
        found = problem(
            api.put(f"/certificates/{factory['id']}/addresses", json={"addresses": []}),
            422,
            "validation",
        )
        assert found["field"] == "addresses", found
        assert "127.0.0.46 cannot be unchecked on the factory certificate" in found["detail"]
        wrong = problem(
            api.put(
                f"/certificates/{factory['id']}/addresses",
                json={"addresses": ["127.0.0.46", "127.0.0.300"]},
            ),
            422,
            "validation",
        )
        assert wrong["field"] == "addresses[1]", wrong  # as the body spells it
        assert "goes back to the factory certificate" in found["detail"]
        (address,) = ok(api.get("/addresses"))
        assert address["is_factory_certificate"]
        kept = ok(
            api.put(f"/certificates/{factory['id']}/addresses", json={"addresses": ["127.0.0.46"]})
        )
        assert [entry["address"] for entry in kept] == ["127.0.0.46"]


def test_deleting_an_intermediate_names_the_certificates_whose_chain_becomes_incomplete(
    ca: OpensslCA, tmp_path: Path
) -> None:
    with serve(tmp_path / "data", "127.0.0.47") as server, server.client() as api:
        leaf, _ = ca_signed(api, ca, "orphan.example.test", tmp_path / "pki")
        intermediate = leaf["chain"][1]
        deleted = ok(api.delete(f"/certificates/{intermediate}"))
        assert deleted["chains_incomplete"] == [leaf["friendly_name"]], deleted
        # The root: its only child, the intermediate, is gone, so no chain breaks now.
        root = ok(api.delete(f"/certificates/{leaf['chain'][2]}"))
        assert root["chains_incomplete"] == [], root

        # The command line says it too, in words and in --json.
        import_ok(api, [("intermediate.pem", ca.intermediate.read_bytes())])
        said = run_cli(server.running.data_dir, "cert", "delete", intermediate[:16])
        assert (
            "the chain of these certificates is now incomplete (import their issuer again): "
            f"{leaf['friendly_name']}" in said.stdout
        )
