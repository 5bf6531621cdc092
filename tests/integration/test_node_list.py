"""``certgate node list`` tells a node that says it has no plain HTTP listener from one of an
earlier version, whose heartbeat does not say (its HTTP column: "not reported"; in JSON,
``http_said`` false)."""

from __future__ import annotations

from sqlalchemy import text

from certgate.service import nodes
from certgate.service.appliance import Appliance
from tests.integration.conftest import Certgate

LISTENING = [{"address": "192.0.2.7", "port": 443, "state": "listening"}]


def test_a_node_of_an_earlier_version_has_its_http_listeners_not_reported(
    certgate: Certgate,
) -> None:
    app = Appliance.open(certgate.data_dir)
    try:
        plain = [{"address": "192.0.2.8", "port": 8080, "state": "failed", "error": "taken"}]
        assert nodes.heartbeat(app, "node-new", app.now(), 60.0, LISTENING, plain)
        assert nodes.heartbeat(app, "node-old", app.now(), 60.0, LISTENING)
        with app.store.transaction() as repository:
            repository.session.execute(
                text("UPDATE nodes SET http_listeners = NULL WHERE name = 'node-old'")
            )
    finally:
        app.close()
    rows = {line.split()[0]: line for line in certgate("node", "list").stdout.splitlines()}
    assert "0 (192.0.2.8 failed)" in rows["node-new"] and "not reported" not in rows["node-new"]
    assert "not reported" in rows["node-old"]
    # --json (the API's document) says so too: an empty list alone reads as "none".
    listed = {node["name"]: node for node in certgate.json("node", "list")}
    assert listed["node-old"]["http_listeners"] == [] and listed["node-old"]["http_said"] is False
    assert listed["node-new"]["http_said"] is True
