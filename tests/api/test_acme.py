"""ACME through the API, against Pebble: the account registered and shown, an order refused
while no HTTP listener answers (409), the HTTP port turned on through PUT /tls (the running
serve opens the listener without a restart), then an order issued and assigned (201), and
the orders listed with their states; an order by tls-alpn-01 on the HTTPS port, asked to
confirm (409) before it is placed when the address's hostnames would not be covered."""

from __future__ import annotations

from pathlib import Path

from certgate.service.acme_orders import ChallengeType, responder_problem
from tests.api.client import ok, problem
from tests.api.conftest import serve
from tests.support.net import free_port
from tests.support.pebble import running_pebble
from tests.support.polling import eventually
from tests.support.served import wait_until_served

ADDRESS = "127.0.0.64"


def test_account_order_and_orders_through_the_api(tmp_path: Path) -> None:
    http_port = free_port()
    with (
        serve(tmp_path / "data", ADDRESS) as server,
        running_pebble(tmp_path / "pebble", ADDRESS, http_port, tls_port=server.port) as pebble,
        server.client() as api,
    ):
        assert ok(api.get("/acme/account"))["configured"] is False
        refused = problem(
            api.put("/acme/account", json={"directory": pebble.directory_url}), 502, "acme"
        )
        assert "not trusted" in refused["detail"]  # Pebble's HTTPS root is not the system's
        account = ok(
            api.put(
                "/acme/account",
                json={
                    "directory": pebble.directory_url,
                    "ca_bundle": pebble.ca_file.read_text(),
                    "email": "ops@example.test",
                    "agree_tos": True,
                },
            )
        )
        assert account["configured"] is True and account["email"] == "ops@example.test"
        assert ok(api.get("/acme/account")) == account

        order = {"friendly_name": "api-site", "domains": ["api.example.test"], "key": "p384"}
        not_ready = problem(api.post("/acme/orders", json=order), 409, "acme-not-ready")
        assert "without its plain HTTP listener" in not_ready["detail"]

        ok(api.put("/tls", json={"http_port": http_port}))
        appliance = server.service()
        eventually(
            lambda: responder_problem(appliance, ChallengeType.HTTP_01) is None,
            what="the running serve opens its HTTP listener",
        )
        answer = api.post("/acme/orders", json={**order, "assign": [ADDRESS]})
        issued = ok(answer, 201)
        assert issued["state"] == "valid" and issued["key"] == "p384"
        assert answer.headers["location"] == f"/api/v1/acme/orders/{issued['id']}"
        wait_until_served(ADDRESS, server.port, issued["certificate_fingerprint"])
        [listed] = ok(api.get("/acme/orders"))
        assert listed == issued == ok(api.get(answer.url.join(answer.headers["location"])))
        problem(api.get("/acme/orders/999"), 404, "not-found")

        [not_due] = ok(api.post("/acme/renewals", json={}))
        assert not_due["state"] == "not-due" and not_due["renewed_by"] is None
        [renewal] = ok(
            api.post(
                "/acme/renewals",
                json={"certificate_id": issued["certificate_id"], "force": True},
            )
        )
        assert renewal["state"] == "renewed"
        renewed = renewal["renewed_by"]
        assert renewed["renewal_of"] == issued["id"] and renewed["key"] == "p384"
        wait_until_served(ADDRESS, server.port, renewed["certificate_fingerprint"])
        problem(api.post("/acme/renewals", json={"certificate_id": 999}), 404, "not-found")

        # The address's clients use a name the next order does not cover: asked first.
        ok(api.patch(f"/addresses/{ADDRESS}", json={"hostnames": ["api.example.test"]}))
        by_alpn = {
            "friendly_name": "api-alpn",
            "domains": ["alpn.api.example.test"],
            "challenge": "tls-alpn-01",
            "assign": [ADDRESS],
        }
        asked = problem(api.post("/acme/orders", json=by_alpn), 409, "unconfirmed-change")
        [concern] = asked["concerns"]
        assert concern["code"] == "hostname-not-covered" and concern["address"] == ADDRESS
        assert len(ok(api.get("/acme/orders"))) == 2  # no order was placed
        alpn = ok(api.post("/acme/orders", json={**by_alpn, "confirm": True}), 201)
        assert alpn["state"] == "valid" and alpn["challenge"] == "tls-alpn-01"
        wait_until_served(ADDRESS, server.port, alpn["certificate_fingerprint"])
        refused = problem(
            api.post("/acme/orders", json={**by_alpn, "challenge": "dns-01"}), 422, "validation"
        )
        assert refused["field"] == "challenge"
