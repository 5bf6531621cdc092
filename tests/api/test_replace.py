"""Issue 10, point 4 through the API: POST /certificates/{old}/replace moves every address of
the old certificate to the new one (seen on the wire), answers the moves, and refuses with a
specific problem, nothing changed."""

from __future__ import annotations

from tests.api.client import Server, mint_token, ok, problem
from tests.api.workflows import import_ok, self_signed
from tests.support.pki import make_chain, pem
from tests.support.served import served_fingerprint, wait_until_served


def test_replace_moves_the_address_and_refusals_change_nothing(primary: Server) -> None:
    with primary.client() as api:
        old = self_signed(api, "replaced", "replaced.example.test")
        new = self_signed(api, "replacement", "replacement.example.test")
        ok(
            api.put(
                f"/addresses/{primary.address}", json={"certificate": old["id"], "confirm": True}
            )
        )
        wait_until_served(primary.address, primary.port, old["fingerprint_sha256"])

        # Two self-signed certificates: two roots, so the move is confirmed (see test_guard).
        replace = {"with": new["id"], "confirm": True}
        done = ok(api.post(f"/certificates/{old['id']}/replace", json=replace))
        assert done == {
            "old": {key: old[key] for key in ("id", "friendly_name", "fingerprint_sha256")},
            "new": {key: new[key] for key in ("id", "friendly_name", "fingerprint_sha256")},
            "addresses": [primary.address],
        }
        wait_until_served(primary.address, primary.port, new["fingerprint_sha256"])
        assert ok(api.get(f"/certificates/{old['id']}"))["ip_addresses"] == []

        # Refusals: a specific problem each, the address keeps presenting the new one.
        path = f"/certificates/{new['id']}/replace"
        same = problem(api.post(path, json={"with": new["id"]}), 422, "validation")
        assert same["field"] == "with" and same["label"] == "Replace with"
        nothing = problem(
            api.post(f"/certificates/{old['id']}/replace", json={"with": new["id"]}),
            409,
            "nothing-to-replace",
        )
        assert "secures no IP address" in nothing["detail"]
        (keyless,) = import_ok(api, [("keyless.pem", pem(make_chain("keyless.test").leaf))])
        missing = problem(api.post(path, json={"with": keyless["id"]}), 422, "key-missing")
        assert "cannot replace 'replacement'" in missing["detail"]
        problem(api.post(path, json={"with": 9999999}), 404, "not-found")
        problem(api.post(path, json={"with": "not an id"}), 422, "validation")
        problem(api.post(path, json={}), 422, "validation")
        problem(api.post(path, json={"with": old["id"], "confirmed": True}), 422, "validation")
        auditor = mint_token(primary.running.data_dir, "replace-auditor", "auditor")
        with primary.client(auditor) as reader:
            problem(reader.post(path, json={"with": old["id"]}), 403, "forbidden")
        assert served_fingerprint(primary.address, primary.port) == new["fingerprint_sha256"]

        # By fingerprint, back again.
        back = ok(api.post(path, json={"with": old["fingerprint_sha256"], "confirm": True}))
        assert back["addresses"] == [primary.address]
        wait_until_served(primary.address, primary.port, old["fingerprint_sha256"])
        events = ok(api.get("/audit", params={"action": "certificate.replace"}))["events"]
        assert events[0]["target"].startswith("replacement (")
        assert "by 'replaced'" in events[0]["detail"]


def test_the_page_says_why_a_replacement_is_refused(primary: Server) -> None:
    with primary.client() as api:
        old = self_signed(api, "page replaced", "page-replaced.example.test")
        idle = self_signed(api, "page idle", "page-idle.example.test")
        ok(
            api.put(
                f"/addresses/{primary.address}", json={"certificate": old["id"], "confirm": True}
            )
        )
        (keyless,) = import_ok(api, [("keyless.pem", pem(make_chain("page-keyless.test").leaf))])
    session = primary.login()
    csrf = session.principal.csrf_token
    with primary.pages(session) as pages:
        page = pages.get(f"/security/certificates/{old['id']}")
        assert 'name="with"' in page.text and f'<option value="{idle["id"]}">' in page.text
        assert f'<option value="{keyless["id"]}">' not in page.text  # no key: not offered
        answer = pages.post(
            f"/security/certificates/{old['id']}/replace",
            data={"csrf_token": csrf, "with": str(keyless["id"])},
        )
        assert answer.status_code == 422
        assert "its Private Key is not Available" in answer.text
        answer = pages.post(
            f"/security/certificates/{idle['id']}/replace",
            data={"csrf_token": csrf, "with": str(old["id"])},
        )
        assert answer.status_code == 409
        assert "secures no IP address: there is nothing to replace" in answer.text
        answer = pages.post(
            f"/security/certificates/{old['id']}/replace", data={"csrf_token": csrf, "with": ""}
        )
        assert answer.status_code == 422
        assert "Choose the certificate that takes over the addresses." in answer.text
    with primary.client() as api:
        assert ok(api.get(f"/certificates/{old['id']}"))["ip_addresses"] == [primary.address]
