"""``certgate node list`` tells a node that says it has no plain HTTP listener from one of an
earlier version, whose heartbeat does not say (its HTTP column: "not reported"; in JSON,
``http_said`` false)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import httpx
from sqlalchemy import text

from certgate.errors import ConflictError
from certgate.service import auth, nodes
from certgate.service.appliance import Appliance
from certgate.service.auth import LoginThrottle
from certgate.service.setup import initialise
from certgate.web.security import SESSION_COOKIE
from tests.integration.conftest import Certgate
from tests.support.pglocks import behind_uncommitted
from tests.support.server import running_appliance

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


def test_status_says_when_a_node_was_last_seen_in_gmt_whatever_the_database_time_zone(
    tmp_path: Path, postgresql_url: str
) -> None:
    """PostgreSQL gives times back in its session's time zone (Debian's initdb takes the
    host's): Status > Cluster's "last seen", labelled GMT, is in GMT all the same."""
    tokyo = postgresql_url + "%20-cTimeZone%3DAsia/Tokyo"  # nine hours from GMT, no DST
    with running_appliance(tmp_path / "data", database_url=tokyo) as running:
        app = Appliance.open(running.data_dir, tokyo)
        try:
            session = auth.login(app, "admin", running.admin_password, "tests", LoginThrottle())
        finally:
            app.close()
        with httpx.Client(
            base_url=running.base_url,
            verify=False,
            cookies={SESSION_COOKIE: session.cookie_value},
            timeout=60,
        ) as pages:
            page = pages.get("/appliance/status")
    assert page.status_code == 200, page.text
    shown = re.findall(r"<td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) GMT</td>", page.text)
    assert shown, page.text
    for text_ in shown:
        moment = dt.datetime.strptime(text_, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
        assert abs((dt.datetime.now(dt.UTC) - moment).total_seconds()) < 600, text_


def test_a_node_whose_heartbeat_lands_while_it_is_removed_is_refused_not_removed(
    tmp_path: Path, postgresql_url: str
) -> None:
    """PostgreSQL: 'node remove' of a lost node while that node comes back, its heartbeat
    written but not yet committed. The remove waits for the heartbeat and then refuses the
    node, alive again; it does not delete it on what it read before the beat."""
    initialise(tmp_path / "data", postgresql_url)
    app = Appliance.open(tmp_path / "data", postgresql_url)
    try:
        long_ago = app.now() - dt.timedelta(minutes=5)
        app.clock = lambda: long_ago
        assert nodes.heartbeat(app, "node-b", long_ago, 1.0, LISTENING)
        app.clock = lambda: dt.datetime.now(dt.UTC)
        assert [node.state for node in nodes.list_nodes(app)] == [nodes.NodeState.LOST]
        removal = behind_uncommitted(
            postgresql_url,
            "UPDATE nodes SET last_seen = now() WHERE name = 'node-b'",
            lambda: nodes.remove_node(app, "node-b"),
        )
        assert isinstance(removal, ConflictError), removal
        assert [node.name for node in nodes.list_nodes(app)] == ["node-b"]
    finally:
        app.close()


def test_a_lost_node_with_addresses_pinned_to_it_is_not_removed(certgate: Certgate) -> None:
    """Forgetting the node would leave its address served by nobody, and Status would call
    it a node that never ran (a warning) instead of one lost (an error)."""
    _lost_node(certgate, "node-b")
    certgate("ip", "add", "127.0.0.9", "--node", "node-b")
    refused = certgate("node", "remove", "node-b", expect=1)
    assert "127.0.0.9 is pinned to node 'node-b'" in refused.stderr
    assert "certgate ip set" in refused.stderr
    assert [node["name"] for node in certgate.json("node", "list")] == ["node-b"]
    diagnostics = certgate.json("status")["diagnostics"]
    [pinned] = [found for found in diagnostics if found["code"] == "address-node-not-alive"]
    assert pinned["severity"] == "error" and "lost" in pinned["message"]

    certgate("ip", "set", "127.0.0.9", "--floating")
    certgate("node", "remove", "node-b")
    assert certgate.json("node", "list") == []


def test_pinning_an_address_to_a_lost_node_says_nobody_serves_it(certgate: Certgate) -> None:
    """'ip set --node' of a node that is down said the address "is served by node-b only":
    it says that node is lost and nobody serves the address, as Status will."""
    _lost_node(certgate, "node-b")
    certgate("ip", "add", "127.0.0.9")
    said = certgate("ip", "set", "127.0.0.9", "--node", "node-b").stdout
    assert "error (address-node-not-alive): 127.0.0.9 is pinned to node 'node-b', which is " in said
    assert "lost" in said and "no node serves it" in said
    said = certgate("ip", "add", "127.0.0.10", "--node", "node-b").stdout
    assert "no node serves it" in said
    said = certgate("ip", "set", "127.0.0.9", "--floating").stdout
    assert "no node serves it" not in said


def _lost_node(certgate: Certgate, name: str) -> None:
    """A node that last beat five minutes ago, every second: lost."""
    app = Appliance.open(certgate.data_dir)
    try:
        long_ago = app.now() - dt.timedelta(minutes=5)
        app.clock = lambda: long_ago
        assert nodes.heartbeat(app, name, long_ago, 1.0, LISTENING)
    finally:
        app.close()
