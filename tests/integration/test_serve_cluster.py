"""Two `certgate serve` nodes on one PostgreSQL store (separate data directories, the same
master key): what the CLI commits against node A's data directory is on node B's wire at
once, pushed by NOTIFY; each node's heartbeat says it is alive and what it presents, and a
node killed with SIGKILL shows as lost on every face."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from certgate.service import auth
from certgate.service.appliance import Appliance
from tests.api.client import Server
from tests.support.net import AWAY_IPV4, connection_refused, on_this_host
from tests.support.pki import fingerprint, make_chain
from tests.support.polling import eventually
from tests.support.served import handshake_succeeds, served_fingerprint, wait_until_served
from tests.support.server import (
    RunningAppliance,
    import_with_key,
    node_list,
    run_cli,
    wait_for_tls,
)


def test_a_change_made_on_node_a_is_served_by_node_b(
    nodes: tuple[RunningAppliance, RunningAppliance], tmp_path: Path
) -> None:
    a, b = nodes
    assert served_fingerprint("127.0.0.2", b.port) == served_fingerprint("127.0.0.2", a.port)
    chain = make_chain("cluster.example.test")
    site = import_with_key(a, tmp_path, chain)
    run_cli(a.data_dir, "ip", "assign", "127.0.0.2", "--cert", str(site), "--confirm", **a.env)
    wait_until_served("127.0.0.2", b.port, fingerprint(chain.leaf))
    run_cli(a.data_dir, "ip", "add", "127.0.0.3", **a.env)
    eventually(lambda: handshake_succeeds("127.0.0.3", b.port, timeout=1), what="B binds it")
    run_cli(a.data_dir, "ip", "assign", "127.0.0.3", "--cert", str(site), "--confirm", **a.env)
    wait_until_served("127.0.0.3", b.port, fingerprint(chain.leaf))
    status = json.loads(run_cli(b.data_dir, "status", "--json", **b.env).stdout)
    assert {listener["address"] for listener in status["listeners"]} == {
        "127.0.0.2",
        "127.0.0.3",
    }

    # A clean stop (SIGTERM) is recorded: stopped, not lost, and nothing to attend to.
    b.process.send_signal(signal.SIGTERM)
    assert b.process.wait(timeout=20) == 0
    assert node_list(a)["node-b"]["state"] == "stopped"
    status = json.loads(run_cli(a.data_dir, "status", "--json", **a.env).stdout)
    assert status["diagnostics"] == []
    assert "Traceback" not in a.log_text() + b.log_text()


def test_nodes_are_listed_alive_with_what_they_present_and_a_killed_one_as_lost(
    nodes: tuple[RunningAppliance, RunningAppliance], tmp_path: Path
) -> None:
    a, b = nodes
    assigned = served_fingerprint("127.0.0.2", a.port)
    listed = eventually(
        lambda: (found := node_list(a)).keys() == {"node-a", "node-b"} and found,
        what="both nodes registered",
    )
    for name in ("node-a", "node-b"):
        assert listed[name]["state"] == "alive"
        assert listed[name]["alive"] is True
        assert listed[name]["drift"] == []
        [listener] = listed[name]["listeners"]
        assert (listener["address"], listener["fingerprint"]) == ("127.0.0.2", assigned)
    assert listed["node-b"]["listeners"][0]["port"] == b.port

    b.process.send_signal(signal.SIGKILL)
    b.process.wait(timeout=10)
    eventually(lambda: node_list(a)["node-b"]["state"] == "lost", what="node-b lost")
    listed = node_list(a)
    assert listed["node-b"]["alive"] is False
    assert listed["node-a"]["state"] == "alive"
    status = json.loads(run_cli(a.data_dir, "status", "--json", **a.env).stdout)
    assert [finding["code"] for finding in status["diagnostics"]] == ["node-lost"]
    assert "node-b" in status["diagnostics"][0]["message"]
    text = run_cli(a.data_dir, "node", "list", **a.env).stdout
    assert "node-b" in text and "lost" in text

    app = Appliance.open(a.data_dir, a.database_url)
    try:
        token, _ = auth.create_token(app, "tests", "auditor")
        session = auth.login(app, "admin", a.admin_password, "tests", auth.LoginThrottle())
    finally:
        app.close()
    server = Server(a, token)
    with server.client() as api:
        answer = api.get("/nodes")
        assert api.delete("/nodes/node-b").status_code == 403  # an auditor's token
    assert answer.status_code == 200
    assert {node["name"]: node["state"] for node in answer.json()} == {
        "node-a": "alive",
        "node-b": "lost",
    }
    with server.pages(session) as pages:
        page = pages.get("/status").text
    cluster = page[page.index('id="cluster"') :]
    assert "node-a" in cluster and "node-b" in cluster and ">lost<" in cluster

    # A lost node can be forgotten (retired); an alive one cannot.
    refused = run_cli(a.data_dir, "node", "remove", "node-a", check=False, **a.env)
    assert refused.returncode == 1
    assert "node 'node-a' is alive" in refused.stderr
    run_cli(a.data_dir, "node", "remove", "node-b", **a.env)
    assert node_list(a).keys() == {"node-a"}
    status = json.loads(run_cli(a.data_dir, "status", "--json", **a.env).stdout)
    assert status["diagnostics"] == []
    audit = run_cli(a.data_dir, "audit", "list", "--action", "node.remove", "--json", **a.env)
    assert [event["target"] for event in json.loads(audit.stdout)["events"]] == ["node-b"]


def _listening_on(running: RunningAppliance, name: str) -> dict[str, str | None]:
    """What node ``name`` says it listens on (address -> error), from its heartbeat."""
    listeners = node_list(running)[name]["listeners"]
    return {item["address"]: item["error"] for item in listeners if item["state"] == "listening"}


def test_each_node_serves_the_addresses_pinned_to_it_and_every_node_the_floating_ones(
    nodes: tuple[RunningAppliance, RunningAppliance],
) -> None:
    """Two nodes on one host, each on its own port: an address pinned to a node is on that
    node's wire only; a floating one on both, bound with IP_FREEBIND even where no host
    holds it (198.51.100.10, as the standby of a failover pair binds the shared address)."""
    a, b = nodes
    eventually(lambda: node_list(a).keys() == {"node-a", "node-b"}, what="both nodes registered")
    assert not on_this_host(AWAY_IPV4)
    run_cli(a.data_dir, "ip", "add", "127.0.0.3", "--node", "node-a", **a.env)
    run_cli(a.data_dir, "ip", "add", "127.0.0.4", "--node", "node-b", **a.env)
    run_cli(a.data_dir, "ip", "add", AWAY_IPV4, **a.env)  # floating
    for running, own, other in ((a, "127.0.0.3", "127.0.0.4"), (b, "127.0.0.4", "127.0.0.3")):
        wait_for_tls(own, running.port)
        assert connection_refused(other, running.port)
        assert handshake_succeeds("127.0.0.2", running.port)  # init's address: floating
    for name in ("node-a", "node-b"):
        eventually(
            lambda name=name: _listening_on(a, name).get(AWAY_IPV4, "absent") is None,
            what=f"{name} listens on {AWAY_IPV4}",
        )
    shown = run_cli(a.data_dir, "ip", "list", **a.env).stdout
    rows = {line.split()[0]: line for line in shown.splitlines()[2:]}
    assert rows["127.0.0.3"].endswith("node-a") and rows["127.0.0.4"].endswith("node-b")
    assert rows[AWAY_IPV4].endswith("every node (floating)")
    # Neither node is blamed for not serving the other's address. Both hold 127.0.0.2 (one
    # host), neither holds 198.51.100.10: every node listens on it, no client reaches it.
    listed = node_list(a)
    assert listed["node-a"]["holds"] == listed["node-b"]["holds"] == ["127.0.0.2"]
    for running in (a, b):
        status = json.loads(run_cli(running.data_dir, "status", "--json", **running.env).stdout)
        [finding] = status["diagnostics"]
        assert (finding["code"], finding["severity"]) == ("address-not-held", "error")
        assert finding["message"].startswith(f"{AWAY_IPV4} is floating and every node listens")
    run_cli(a.data_dir, "ip", "remove", AWAY_IPV4, **a.env)

    # Pinned to the other node: node A stops listening on it, node B starts.
    run_cli(a.data_dir, "ip", "set", "127.0.0.3", "--node", "node-b", **a.env)
    wait_for_tls("127.0.0.3", b.port)
    eventually(lambda: connection_refused("127.0.0.3", a.port), what="node A lets go")
    # Floating: both.
    run_cli(b.data_dir, "ip", "set", "127.0.0.4", "--floating", **b.env)
    wait_for_tls("127.0.0.4", a.port)
    assert handshake_succeeds("127.0.0.4", b.port)

    # A node that has never run is refused, naming the known ones; confirmed, it is pinned
    # (a node provisioned before its first start) and nobody serves the address meanwhile.
    refused = run_cli(
        a.data_dir, "ip", "set", "127.0.0.4", "--node", "node-c", check=False, **a.env
    )
    assert refused.returncode == 1
    assert "no node named 'node-c' has run on this store (known: node-a, node-b)" in (
        refused.stderr
    )
    run_cli(a.data_dir, "ip", "set", "127.0.0.4", "--node", "node-c", "--confirm", **a.env)
    for running in (a, b):
        eventually(lambda r=running: connection_refused("127.0.0.4", r.port), what="let go")
    status = json.loads(run_cli(a.data_dir, "status", "--json", **a.env).stdout)
    assert [(f["code"], f["severity"]) for f in status["diagnostics"]] == [
        ("address-node-not-alive", "warning")
    ]
    assert "Traceback" not in a.log_text() + b.log_text()
